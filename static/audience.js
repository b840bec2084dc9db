/*
 * The phone at /join/CODE: follows the phase, votes, reacts (docs/rules.md: audience
 * member). This module wires the panels under static/audience/ to the live connection.
 * At /watch/CODE it is a phone of the stream's audience (audience/stream.js).
 */
import { currentRound, currentVote, nameOf, phaseLabel, speakerOf } from "./client/battle.js";
import { Countdown } from "./client/clock.js";
import { $, announce, fill, setText } from "./client/dom.js";
import { onLanguageChange, t } from "./client/i18n.js";
import { Live, PROTOCOL, REMOTE } from "./client/live.js";
import { page, store, stored } from "./client/page.js";
import { Ballot } from "./audience/ballot.js";
import { Nickname } from "./audience/nickname.js";
import { Notice } from "./audience/notice.js";
import { Reactions } from "./audience/reactions.js";
import { Receipt } from "./audience/receipt.js";
import { Stream } from "./audience/stream.js";
import { phaseView } from "./audience/views.js";
import { Voice } from "./audience/voice.js";

const DEVICE_KEY = "battles.device";

const stageTop = $("#stage-top");
const stageMain = $("#stage-main");
const clockBox = $("#clock-box");
const clockCaption = $("#clock-caption");
const countdown = new Countdown($("#clock"), { speak: true });

// The remote page has the stream's panel; its socket says so (docs/protocol.md, Connecting).
const streamBox = document.getElementById("stream-box");
let stream = null;
const live = new Live({
  role: "audience",
  protocols: () => {
    const device = stored(DEVICE_KEY);
    const marks = [...(device ? [`device.${device}`] : []), ...(page.mark ? [`page.${page.mark}`] : [])];
    return [PROTOCOL, ...marks, ...(streamBox ? [REMOTE] : [])];
  },
  view: streamBox ? (battle) => stream.view(battle) : null,
});
if (streamBox) stream = new Stream(live, streamBox);
const notice = new Notice(live);
// What the panels share: the live connection, the notice line, this phone's ballot, and
// its reactions (the battler picked in the debate, which a question goes to as well).
const phone = { live, notice, ballot: new Ballot(live, notice), reactions: new Reactions(live, notice) };
const { ballot, reactions } = phone;
const voice = new Voice(phone);
const nickname = new Nickname(live);
const receipt = new Receipt(live, ballot);

let lastPhaseKey = "";

function render() {
  const battle = live.battle;
  if (!battle) return;
  const round = currentRound(battle);
  setText($("#phase-label"), null);
  $("#phase-label").textContent = phaseLabel(battle.phase); // the phase follows the battle, not a fixed text
  $("#round-label").textContent = round && battle.phase !== "lobby" ? (round.final ? t("Final round") : t("Round {n}", { n: round.number })) : "";
  $("#battle-title").textContent = battle.title;
  const view = phaseView(phone, battle, round);
  fill(stageTop, view.top);
  fill(stageMain, view.main);
  const timed = battle.timer && ["turn", "debate", "vote", "stance"].includes(battle.phase);
  clockBox.hidden = !timed;
  countdown.set(timed ? battle.timer : null);
  renderClockCaption();
  notice.follow(battle);
  ballot.renderVote();
  receipt.render();
  reactions.updateButtons();
  const phaseKey = `${battle.phase}:${round ? round.number : 0}:${battle.turn_index}:${currentVote(battle)?.id}:${currentVote(battle)?.status}`;
  if (phaseKey !== lastPhaseKey) {
    lastPhaseKey = phaseKey;
    const speaker = speakerOf(battle);
    announce(speaker ? `${phaseLabel(battle.phase)}: ${nameOf(battle, speaker)}` : phaseLabel(battle.phase));
  }
}

function renderClockCaption() {
  const timer = live.battle && live.battle.timer;
  const paused = timer && (timer.deadline_ms === null || timer.deadline_ms === undefined);
  clockCaption.textContent = paused ? t("Paused") : t("Time left");
}

live.on("welcome", (welcome) => {
  if (welcome.device) store(DEVICE_KEY, welcome.device); // keep this phone's signed id
  nickname.resend();
});
live.on("state", render);
live.on("state", () => voice.render());
live.on("tally", () => ballot.renderVote());
live.on("ballot", () => receipt.render());
live.on("close", () => ballot.renderStatus());
onLanguageChange(render);
onLanguageChange(() => voice.render());

live.start();
