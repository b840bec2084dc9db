// The phone at /join/CODE: follows the phase, votes, reacts (docs/rules.md: audience member).
import {
  battlerOf,
  currentRound,
  currentVote,
  fromHall,
  leavingText,
  nameOf,
  openVote,
  phaseLabel,
  proposalText,
  questionCard,
  reactionIcon,
  reactionLabel,
  remaining,
  revealedVote,
  speakerOf,
  standings,
  voteQuestion,
  votesText,
} from "./client/battle.js";
import { Countdown, remainingMs } from "./client/clock.js";
import { $, announce, fill, h, setText } from "./client/dom.js";
import { onLanguageChange, plural, t } from "./client/i18n.js";
import { Live, PROTOCOL } from "./client/live.js";
import { page, randomId, store, stored } from "./client/page.js";

const DEVICE_KEY = "battles.device";
const NICKNAME_KEY = "battles.nickname";
const PENDING_KEY = `battles.ballot.${page.code}`;
const DEFAULT_COOLDOWN_MS = 800;

const stageTop = $("#stage-top");
const stageMain = $("#stage-main");
const clockBox = $("#clock-box");
const clockCaption = $("#clock-caption");
const countdown = new Countdown($("#clock"), { speak: true });
const voteStatus = $("#vote-status");
const notice = $("#notice");

const live = new Live({
  role: "audience",
  protocols: () => {
    const device = stored(DEVICE_KEY);
    return device ? [PROTOCOL, `device.${device}`] : [PROTOCOL];
  },
});

// --- the ballot (docs/rules.md, promises: one device, one ballot per vote; a phone comes back with it) ---

/** confirmed: what the server acknowledged; pending: a tap not acknowledged yet. */
const ballot = { confirmed: null, pending: loadPending() };

function loadPending() {
  try {
    const value = JSON.parse(stored(PENDING_KEY) || "null");
    return value && value.vote_id && value.choice && value.ballot_id ? value : null;
  } catch {
    return null;
  }
}

function savePending() {
  const p = ballot.pending;
  store(PENDING_KEY, p ? JSON.stringify({ vote_id: p.vote_id, choice: p.choice, ballot_id: p.ballot_id }) : null);
}

function cast(choice) {
  const vote = openVote(live.battle);
  if (!vote || remainingMs(live.battle.timer) <= 0) return;
  const confirmed = ballot.confirmed;
  if (!ballot.pending && confirmed && confirmed.vote_id === vote.id && confirmed.choice === choice) {
    renderVoteStatus(true);
    return;
  }
  // A new ballot id per tap; a resend after a dropped socket keeps the same one.
  ballot.pending = { vote_id: vote.id, choice, ballot_id: randomId(16) };
  savePending();
  sendPending();
  renderVote();
}

function sendPending() {
  const p = ballot.pending;
  if (!p) return;
  p.requestId = live.request({ type: "vote", vote_id: p.vote_id, choice: p.choice, ballot_id: p.ballot_id }, (reply) => {
    if (reply.type === "error" && ballot.pending && ballot.pending.ballot_id === p.ballot_id) {
      ballot.pending = null;
      savePending();
      showNotice(reply.message);
      renderVote();
    }
  });
}

live.on("ballot", (reply) => {
  ballot.confirmed = { vote_id: reply.vote_id, choice: reply.choice, status: reply.status };
  if (ballot.pending && ballot.pending.ballot_id === reply.ballot_id) {
    ballot.pending = null;
    savePending();
  }
  renderVote();
});

live.on("snapshot", (snapshot) => {
  const vote = currentVote(snapshot.battle);
  const mine = snapshot.my_ballot;
  ballot.confirmed = mine && vote && mine.vote_id === vote.id ? { ...mine, status: "counted" } : null;
  const p = ballot.pending;
  if (!p) return;
  const open = openVote(snapshot.battle);
  if (open && open.id === p.vote_id) {
    sendPending(); // the reply may have been lost with the socket: the same ballot id again
  } else {
    if (!mine || mine.choice !== p.choice) showNotice(t("Your last tap did not reach the server before the vote closed."));
    ballot.pending = null;
    savePending();
  }
});

