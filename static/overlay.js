/*
 * The stream overlay at /overlay/CODE#SCREEN_TOKEN: the screen for a video mixer (an OBS
 * browser source, 1920x1080, docs/operations.md). The page is transparent, so the mixer
 * shows the video through it; a lower third says who speaks and the time left, a vote's
 * live bars and where to vote, the result and the winner. A phase with nothing to say
 * leaves the page empty. The same token and socket as the screen (/ws/screen/CODE), and
 * the screen's parts: its tally, its reveal, the client's clock.
 */
import { battlerOf, currentRound, currentVote, leavingText, nameOf, phaseLabel, speakerOf, voteQuestion } from "./client/battle.js";
import { Countdown } from "./client/clock.js";
import { $, fill, h, setText } from "./client/dom.js";
import { onLanguageChange, t } from "./client/i18n.js";
import { Live, PROTOCOL } from "./client/live.js";
import { fragmentToken } from "./client/page.js";
import { versionTag } from "./client/visions.js";
import { Reveal } from "./screen/reveal.js";
import { captionState } from "./screen/clock.js";
import { SyncCue } from "./screen/sync.js";
import { liveBars, renderTally } from "./screen/views.js";
import { fitStage } from "./screen/wall.js";

const token = fragmentToken();
const problem = $("#overlay-problem");
const lowerThird = $("#lower-third");
const main = $("#lower-third-main");
const fit = () => fitStage(main); // the screen's fit: zoomed out until the lower third holds it whole
const clockBox = $("#lower-third-clock");
const clockFace = $("#overlay-clock");
const countdown = new Countdown(clockFace);
let clockCaption = ""; // the phase's caption for the clock, when it is neither paused nor over
// A paused clock or a turn in overtime says so over the figures, as the screen's does, the
// moment the Countdown's classes say it.
const showClockState = () => captionState(clockFace, $("#overlay-clock-caption"), clockCaption);
new MutationObserver(showClockState).observe(clockFace, { attributes: true, attributeFilter: ["class"] });
const live = new Live({ role: "screen", protocols: () => [PROTOCOL, `auth.${token}`] });
const reveal = new Reveal();
const syncCue = new SyncCue($("#overlay-sync-cue"));

/** The speaker of a turn, or the winner: a name, big, and the vision under it. */
function person(eyebrow, battler) {
  return h(
    "div",
    { class: "lt-person" },
    h("p", { class: "lt-eyebrow" }, eyebrow),
    h("p", { class: "lt-name" }, battler.name),
    h("p", { class: "lt-vision" }, battler.vision, versionTag(battler)),
  );
}

/** The vote under way: its question, the live bars when the rules show totals (else the
 * choices), and the count of ballots; renderTally() (screen/views.js) fills them in. */
function voteView(battle, vote) {
  const choices = battle.rules.live_totals
    ? liveBars(battle, vote)
    : h("ul", { class: "lt-choices" }, vote.choices.map((id) => h("li", {}, nameOf(battle, id))));
  return h("div", { class: "lt-vote" }, h("p", { class: "lt-eyebrow" }, voteQuestion(battle, vote)), choices, h("p", { id: "vote-count", class: "vote-count" }));
}

// What the lower third shows in each phase (docs/rules.md): {view, clock: its caption or
// null, join: whether the join line shows}; a phase not here shows nothing.
const LOWER_THIRDS = {
  turn(battle) {
    const speaker = battlerOf(battle, speakerOf(battle));
    return speaker ? { view: person(t("Now speaking"), speaker), clock: t("Time left") } : null;
  },
  debate(battle, round) {
    const names = round.order.map((id) => battlerOf(battle, id)).filter((b) => b && b.status === "in");
    const view = h("div", { class: "lt-person" }, h("p", { class: "lt-eyebrow" }, t("Open debate")), h("p", { class: "lt-names" }, names.map((b) => b.name).join(" · ")));
    return { view, clock: t("Time left") };
  },
  vote(battle) {
    const vote = currentVote(battle);
    if (!vote) return null;
    const open = vote.status === "open";
    return { view: voteView(battle, vote), clock: open && battle.timer ? t("Time left to vote") : null, join: open };
  },
  stance(battle, round) {
    return LOWER_THIRDS.vote(battle, round); // a stance poll is a vote that eliminates no one (docs/rules.md)
  },
  reveal(battle, round) {
    return { view: reveal.view(battle, round) };
  },
  elimination(battle, round) {
    return { view: h("p", { class: "lt-line" }, leavingText(battle, round.eliminated)) };
  },
  final(battle) {
    const winner = battlerOf(battle, battle.winner);
    return winner ? { view: person(t("The winning vision"), winner) } : null;
  },
  finished(battle) {
    return LOWER_THIRDS.final(battle);
  },
};

/** The join line: the hall's link, or with a remote audience (rules.remote) the stream's. */
function renderJoin(battle) {
  const remote = battle.rules.remote;
  $("#lower-third-hall").hidden = remote;
  $("#lower-third-watch").hidden = !remote;
}

function render() {
  const battle = live.battle;
  if (!battle) return;
  document.body.dataset.phase = battle.phase;
  $("#phase-label").textContent = phaseLabel(battle.phase);
  $("#battle-title").textContent = battle.title;
  const round = currentRound(battle);
  // Every phase but the opening stance poll, which comes before round one, has a round.
  const drawn = LOWER_THIRDS[battle.phase] && (round || battle.phase === "stance");
  const shown = drawn ? LOWER_THIRDS[battle.phase](battle, round) : null;
  lowerThird.hidden = !shown;
  fill(main, shown ? shown.view : null);
  clockBox.hidden = !(shown && shown.clock);
  clockCaption = shown && shown.clock ? shown.clock : "";
  countdown.set(clockBox.hidden ? null : battle.timer);
  showClockState();
  $("#lower-third-join").hidden = !(shown && shown.join);
  renderJoin(battle);
  renderTally(live);
  syncCue.follow(battle);
  fit();
}

window.addEventListener("resize", fit);

if (!token) {
  problem.hidden = false;
  setText(problem, "This overlay link is incomplete: open the full overlay link from the host console.");
} else {
  live.on("state", render);
  live.on("tally", () => {
    renderTally(live);
    fit(); // the live bars' figures widen as the votes come in
  });
  live.on("close", ({ opened }) => {
    if (!live.everOpened && !opened && live.attempts >= 3) {
      problem.hidden = false;
      setText(problem, "Cannot connect. Check that the overlay link is complete and the server is running.");
    }
  });
  live.on("open", () => {
    problem.hidden = true;
  });
  onLanguageChange(render);
  live.start();
}
