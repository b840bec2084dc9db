/*
 * A battler's own phone at /battler/CODE#TOKEN (docs/protocol.md, "A battler's own link"):
 * their turn in the order, their clock while they speak, their engagement this round, the
 * challenge card, the question put to them, whether they are still in, and their vision's
 * revisions between rounds (docs/rules.md, "Visions that develop"). It moves nothing else.
 */
import { battlerOf, currentRound, phaseLabel, questionCard, speakerOf } from "./client/battle.js";
import { Countdown } from "./client/clock.js";
import { $, fill, h, setText } from "./client/dom.js";
import { onLanguageChange, t } from "./client/i18n.js";
import { Live, PROTOCOL } from "./client/live.js";
import { fragmentToken } from "./client/page.js";
import { REVISION_PHASES, changedLine, earlierVersions, versionOf, versionTag } from "./client/visions.js";

const token = fragmentToken();
const live = new Live({ role: "battler", protocols: () => [PROTOCOL, `auth.${token}`] });
const countdown = new Countdown($("#clock"), { speak: true });
const form = $("#revise-form");
const status = $("#revise-status");
let me = null; // this link's battler id, from the snapshot
let sending = false;

function statusText(battler) {
  if (battler.status === "winner") return t("Your vision won the evening.");
  if (battler.status === "eliminated") return t("You are out of the battle. Thank you!");
  return t("You are still in the battle.");
}

function orderList(battle, round) {
  if (!round) return null;
  return h(
    "ol",
    { class: "roster battler-order" },
    round.order.map((id, index) => {
      const done = battle.phase === "turn" ? index < battle.turn_index : ["debate", "vote", "reveal", "elimination", "final", "finished"].includes(battle.phase);
      const now = battle.phase === "turn" && index === battle.turn_index;
      const mine = id === me ? " is-me" : "";
      return h("li", { class: `battler-card${mine}${now ? " is-now" : ""}${done ? " is-done" : ""}` }, battlerOf(battle, id)?.name || id, id === me ? ` (${t("you")})` : "", now ? ` · ${t("Now speaking")}` : "");
    }),
  );
}

function engagementLine() {
  const figures = live.engagement && live.engagement.battlers[me];
  return h("p", { class: "battler-engagement" }, t("Your engagement this round: {score}", { score: figures ? figures.score : 0 }));
}

function render() {
  const battle = live.battle;
  const battler = battle && me ? battlerOf(battle, me) : null;
  if (!battler) return;
  const round = currentRound(battle);
  $("#phase-label").textContent = phaseLabel(battle.phase);
  $("#round-label").textContent = round && battle.phase !== "lobby" ? (round.final ? t("Final round") : t("Round {n}", { n: round.number })) : "";
  $("#battle-title").textContent = battle.title;
  fill(
    $("#me"),
    h("p", { class: "eyebrow" }, statusText(battler)),
    h("h2", { class: "speaker-name" }, battler.name),
    h("p", { class: "speaker-vision" }, battler.vision, versionTag(battler)),
    changedLine(battler, null),
    earlierVersions(battler),
  );
  const speaking = speakerOf(battle) === me;
  $("#clock-box").hidden = !speaking;
  countdown.set(speaking ? battle.timer : null);
  $("#clock-caption").textContent = t("Your time");
  const question = battle.question && battle.question.battler === me ? questionCard(battle) : null;
  const challenge = round && round.challenge ? h("div", { class: "challenge-card" }, h("span", { class: "challenge-label" }, t("Challenge")), h("p", { class: "challenge-text" }, round.challenge)) : null;
  fill($("#stage"), question, challenge, round ? h("h2", { class: "section-title" }, t("Speaking order")) : null, orderList(battle, round), round ? engagementLine() : null);
  renderForm(battle, battler);
}

function renderForm(battle, battler) {
  let why = "";
  if (battler.status !== "in") why = t("Only a battler still in the battle may revise their vision.");
  else if (!battle.rules.vision_revisions) why = t("The host has switched revisions of the visions off in this battle.");
  else if (!REVISION_PHASES.includes(battle.phase)) why = t("You can revise your vision between the rounds: in the lobby, before the first turn of a round, and after an elimination.");
  $("#revise-hint").textContent = why || t("The hall sees the new version with your next turn.");
  for (const field of form.elements) field.disabled = Boolean(why) || sending;
  const title = $("#revise-vision");
  if (!title.value && document.activeElement !== title) title.value = battler.vision;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const vision = $("#revise-vision").value.trim();
  const changed = $("#revise-changed").value.trim();
  sending = true;
  const id = live.command("revise_vision", { battler: me, vision, changed }, (reply) => {
    sending = false;
    if (reply.type === "error") setText(status, reply.message);
    else {
      status.textContent = t("Saved: the hall sees version {n}.", { n: versionOf(battlerOf(live.battle, me)) });
      $("#revise-changed").value = "";
    }
    render();
  });
  if (!id) {
    sending = false;
    status.textContent = t("Not connected: nothing was sent. Wait for the connection and try again.");
  }
  render();
});

function stop(message) {
  const problem = $("#battler-problem");
  problem.hidden = false;
  setText(problem, message);
}

if (!token) {
  stop("This battler link is incomplete: it needs the secret part after the #.");
} else {
  live.on("snapshot", (snapshot) => {
    me = snapshot.battler || me;
  });
  live.on("state", render);
  live.on("engagement", render);
  live.on("revoked", () => stop("The host revoked this link. Ask the host for the new one."));
  onLanguageChange(render);
  live.start();
}