// --- reactions --------------------------------------------------------------------------

let cooldownUntil = 0;
let cooldownTimer = 0;
let debateTarget = null;

function cooldownMs() {
  const limits = live.welcome && live.welcome.limits;
  return limits && typeof limits.reaction_cooldown_ms === "number" ? limits.reaction_cooldown_ms : DEFAULT_COOLDOWN_MS;
}

function react(kind) {
  if (Date.now() < cooldownUntil) return;
  const battle = live.battle;
  const message = { type: "react", kind };
  if (battle.phase === "debate") {
    if (!debateTarget) return;
    message.battler = debateTarget;
  }
  const sent = live.request(message, (reply) => {
    if (reply.type !== "error") return;
    if (reply.reason === "cooldown" && reply.params && reply.params.wait_ms) startCooldown(reply.params.wait_ms);
    showNotice(reply.message);
  });
  if (!sent) {
    showNotice(t("Not connected. Your reaction was not sent."));
    return;
  }
  startCooldown(cooldownMs());
  showNotice(t("Sent: {reaction}", { reaction: reactionLabel(kind) }));
}

function startCooldown(ms) {
  cooldownUntil = Date.now() + ms;
  window.clearTimeout(cooldownTimer);
  cooldownTimer = window.setTimeout(updateReactionButtons, ms + 20);
  updateReactionButtons();
  const bar = $("#cooldown-bar");
  if (bar) {
    // Restart the shrinking bar: full width at once, then to zero over the cool-down.
    bar.style.transition = "none";
    bar.style.width = "100%";
    void bar.offsetWidth;
    bar.style.transition = `width ${ms}ms linear`;
    bar.style.width = "0%";
  }
}

function updateReactionButtons() {
  const cooling = Date.now() < cooldownUntil;
  const needTarget = live.battle && live.battle.phase === "debate" && !debateTarget;
  for (const button of stageMain.querySelectorAll("[data-reaction]")) button.disabled = cooling || needTarget;
  const panel = $("#reaction-panel");
  if (panel) panel.classList.toggle("is-cooling", cooling);
}

function reactionPanel(battle) {
  const kinds = battle.rules.reactions;
  if (!kinds.length) return h("p", { class: "hint" }, t("Reactions are switched off tonight."));
  return h(
    "div",
    { id: "reaction-panel", class: "reaction-panel" },
    h("h3", { class: "panel-title" }, t("React")),
    h(
      "div",
      { class: "reaction-buttons" },
      kinds.map((kind) =>
        h(
          "button",
          { type: "button", class: "reaction", dataset: { reaction: kind, key: `react-${kind}` }, onclick: () => react(kind) },
          reactionIcon(kind, 44),
          h("span", { class: "reaction-label" }, reactionLabel(kind)),
        ),
      ),
    ),
    h("div", { class: "cooldown", "aria-hidden": "true" }, h("div", { id: "cooldown-bar", class: "cooldown-bar" })),
  );
}

// --- views per phase ----------------------------------------------------------------------

function battlerCard(battler, extra) {
  return h(
    "li",
    { class: `battler-card${battler.status !== "in" ? ` is-${battler.status}` : ""}` },
    h("span", { class: "battler-name" }, battler.name),
    h("span", { class: "battler-vision" }, battler.vision),
    battler.affiliation ? h("span", { class: "battler-affiliation" }, battler.affiliation) : null,
    extra || null,
  );
}

function roster(battlers) {
  return h("ul", { class: "roster" }, battlers.map((b) => battlerCard(b)));
}

function challengeCard(round) {
  if (!round || !round.challenge) return null;
  return h(
    "div",
    { class: "challenge-card" },
    h("span", { class: "challenge-label" }, t("Challenge")),
    h("p", { class: "challenge-text" }, round.challenge),
    round.challenge_from ? h("p", { class: "from-hall" }, fromHall(round.challenge_from)) : null,
  );
}

