// The projector at /screen/CODE#TOKEN: read-only, dark, readable from the back of a hall.
import {
  REACTIONS,
  ballotsText,
  battlerOf,
  currentRound,
  currentVote,
  fromHall,
  leavingText,
  nameOf,
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
import { Countdown } from "./client/clock.js";
import { $, fill, h, setText } from "./client/dom.js";
import { onLanguageChange, plural, t } from "./client/i18n.js";
import { Live, PROTOCOL } from "./client/live.js";
import { fragmentToken, page } from "./client/page.js";
import { loadCharts } from "./evening.js";

const token = fragmentToken();
const stage = $("#screen-stage");
const clockBox = $("#screen-clock-box");
const clockCaption = $("#screen-clock-caption");
const clockFace = $("#screen-clock");
const countdown = new Countdown(clockFace, { speak: true });
const problem = $("#screen-problem");
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
const joinUrl = `${window.location.origin}/join/${page.code}`;

const live = new Live({ role: "screen", protocols: () => [PROTOCOL, `auth.${token}`] });

// --- pieces -----------------------------------------------------------------------------

function battlerCard(battler, extra, className = "") {
  return h(
    "div",
    { class: `screen-card ${className}`, dataset: { battler: battler.id } },
    h("span", { class: "card-name" }, battler.name),
    h("span", { class: "card-vision" }, battler.vision),
    battler.affiliation ? h("span", { class: "card-affiliation" }, battler.affiliation) : null,
    extra || null,
  );
}

function engagementMeter(battlerId) {
  return h(
    "div",
    { class: "engagement", dataset: { engagement: battlerId } },
    h("div", { class: "engagement-head" }, h("span", { class: "engagement-title" }, t("Engagement")), h("span", { class: "engagement-score" }, "0")),
    h("div", { class: "meter meter-big", "aria-hidden": "true" }, h("span", { class: "meter-fill" })),
    h(
      "ul",
      { class: "engagement-counts" },
      live.battle.rules.reactions.map((kind) =>
        h(
          "li",
          { dataset: { kind } },
          reactionIcon(kind, 36),
          h("span", { class: "visually-hidden" }, reactionLabel(kind)),
          h("span", { class: "count" }, "0"),
        ),
      ),
    ),
  );
}

function renderEngagement() {
  const figures = live.currentEngagement();
  const scores = Object.values(figures).map((f) => Math.abs(f.score));
  const scale = Math.max(10, ...scores);
  for (const meter of stage.querySelectorAll("[data-engagement]")) {
    const figure = figures[meter.dataset.engagement] || { counts: {}, score: 0 };
    const score = meter.querySelector(".engagement-score");
    if (score.textContent !== String(figure.score)) {
      score.textContent = String(figure.score);
      meter.classList.remove("is-pulsing");
      void meter.offsetWidth;
      meter.classList.add("is-pulsing");
    }
    meter.querySelector(".meter-fill").style.width = `${Math.max(0, (figure.score / scale) * 100)}%`;
    for (const item of meter.querySelectorAll("[data-kind]")) {
      item.querySelector(".count").textContent = String(figure.counts[item.dataset.kind] || 0);
    }
  }
}

/**
 * A size class for a text shown huge: a long name or vision gets smaller letters, so it
 * stays whole and readable from the back instead of running off the wall.
 */
function sized(text, [long, longer, longest]) {
  const n = [...(text || "")].length;
  if (n > longest) return " is-longest";
  if (n > longer) return " is-longer";
  if (n > long) return " is-long";
  return "";
}

const NAME_SIZES = [12, 20, 32];
const VISION_SIZES = [48, 80, 110];
const TITLE_SIZES = [40, 70, 100];
const CHALLENGE_SIZES = [80, 160, 300];
const PROPOSAL_SIZES = [60, 120, 240];

// The smallest zoom fitStage() goes down to: below it a 1024x768 projector's letters
// would be too small to read from the back of a hall, and a view that needs less was
// built with too much on it (the densities below keep ten battlers well above it).
const MIN_ZOOM = 0.4;

/**
 * Everything on the wall, whatever the names, visions and projector: what sized() and
 * density() could not foresee (a long scenario, ten long visions, a small projector) is
 * zoomed out until the stage holds it whole, never cut off or run under the footer. The
 * view's [data-fit] blocks are zoomed (the join code and the clock keep their size), or
 * the whole view when it has none; the zoom is found by halving the gap between one
 * that fits and one that does not.
 */
function fitStage() {
  const view = stage.firstElementChild;
  if (!view) return;
  const marked = [...stage.querySelectorAll("[data-fit]")];
  const blocks = marked.length ? marked : [view];
  const zoom = (value) => {
    for (const block of blocks) block.style.zoom = value === 1 ? "" : String(value);
  };
  // The view too: a view that fills the stage (the turn's grid) overflows into the stage's
  // padding before the stage's own scrollHeight shows it, and so under the footer.
  const overflows = (box) => box.scrollHeight > box.clientHeight + 1 || box.scrollWidth > box.clientWidth + 1;
  const fits = () => !overflows(stage) && !overflows(view);
  // Measured as the view ends up, not as an entrance animation has it now (a card
  // scaled to 90 % fits where the whole card does not): screen.css, .is-measuring.
  stage.classList.add("is-measuring");
  zoom(1);
  if (!fits()) {
    let [low, high] = [MIN_ZOOM, 1];
    for (let step = 0; step < 7; step += 1) {
      const middle = (low + high) / 2;
      zoom(middle);
      if (fits()) low = middle;
      else high = middle;
    }
    zoom(low);
  }
  stage.classList.remove("is-measuring");
}

/** Fewer, bigger rows for a few battlers; smaller ones so 24 still fit on the wall. */
function density(count) {
  if (count > 10) return "is-denser";
  if (count > 6) return "is-dense";
  return "";
}

let clockCaptionText = "";

function placeClock(slot, caption) {
  slot.append(clockBox);
  clockCaptionText = caption;
  clockBox.hidden = false;
  showClockState();
}

/**
 * The back of the hall cannot tell grey from white: a paused clock and a turn in
 * overtime say so in big letters over the clock. Follows the Countdown's classes, so
 * overtime shows the moment the clock passes zero. A time of six characters ("+10:05")
 * gets smaller figures, so the clock always fits its box.
 */
function showClockState() {
  const state = clockFace.classList.contains("is-paused") ? "paused" : clockFace.classList.contains("is-over") ? "over" : "";
  const caption = { paused: t("Paused"), over: t("Overtime") }[state] || clockCaptionText;
  if (clockCaption.textContent !== caption) clockCaption.textContent = caption;
  clockBox.dataset.state = state;
  clockBox.classList.toggle("is-wide", clockFace.textContent.length > 5);
}

new MutationObserver(showClockState).observe(clockFace, { attributes: true, attributeFilter: ["class"], childList: true, characterData: true, subtree: true });
// The clock keeps its size while fitStage() zooms the view around it, so whatever makes its
// box taller or shorter (the big "Paused" or "Overtime" caption, a six-character time) fits
// the view again, in the same frame, before the wall shows it (docs/architecture.md).
new ResizeObserver(fitStage).observe(clockBox);

/** The QR code and the join code, big: in the lobby, and whenever a vote is open. */
function joinBox(extra = null) {
  return h(
    "div",
    { class: "join-box" },
    h("img", { class: "qr-big", src: `/qr/${encodeURIComponent(page.code)}.svg`, alt: t("QR code to join the battle"), width: "440", height: "440" }),
    h("p", { class: "join-code-label" }, t("Join code")),
    h("p", { class: "join-code" }, page.code),
    h("p", { class: "join-url" }, joinUrl),
    extra,
  );
}

function challengeCard(round, big = false) {
  if (!round || !round.challenge) return null;
  return h(
    "div",
    { class: `challenge-card${big ? " challenge-big" : ""}` },
    h("span", { class: "challenge-label" }, t("Challenge")),
    h("p", { class: `challenge-text${sized(round.challenge, CHALLENGE_SIZES)}` }, round.challenge),
    round.challenge_from ? h("p", { class: "from-hall" }, fromHall(round.challenge_from)) : null,
  );
}

// The lobby's scenario keeps the letters of a short one, whatever its length (up to 2,000
// characters, docs/security.md) and the wall: what the room the topic and the roster leave
// cannot hold is shown a page of whole lines at a time (the columns of .scenario-pages,
// screen.css), each page for SCENARIO_PAGE_MS, then the next, round again to the first.
// Beside ten of the longest battlers a page holds 220 (1024x768) to 290 (1920x1080)
// characters: 15 s reads 300 at 200 words a minute.
// fitStage() zooms the topic and the roster, never the scenario; a long one (more than
// SCENARIO_LONG characters, more than fits beside a roster) keeps two fifths of the
// column for its pages, so a long roster does not leave it three lines a page.
const SCENARIO_PAGE_MS = 15000;
const SCENARIO_LONG = 600;
let scenarioPage = 0;
const scenarioResized = new ResizeObserver(() => showScenarioPage(false));
window.setInterval(() => showScenarioPage(true), SCENARIO_PAGE_MS);

function pagedScenario(text) {
  const long = [...text].length > SCENARIO_LONG ? " is-long" : "";
  const pages = h("div", { class: `scenario-pages${long}`, dataset: { paged: "" } }, h("p", { class: "scenario" }, text));
  scenarioResized.disconnect();
  scenarioResized.observe(pages); // its room changes with the wall and the roster's zoom
  // "Page 1 of 1" holds the line from the start, so showing it never takes room from the pages.
  return [pages, h("p", { class: "scenario-page is-single" }, t("Page {n} of {count}", { n: 1, count: 1 }))];
}

/** The scenario's page (the next one if `turn`), counted again from its box as it is now. */
function showScenarioPage(turn) {
  const pages = stage.querySelector(".scenario-pages");
  if (!pages) return;
  const pitch = pages.clientWidth + parseFloat(getComputedStyle(pages).columnGap);
  const count = Math.max(1, Math.round(pages.scrollWidth / pitch));
  scenarioPage = (scenarioPage + (turn ? 1 : 0)) % count;
  pages.scrollTo({ left: scenarioPage * pitch, behavior: turn && !reducedMotion.matches ? "smooth" : "instant" });
  const where = pages.nextElementSibling;
  where.textContent = t("Page {n} of {count}", { n: scenarioPage + 1, count });
  where.classList.toggle("is-single", count === 1);
}

// --- views per phase ----------------------------------------------------------------------

const views = {
  lobby(battle) {
    return h(
      "div",
      { class: "lobby" },
      h(
        "div",
        { class: "lobby-story" },
        battle.topic ? h("p", { class: "topic", dataset: { fit: "" } }, battle.topic) : null,
        battle.scenario ? pagedScenario(battle.scenario) : null,
        h("div", { class: `card-grid ${density(battle.battlers.length)}`, dataset: { fit: "" } }, battle.battlers.map((b) => battlerCard(b))),
      ),
      joinBox(h("p", { class: "audience-line" }, h("strong", { dataset: { audienceCount: "" } }, "0"), " ", t("have joined"))),
    );
  },
  challenge(battle, round) {
    return h(
      "div",
      { class: "centered" },
      h("p", { class: "eyebrow" }, round.final ? t("The final") : t("Round {n}", { n: round.number })),
      challengeCard(round, true) || h("p", { class: "big-line" }, t("Get ready: the round is about to start.")),
      h("div", { class: "order-strip" }, round.order.map((id) => h("span", { class: "order-item" }, nameOf(battle, id)))),
    );
  },
  turn(battle, round) {
    const speaker = battlerOf(battle, speakerOf(battle));
    const side = h("div", { class: "turn-side" });
    const view = h(
      "div",
      { class: "turn" },
      h(
        "div",
        { class: "turn-main" },
        h(
          "div",
          { dataset: { fit: "" } },
          h("p", { class: "eyebrow" }, t("Now speaking")),
          speaker ? h("h2", { class: `speaker-name${sized(speaker.name, NAME_SIZES)}` }, speaker.name) : null,
          speaker ? h("p", { class: `speaker-vision${sized(speaker.vision, VISION_SIZES)}` }, speaker.vision) : null,
          speaker && speaker.affiliation ? h("p", { class: "card-affiliation" }, speaker.affiliation) : null,
          questionCard(battle, sized(battle.question?.text, CHALLENGE_SIZES)) || challengeCard(round),
        ),
      ),
      side,
      h(
        "ol",
        { class: "order-strip", dataset: { fit: "" } },
        round.order.map((id, index) =>
          h(
            "li",
            { class: `order-item${index < battle.turn_index ? " is-done" : ""}${index === battle.turn_index ? " is-now" : ""}` },
            nameOf(battle, id),
          ),
        ),
      ),
    );
    placeClock(side, t("Time left"));
    if (speaker) side.append(engagementMeter(speaker.id));
    return view;
  },
  debate(battle, round) {
    const head = h("div", { class: "debate-head" }, h("h2", { class: "big-line" }, t("Open debate")), questionCard(battle, sized(battle.question?.text, CHALLENGE_SIZES)));
    const view = h(
      "div",
      { class: "debate" },
      head,
      h(
        "div",
        { class: `card-grid ${density(round.order.length)}` },
        round.order
          .map((id) => battlerOf(battle, id))
          .filter((b) => b && b.status === "in")
          .map((b) => battlerCard(b, engagementMeter(b.id))),
      ),
    );
    placeClock(head, t("Time left"));
    return view;
  },
  vote(battle, round) {
    const vote = currentVote(battle);
    if (!vote) {
      return h(
        "div",
        { class: "centered" },
        h("p", { class: "big-line" }, t("Get your phones ready: the vote opens in a moment.")),
        h("div", { class: `card-grid ${density(round.order.length)}` }, round.order.map((id) => battlerOf(battle, id)).filter((b) => b && b.status === "in").map((b) => battlerCard(b))),
      );
    }
    const head = h("div", { class: "vote-head" }, h("h2", { class: "vote-question" }, voteQuestion(battle, vote)));
    // Live bars when the rules show totals; otherwise the choices and a count of ballots.
    const choices = battle.rules.live_totals
      ? h(
          "ol",
          { class: `bars ${density(vote.choices.length)}`, id: "vote-bars" },
          vote.choices.map((id) =>
            h(
              "li",
              { class: "bar-row", dataset: { choice: id } },
              h("span", { class: "bar-name" }, nameOf(battle, id)),
              h("span", { class: "bar-track", "aria-hidden": "true" }, h("span", { class: "bar-fill" })),
              h("span", { class: "bar-figures" }),
            ),
          ),
        )
      : h("div", { class: `card-grid ${density(vote.choices.length + 2)}` }, vote.choices.map((id) => battlerOf(battle, id)).filter(Boolean).map((b) => battlerCard(b)));
    // While the vote is open, the QR code is big enough to scan from the middle of the hall
    // (the footer's small one steps aside).
    const open = vote.status === "open";
    const view = h(
      "div",
      { class: `vote${open ? " is-open" : ""}` },
      h("div", { class: "vote-main" }, head, h("div", { class: "vote-choices", dataset: { fit: "" } }, h("p", { id: "vote-count", class: "vote-count" }), choices)),
      open ? joinBox() : null,
    );
    if (vote.status === "open" && battle.timer) placeClock(head, t("Time left to vote"));
    return view;
  },
  reveal(battle, round) {
    const vote = revealedVote(battle);
    if (!vote) return h("p", { class: "big-line" }, t("The results are coming."));
    const rows = standings(vote);
    const leaving = round.proposal && round.proposal.method === "decided" ? round.proposal.leaving : [];
    const list = h(
      "ol",
      { class: `bars standings ${density(rows.length)}` },
      rows.map((row, rank) =>
        h(
          "li",
          { class: `bar-row${leaving.includes(row.id) ? " is-leaving" : ""}`, dataset: { share: String(row.share), rank: String(rank) } },
          h("span", { class: "bar-rank" }, String(rank + 1)),
          h("span", { class: "bar-name" }, nameOf(battle, row.id)),
          h("span", { class: "bar-track", "aria-hidden": "true" }, h("span", { class: "bar-fill" })),
          h("span", { class: "bar-figures" }, votesText(row.votes, row.share)),
        ),
      ),
    );
    const view = h(
      "div",
      { class: "reveal" },
      h(
        "div",
        { class: "reveal-head" },
        h("h2", { class: "vote-question" }, vote.runoff ? t("Runoff results") : t("The results")),
        h("p", { class: "vote-count" }, ballotsText(vote.ballots || 0)),
      ),
      list,
      revealOutcome(proposalText(battle, round)),
    );
    buildReveal(view, list, rows, vote.id);
    return view;
  },
  elimination(battle, round) {
    return h(
      "div",
      { class: "elimination centered" },
      h(
        "div",
        { class: `leaving-row ${density(round.eliminated.length * 2)}` },
        round.eliminated.map((id) => battlerOf(battle, id)).filter(Boolean).map((b) => battlerCard(b, null, "is-leaving")),
      ),
      h("p", { class: `big-line${sized(leavingText(battle, round.eliminated), PROPOSAL_SIZES)}` }, leavingText(battle, round.eliminated)),
      round.override_reason ? h("p", { class: "scenario" }, t("The host decided: {reason}", { reason: round.override_reason })) : null,
      h("p", { class: "eyebrow" }, t("Still in the battle")),
      h("div", { class: `card-grid ${density(remaining(battle).length)}` }, remaining(battle).map((b) => battlerCard(b))),
    );
  },
  final(battle) {
    return closingView(battle, winnerView(battle, t("The winning vision")));
  },
  finished(battle) {
    const thanks = battle.winner
      ? winnerView(battle, t("Thank you! The winning vision"))
      : h("div", { class: "centered" }, h("p", { class: "big-line" }, t("The battle is over. Thank you!")));
    return closingView(battle, thanks);
  },
};

// --- the closing view: the winner, then the evening's charts, in turn --------------------
// Once the winner is crowned (the final phase) and after the end of the battle.

// Each panel of the closing view stays this long: the winner, the vote shares, the
// reactions per turn, then the winner again. One chart at a time fills the wall, so its
// letters are as large as the projector allows (docs/protocol.md, charts).
const CLOSING_PANEL_MS = 15000;
let closingTimer = 0;
let closingDrawn = 0;

/**
 * A chart of several blocks (the vote chart of a long evening: eight votes to a block) as
 * one figure per block, each cut to its block (its data-top and data-bottom), so its letters
 * stay as large on the wall as those of a short evening's.
 */
function byBlock(figure) {
  const svg = figure.querySelector("svg");
  const blocks = [...svg.querySelectorAll(":scope > g[data-top]")];
  if (blocks.length < 2) return [figure];
  const width = svg.viewBox.baseVal.width;
  return blocks.map((block, i) => {
    const part = figure.cloneNode(true);
    const top = Number(block.dataset.top);
    const height = Number(block.dataset.bottom) - top;
    part.querySelector("svg").setAttribute("viewBox", `0 ${top} ${width} ${height}`);
    part.querySelector("svg").setAttribute("height", String(height));
    part.querySelector("figcaption").append(` (${i + 1}/${blocks.length})`);
    return part;
  });
}

function closingView(battle, thanks) {
  window.clearInterval(closingTimer);
  const panels = [h("div", { class: "closing-panel" }, thanks)];
  const view = h("div", { class: "closing" }, panels[0]);
  const drawing = ++closingDrawn;
  if (!battle.rounds.length) return view; // ended in the lobby: nothing to draw
  loadCharts().then((figures) => {
    if (drawing !== closingDrawn) return; // rebuilt since (a new state, a language switch)
    for (const figure of figures.filter(Boolean).flatMap(byBlock)) {
      const panel = h("div", { class: "closing-panel closing-chart", hidden: true }, figure);
      panels.push(panel);
      view.append(panel);
    }
    let shown = 0;
    closingTimer = window.setInterval(() => {
      panels[shown].hidden = true;
      shown = (shown + 1) % panels.length;
      panels[shown].hidden = false;
      fitStage();
    }, CLOSING_PANEL_MS);
  });
  return view;
}

function winnerView(battle, caption) {
  const winner = battlerOf(battle, battle.winner);
  const view = h(
    "div",
    { class: "winner centered", dataset: { fit: "" } },
    h("p", { class: "eyebrow" }, caption),
    winner ? h("h2", { class: `winner-name${sized(winner.name, NAME_SIZES)}` }, winner.name) : null,
    winner ? h("p", { class: `speaker-vision${sized(winner.vision, VISION_SIZES)}` }, winner.vision) : null,
    winner && winner.affiliation ? h("p", { class: "card-affiliation" }, winner.affiliation) : null,
  );
  if (!reducedMotion.matches) view.append(confetti());
  return view;
}

function confetti() {
  const colours = ["var(--primary)", "#ef476f", "#06d6a0", "#4cc9f0", "#f78c6b"];
  const layer = h("div", { class: "confetti", "aria-hidden": "true" });
  for (let i = 0; i < 80; i += 1) {
    const piece = h("span", { class: "confetti-piece" });
    piece.style.left = `${Math.random() * 100}%`;
    piece.style.backgroundColor = colours[i % colours.length];
    piece.style.animationDelay = `${Math.random() * 4}s`;
    piece.style.animationDuration = `${3 + Math.random() * 3}s`;
    layer.append(piece);
  }
  return layer;
}

/**
 * Who leaves (or wins), and in its place until then the beat: "The hall has spoken" and
 * three dots that light in turn, so the pause after the last bar reads as suspense, not as
 * a screen that stopped. Both take the same place, so nothing moves when one gives way.
 */
function revealOutcome(text) {
  return h(
    "div",
    { class: "reveal-outcome" },
    text
      ? h(
          "p",
          { class: "reveal-beat" },
          t("The hall has spoken"),
          h("span", { class: "beat-dots", "aria-hidden": "true" }, h("span", {}, "."), h("span", {}, "."), h("span", {}, ".")),
        )
      : null,
    h("p", { class: `proposal${sized(text, PROPOSAL_SIZES)}` }, text),
  );
}

// The reveal's pace: each row comes in a step after the one below it (the steps shrink
// with many battlers, so ten take no longer than four), its bar grows and its figures
// count up for GROW_MS, then the beat (revealOutcome()) shows for BEAT_MS before the one
// who leaves.
const STEP_MS = 600;
const ALL_STEPS_MS = 3000;
const GROW_MS = 1600;
const BEAT_MS = 1500;
let builtVote = "";

/**
 * The reveal builds, once per vote: rows from the last place up, each bar growing while
 * its figures count up, then a beat of suspense (is-counted) before the proposal (who
 * leaves, or the winner) and its colours show (is-decided). A redraw of a reveal already
 * built, and a hall that asked for less motion, get it whole at once.
 */
function buildReveal(view, list, rows, voteId) {
  const build = builtVote !== voteId && !reducedMotion.matches;
  builtVote = voteId;
  const items = [...list.children];
  if (!build) {
    list.classList.add("no-animation");
    items.forEach((item, rank) => showRow(item, rows[rank], 1));
    view.classList.add("is-decided");
    return;
  }
  const step = Math.min(STEP_MS, ALL_STEPS_MS / Math.max(1, items.length - 1));
  // After the page has drawn (and fitStage() measured) the view with its final figures.
  window.requestAnimationFrame(() => {
    items.forEach((item, rank) => {
      item.querySelector(".bar-figures").textContent = votesText(0, 0);
      window.setTimeout(() => countUp(item, rows[rank]), (items.length - 1 - rank) * step);
    });
    const counted = (items.length - 1) * step + GROW_MS;
    window.setTimeout(() => view.classList.add("is-counted"), counted);
    window.setTimeout(() => view.classList.add("is-decided"), counted + BEAT_MS);
  });
}

/** A row as it stands at `progress` (0 to 1) of its growth. */
function showRow(item, row, progress) {
  item.classList.add("is-shown");
  item.querySelector(".bar-fill").style.width = `${row.share * 100}%`;
  const text = votesText(Math.round(row.votes * progress), row.share * progress);
  const figures = item.querySelector(".bar-figures");
  if (figures.textContent !== text) figures.textContent = text;
}

/** The bar grows (a CSS transition of GROW_MS) while the figures count up alongside. */
function countUp(item, row) {
  const start = performance.now();
  const frame = (now) => {
    const progress = Math.min(1, (now - start) / GROW_MS);
    showRow(item, row, 1 - (1 - progress) ** 3); // eased like the bar: fast, then settling
    if (progress < 1 && item.isConnected) window.requestAnimationFrame(frame);
  };
  window.requestAnimationFrame(frame);
}

// --- floating reactions -------------------------------------------------------------------

// However many phones react, at most FLOATS_PER_UPDATE icons start per engagement message
// (one every live_tick_ms at most, docs/settings.md) and FLOATS_AT_ONCE are on the wall:
// a hall of 2,000 tapping makes the same few dozen elements as a hall of 20, each moved
// by the compositor alone (transform and opacity), so the projector's browser keeps up.
const FLOATS_PER_UPDATE = 6;
const FLOATS_AT_ONCE = 24;
const floatLayer = h("div", { class: "floating-reactions", "aria-hidden": "true" });
document.body.append(floatLayer);
let lastCounts = null;

/** Send up to the caps' worth of icons for these new reactions ({kind: how many}). */
export function floatReactions(added) {
  if (reducedMotion.matches) return;
  const kinds = Object.entries(added).filter(([kind, n]) => n > 0 && kind in REACTIONS);
  const total = kinds.reduce((sum, [, n]) => sum + n, 0);
  let room = Math.min(FLOATS_PER_UPDATE, FLOATS_AT_ONCE - floatLayer.childElementCount);
  for (const [kind, n] of kinds) {
    // Each kind gets its share of the room, so a wave of applause still shows the one yawn.
    let count = Math.max(1, Math.round((n / total) * Math.min(room, total)));
    while (count > 0 && room > 0) {
      const icon = reactionIcon(kind, 64);
      icon.classList.add("floating-reaction");
      icon.style.left = `${5 + Math.random() * 85}%`;
      icon.style.animationDelay = `${Math.random() * 0.4}s`;
      icon.addEventListener("animationend", () => icon.remove());
      floatLayer.append(icon);
      count -= 1;
      room -= 1;
    }
  }
}

/** The reactions added since the last engagement message, in the turns and the debate. */
function floatNewReactions() {
  const battle = live.battle;
  const figures = live.currentEngagement();
  const previous = lastCounts;
  lastCounts = figures;
  if (!previous || !battle || !["turn", "debate"].includes(battle.phase)) return;
  const added = {};
  for (const [id, figure] of Object.entries(figures)) {
    for (const [kind, n] of Object.entries(figure.counts || {})) {
      const before = (previous[id] && previous[id].counts && previous[id].counts[kind]) || 0;
      added[kind] = (added[kind] || 0) + Math.max(0, n - before);
    }
  }
  floatReactions(added);
}

function renderTally() {
  const battle = live.battle;
  const vote = currentVote(battle);
  const count = $("#vote-count");
  if (!count || !vote) return;
  const tally = live.currentTally();
  const totals = tally && tally.totals;
  const sum = totals ? Object.values(totals).reduce((a, b) => a + b, 0) : 0;
  const bars = $("#vote-bars");
  for (const row of bars ? bars.children : []) {
    const votes = totals ? totals[row.dataset.choice] || 0 : 0;
    const share = sum ? votes / sum : 0;
    row.querySelector(".bar-fill").style.width = totals ? `${share * 100}%` : "0%";
    row.querySelector(".bar-figures").textContent = totals ? votesText(votes, share) : "";
  }
  const ballots = tally ? tally.ballots : 0;
  count.textContent =
    vote.status === "open"
      ? plural(ballots, "1 ballot in", "{n} ballots in")
      : plural(ballots, "The vote has closed: 1 ballot.", "The vote has closed: {n} ballots.");
}

function renderPresence() {
  const audience = live.presence ? live.presence.audience || 0 : 0;
  for (const node of document.querySelectorAll("[data-audience-count]")) node.textContent = String(audience);
}

// --- the whole page ---------------------------------------------------------------------

function render() {
  const battle = live.battle;
  if (!battle) return;
  const round = currentRound(battle);
  document.body.dataset.phase = battle.phase;
  const vote = currentVote(battle);
  document.body.classList.toggle("is-vote-open", battle.phase === "vote" && Boolean(vote) && vote.status === "open");
  setText($("#phase-label"), null);
  $("#phase-label").textContent = phaseLabel(battle.phase);
  $("#round-label").textContent = round && battle.phase !== "lobby" ? (round.final ? t("Final round") : t("Round {n}", { n: round.number })) : "";
  $("#battle-title").textContent = battle.title;
  $("#battle-title").className = `screen-title${sized(battle.title, TITLE_SIZES)}`;
  clockBox.hidden = true;
  document.body.append(clockBox); // parked until a view places it
  fill(stage, (views[battle.phase] || views.lobby)(battle, round));
  countdown.set(clockBox.hidden ? null : battle.timer);
  renderTally();
  renderEngagement();
  renderPresence();
  fitStage();
}

for (const node of document.querySelectorAll("[data-join-url]")) node.textContent = joinUrl;
window.addEventListener("resize", fitStage);

if (!token) {
  problem.hidden = false;
  setText(problem, "This screen link is incomplete: open the full screen link from the host console.");
} else {
  live.on("state", render);
  live.on("tally", () => {
    renderTally();
    fitStage(); // the live bars' figures widen as the votes come in
  });
  live.on("engagement", () => {
    renderEngagement();
    floatNewReactions();
  });
  live.on("presence", renderPresence);
  live.on("close", ({ opened }) => {
    if (!live.everOpened && !opened && live.attempts >= 3) {
      problem.hidden = false;
      setText(problem, "Cannot connect. Check that the screen link is complete and the server is running.");
    }
  });
  live.on("open", () => {
    problem.hidden = true;
  });
  onLanguageChange(render);
  live.start();
}