const views = {
  lobby(battle) {
    return {
      top: [
        battle.topic ? h("p", { class: "topic" }, battle.topic) : null,
        battle.scenario ? h("p", { class: "scenario" }, battle.scenario) : null,
        h("p", { class: "waiting" }, t("Waiting for the show to start. Keep this page open.")),
      ],
      main: [h("h2", { class: "section-title" }, t("The battlers")), roster(battle.battlers)],
    };
  },
  challenge(battle, round) {
    return {
      top: [round.challenge ? challengeCard(round) : h("p", { class: "waiting" }, t("The round is about to start."))],
      main: [h("h2", { class: "section-title" }, t("Speaking order")), roster(round.order.map((id) => battlerOf(battle, id)).filter(Boolean))],
    };
  },
  turn(battle, round) {
    const speaker = battlerOf(battle, speakerOf(battle));
    const nextId = round.order[battle.turn_index + 1];
    return {
      top: [
        h("p", { class: "eyebrow" }, t("Now speaking")),
        speaker ? h("h2", { class: "speaker-name" }, speaker.name) : null,
        speaker ? h("p", { class: "speaker-vision" }, speaker.vision) : null,
        speaker && speaker.affiliation ? h("p", { class: "battler-affiliation" }, speaker.affiliation) : null,
      ],
      main: [
        questionCard(battle),
        reactionPanel(battle),
        nextId ? h("p", { class: "hint" }, t("Up next: {name}", { name: nameOf(battle, nextId) })) : null,
        challengeCard(round),
      ],
    };
  },
  debate(battle, round) {
    const inPlay = round.order.map((id) => battlerOf(battle, id)).filter((b) => b && b.status === "in");
    if (debateTarget && !inPlay.some((b) => b.id === debateTarget)) debateTarget = null;
    const picker = h(
      "div",
      { class: "target-picker", role: "group", "aria-label": t("Who are you reacting to?") },
      inPlay.map((b) =>
        h(
          "button",
          {
            type: "button",
            class: "target",
            "aria-pressed": String(b.id === debateTarget),
            dataset: { key: `target-${b.id}` },
            onclick: () => {
              debateTarget = b.id;
              for (const other of picker.querySelectorAll(".target")) {
                other.setAttribute("aria-pressed", String(other.dataset.key === `target-${b.id}`));
              }
              updateReactionButtons();
            },
          },
          b.name,
        ),
      ),
    );
    return {
      top: [h("p", { class: "eyebrow" }, t("Open debate")), h("h2", { class: "speaker-name" }, t("Everyone still in the battle"))],
      main: [questionCard(battle), h("h3", { class: "panel-title" }, t("Who are you reacting to?")), picker, reactionPanel(battle), challengeCard(round)],
    };
  },
  vote(battle, round) {
    const vote = currentVote(battle);
    if (!vote) {
      return {
        top: [h("p", { class: "waiting" }, t("The vote opens in a moment."))],
        main: [roster(round.order.map((id) => battlerOf(battle, id)).filter((b) => b && b.status === "in"))],
      };
    }
    return {
      top: [h("h2", { class: "vote-question" }, voteQuestion(battle, vote))],
      main: [h("div", { id: "choices", class: "choices" })],
    };
  },
  reveal(battle, round) {
    const vote = revealedVote(battle);
    return {
      top: [h("h2", { class: "section-title" }, t("The results"))],
      main: [vote ? resultList(battle, vote) : null, h("p", { class: "proposal" }, proposalText(battle, round))],
    };
  },
  elimination(battle, round) {
    return {
      top: [
        h("h2", { class: "leaving" }, leavingText(battle, round.eliminated)),
        round.override_reason ? h("p", { class: "hint" }, t("The host decided: {reason}", { reason: round.override_reason })) : null,
      ],
      main: [h("h2", { class: "section-title" }, t("Still in the battle")), roster(remaining(battle)), h("p", { class: "waiting" }, t("The next round starts soon."))],
    };
  },
  final(battle) {
    const winner = battlerOf(battle, battle.winner);
    return {
      top: [
        h(
          "div",
          { class: "winner-card" },
          h("p", { class: "eyebrow" }, t("The winning vision")),
          winner ? h("h2", { class: "winner-name" }, winner.name) : null,
          winner ? h("p", { class: "speaker-vision" }, winner.vision) : null,
        ),
      ],
      main: [h("p", { class: "waiting" }, t("Thank you for voting!"))],
    };
  },
  finished(battle) {
    const winner = battlerOf(battle, battle.winner);
    return {
      top: [h("h2", { class: "section-title" }, t("The battle is over."))],
      main: [
        winner ? h("p", { class: "speaker-vision" }, t("Winner: {name}: {vision}", { name: winner.name, vision: winner.vision })) : null,
        h("p", { class: "waiting" }, t("Thank you for playing!")),
      ],
    };
  },
};

function resultList(battle, vote) {
  const mine = ballot.confirmed && ballot.confirmed.vote_id === vote.id ? ballot.confirmed.choice : null;
  return h(
    "ol",
    { class: "results" },
    standings(vote).map((row) =>
      h(
        "li",
        { class: `result${row.id === mine ? " is-mine" : ""}` },
        h("span", { class: "result-name" }, nameOf(battle, row.id)),
        h("span", { class: "result-figures" }, votesText(row.votes, row.share)),
        row.id === mine ? h("span", { class: "result-mine" }, t("Your vote")) : null,
        meter(row.share),
      ),
    ),
  );
}

function meter(share) {
  const fillBar = h("span", { class: "meter-fill" });
  fillBar.style.width = `${Math.round(share * 1000) / 10}%`;
  return h("span", { class: "meter", "aria-hidden": "true" }, fillBar);
}

// --- the vote view: built once per vote, updated in place (focus stays put) ---------------

let choicesKey = "";

function renderVote() {
  const battle = live.battle;
  const container = $("#choices");
  const vote = currentVote(battle);
  if (!container || !vote) {
    renderVoteStatus();
    return;
  }
  const key = `${vote.id}:${vote.choices.join(",")}`;
  if (choicesKey !== key || !container.children.length) {
    choicesKey = key;
    fill(
      container,
      vote.choices.map((id) => {
        const battler = battlerOf(battle, id);
        return h(
          "button",
          { type: "button", class: "choice", dataset: { choice: id, key: `choice-${id}` }, onclick: () => cast(id) },
          h("span", { class: "choice-name" }, battler ? battler.name : id),
          h("span", { class: "choice-vision" }, battler ? battler.vision : ""),
          h("span", { class: "choice-state" }),
          h("span", { class: "choice-total" }),
        );
      }),
      h("p", { id: "ballot-count", class: "hint" }),
    );
  }
  const open = openVote(battle) === vote && remainingMs(battle.timer) > 0;
  const mine = ballot.confirmed && ballot.confirmed.vote_id === vote.id ? ballot.confirmed.choice : null;
  const pending = ballot.pending && ballot.pending.vote_id === vote.id ? ballot.pending.choice : null;
  const tally = live.currentTally();
  const sum = tally && tally.totals ? Object.values(tally.totals).reduce((a, b) => a + b, 0) : 0;
  for (const button of container.querySelectorAll("[data-choice]")) {
    const id = button.dataset.choice;
    button.disabled = !open;
    button.setAttribute("aria-pressed", String(id === (pending || mine)));
    button.classList.toggle("is-pending", id === pending);
    button.classList.toggle("is-counted", id === mine && !pending);
    const state = id === pending ? t("Sending…") : id === mine ? t("✓ Counted") : "";
    button.querySelector(".choice-state").textContent = state;
    const total = tally && tally.totals ? tally.totals[id] || 0 : null;
    // With live totals the line is there from the start: a tally that arrives as a finger
    // lands moves no button.
    const placeholder = battle.rules.live_totals ? "\u00a0" : "";
    button.querySelector(".choice-total").textContent =
      total === null ? placeholder : votesText(total, sum ? total / sum : 0);
  }
  const count = $("#ballot-count");
  if (count) count.textContent = tally ? plural(tally.ballots, "1 ballot so far", "{n} ballots so far") : "";
  renderVoteStatus();
}

let lastVoteStatus = "";

function renderVoteStatus(again = false) {
  const battle = live.battle;
  const vote = battle && battle.phase === "vote" ? currentVote(battle) : null;
  let text = "";
  if (vote) {
    const mine = ballot.confirmed && ballot.confirmed.vote_id === vote.id ? ballot.confirmed.choice : null;
    const pending = ballot.pending && ballot.pending.vote_id === vote.id ? ballot.pending.choice : null;
    const open = openVote(battle) === vote && remainingMs(battle.timer) > 0;
    if (open && pending && !live.connected) {
      text = t("No connection: your vote for {name} is sent as soon as it is back.", { name: nameOf(battle, pending) });
    } else if (open && pending) text = t("Sending your vote for {name}…", { name: nameOf(battle, pending) });
    else if (open && mine) text = t("Your vote for {name} is counted. You can change it until the vote closes.", { name: nameOf(battle, mine) });
    else if (open) text = t("The vote is open: tap a battler to vote.");
    else if (mine) text = t("The vote has closed. Your vote for {name} was counted.", { name: nameOf(battle, mine) });
    else text = t("The vote has closed.");
  }
  voteStatus.hidden = !text;
  if (text !== lastVoteStatus || again) {
    lastVoteStatus = text;
    voteStatus.textContent = "";
    if (text) window.setTimeout(() => (voteStatus.textContent = text), again ? 50 : 0);
  }
}

// --- the whole page ---------------------------------------------------------------------

let lastPhaseKey = "";

function render() {
  const battle = live.battle;
  if (!battle) return;
  const round = currentRound(battle);
  setText($("#phase-label"), null);
  $("#phase-label").textContent = phaseLabel(battle.phase); // the phase follows the battle, not a fixed text
  $("#round-label").textContent = round && battle.phase !== "lobby" ? (round.final ? t("Final round") : t("Round {n}", { n: round.number })) : "";
  $("#battle-title").textContent = battle.title;
  const view = (views[battle.phase] || views.lobby)(battle, round);
  fill(stageTop, view.top);
  fill(stageMain, view.main);
  choicesKey = "";
  const timed = battle.timer && ["turn", "debate", "vote"].includes(battle.phase);
  clockBox.hidden = !timed;
  countdown.set(timed ? battle.timer : null);
  renderClockCaption();
  if (notice.textContent && moment(battle) !== noticeMoment) notice.textContent = ""; // about a part of the show that is over
  renderVote();
  updateReactionButtons();
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

let noticeTimer = 0;
let noticeMoment = "";

/** Which part of the show this is: a notice ("Sent: Applause") ends with it. */
function moment(battle) {
  const round = currentRound(battle);
  return battle ? `${battle.phase}:${round ? round.number : 0}:${battle.turn_index}` : "";
}

function showNotice(text) {
  notice.textContent = text;
  noticeMoment = moment(live.battle);
  window.clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => (notice.textContent = ""), 4000);
}

// Votes close on the server's deadline: redraw the buttons when the time runs out.
let wasOpen = false;
window.setInterval(() => {
  const battle = live.battle;
  const open = Boolean(battle && openVote(battle) && remainingMs(battle.timer) > 0);
  if (open !== wasOpen) {
    wasOpen = open;
    renderVote();
  }
}, 250);

// --- challenges and questions for the moderators (docs/rules.md, "The audience takes part") ---

const voiceBox = $("#voice-box");
const voiceForm = $("#voice-form");
const voiceText = $("#voice-text");
const voiceStatus = $("#voice-status");
let voiceUntil = 0; // the device's cool-down, as the server last told it

/** What this phone may send now: the same windows as game.submission_target. */
function voiceKind(battle) {
  const round = currentRound(battle);
  const rules = battle.rules;
  const beforeCard = battle.phase === "challenge" && round && !round.challenge;
  if (rules.audience_challenges && (["lobby", "elimination"].includes(battle.phase) || beforeCard)) return "challenge";
  if (rules.audience_questions && ["turn", "debate"].includes(battle.phase)) return "question";
  return null;
}

function renderVoice() {
  const battle = live.battle;
  const kind = battle ? voiceKind(battle) : null;
  voiceBox.hidden = !kind;
  if (!kind) return;
  voiceBox.dataset.kind = kind;
  const speaker = speakerOf(battle);
  setText($("#voice-title"), kind === "challenge" ? "Challenge the battlers" : "Ask a question");
  $("#voice-hint").textContent =
    kind === "challenge"
      ? t("Suggest a challenge for the next round. The host picks one for the screen.")
      : speaker
        ? t("Your question goes to {name}. The host picks which ones reach the screen.", { name: nameOf(battle, speaker) })
        : t("Your question goes to the battlers in the debate. The host picks which ones reach the screen.");
  setText($("#voice-label"), kind === "challenge" ? "Your challenge" : "Your question");
  renderVoiceCount();
}

/** The longest text the server takes (docs/protocol.md, welcome's limits); null before a welcome. */
function voiceLimit() {
  const limits = live.welcome && live.welcome.limits;
  return limits && typeof limits.submission_max_chars === "number" ? limits.submission_max_chars : null;
}

function renderVoiceCount() {
  const limit = voiceLimit();
  if (limit !== null) voiceText.maxLength = limit;
  const left = limit === null ? null : limit - voiceText.value.length;
  $("#voice-count").textContent = left === null ? "" : plural(left, "1 character left", "{n} characters left");
  $("#voice-send").disabled = Date.now() < voiceUntil;
}

function sayVoice(text, kind) {
  voiceStatus.dataset.kind = kind;
  voiceStatus.textContent = text;
}

voiceText.addEventListener("input", renderVoiceCount);
voiceForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const kind = live.battle && voiceKind(live.battle);
  const text = voiceText.value.trim();
  if (!kind || !text) return;
  const message = { type: "submit", kind, text, anonymous: $("#voice-anonymous").checked };
  if (kind === "question" && live.battle.phase === "debate" && debateTarget) message.battler = debateTarget;
  const sent = live.request(message, (reply) => {
    if (reply.type === "error") {
      if (reply.reason === "too_soon" && reply.params && reply.params.wait_ms) startVoiceCooldown(reply.params.wait_ms);
      sayVoice(reply.message, "error");
      return;
    }
    voiceText.value = "";
    sayVoice(t("Thank you! Sent for review."), "ok");
    startVoiceCooldown(voiceCooldownMs());
  });
  if (!sent) sayVoice(t("Not connected: nothing was sent. Try again in a moment."), "error");
  else sayVoice(t("Sending…"), "busy");
});

// What became of this phone's own challenges and questions (docs/protocol.md, `your_submission`):
// the server says it in this socket's language; the newest news stays until the next. A phone
// that was away when it was decided finds it in its snapshot (`my_submissions`, oldest first).
function showVoiceNews(news) {
  const box = $("#voice-news");
  box.hidden = false;
  box.dataset.outcome = news.outcome;
  box.textContent = `${news.message} “${news.text}”`;
}
live.on("your_submission", showVoiceNews);
live.on("snapshot", (snapshot) => {
  const told = snapshot.my_submissions || [];
  if (told.length) showVoiceNews(told[told.length - 1]);
});

function voiceCooldownMs() {
  const limits = live.welcome && live.welcome.limits;
  return limits && typeof limits.submission_cooldown_ms === "number" ? limits.submission_cooldown_ms : 0;
}

function startVoiceCooldown(ms) {
  voiceUntil = Date.now() + ms;
  renderVoiceCount();
  window.setTimeout(renderVoiceCount, ms + 20);
}

// --- nickname -----------------------------------------------------------------------------

const nicknameInput = $("#nickname");
nicknameInput.value = stored(NICKNAME_KEY) || "";
$("#nickname-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const nickname = nicknameInput.value.trim().slice(0, 30);
  store(NICKNAME_KEY, nickname || null);
  const status = $("#nickname-status");
  const sent = live.request({ type: "set_nickname", nickname }, (reply) => {
    if (reply.type === "error") status.textContent = reply.message;
    else setText(status, "Saved");
  });
  if (!sent) setText(status, "Saved here; it is sent when the connection is back.");
});

live.on("welcome", (welcome) => {
  if (welcome.device) store(DEVICE_KEY, welcome.device); // keep this phone's signed id
  const nickname = stored(NICKNAME_KEY);
  if (nickname) live.send({ type: "set_nickname", nickname });
});
live.on("state", render);
live.on("state", renderVoice);
live.on("tally", renderVote);
live.on("close", () => renderVoteStatus());
onLanguageChange(render);
onLanguageChange(renderVoice);

live.start();
