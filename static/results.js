// The results page at /results/CODE#TOKEN: the whole evening from the export
// (docs/rules.md, vocabulary: after the show). The results token (docs/security.md) goes in a header, never in a URL.
import { REACTIONS, ballotsText, figuresText, fromHall, reactionLabel, standings } from "./client/battle.js";
import { formatClock } from "./client/clock.js";
import { $, fill, h, setText } from "./client/dom.js";
import { onLanguageChange, t } from "./client/i18n.js";
import { fragmentToken, page } from "./client/page.js";
import { checkReceipt, digestLine } from "./client/receipt.js";
import { actionLabel, actorLabel, battlerStatus, endedText, formatTime, logDetails } from "./console.js";
import { fetchExport, loadCharts, readExport, versionFigures } from "./evening.js";
import { mindsSection } from "./minds.js";

const token = fragmentToken();
const status = $("#results-status");
const container = $("#results");
let battle = null;
let persuasion = [];
let visions = {}; // each vision's history (docs/protocol.md, export.json)

const VOTE_STATUS = { open: "Still open", closed: "Closed", voided: "Voided", revealed: "Revealed" };

async function load() {
  if (!token) {
    setText(status, "This results link is incomplete: open the results link from the host console or the setup page.");
    return;
  }
  setText(status, "Loading the results…");
  const read = await readExport(token);
  $("#downloads").hidden = !read.battle && !read.retry;
  if (!read.battle) {
    setText(status, read.problem);
    return;
  }
  battle = read.battle;
  persuasion = read.persuasion;
  visions = read.visions;
  setText(status, null);
  render();
}

async function download(format) {
  const button = $(`#download-${format}`);
  button.disabled = true;
  try {
    const response = await fetchExport(token, format);
    if (!response.ok) throw new Error(String(response.status));
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: `battle-${page.code}.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch {
    setText(status, "The download failed. Try again.");
  } finally {
    button.disabled = false;
  }
}

const nameOf = (id) => (battle.battlers.find((b) => b.id === id) || { name: id }).name;
const list = (ids) => (ids || []).map(nameOf).join(", ");

/**
 * A table; on a phone each row becomes a card whose cells say their column's name
 * (data-label, console.css), so nothing is cut off or scrolled sideways.
 */
function table(caption, head, rows) {
  // A table wider than a laptop (a round per column, 24 battlers) scrolls in its own box.
  return h("div", { class: "table-scroll", role: "region", "aria-label": caption, tabindex: "0" }, wideTable(caption, head, rows));
}

function wideTable(caption, head, rows) {
  return h(
    "table",
    { class: "table" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((cell) => h("th", { scope: "col" }, cell)))),
    h(
      "tbody",
      {},
      rows.map((row) => h("tr", {}, row.map((cell, i) => (i === 0 ? h("th", { scope: "row" }, cell) : h("td", { dataset: { label: head[i] } }, cell))))),
    ),
  );
}

function summary() {
  const winner = battle.battlers.find((b) => b.id === battle.winner);
  const item = (label, value) => (value ? h("div", {}, h("dt", {}, label), h("dd", {}, value)) : null);
  return h(
    "section",
    { class: "panel", "aria-labelledby": "summary-heading" },
    h("h2", { id: "summary-heading" }, t("The evening")),
    h(
      "dl",
      { class: "facts" },
      item(t("Join code"), battle.code),
      item(t("Topic"), battle.topic),
      item(t("Scenario"), battle.scenario),
      item(t("Winner"), winner ? `${winner.name}: ${winner.vision}` : t("No winner")),
      item(t("Rounds"), String(battle.rounds.length)),
      item(t("How it ended"), endedText(battle.ended_reason)),
    ),
  );
}

/** The charts of the evening (drawn by the server) and the poster to print; the tables
 * below hold every figure as text. Loaded again in the new language after a switch. */
let chartsDrawn = 0;

function pictures() {
  const box = h("div", { class: "charts", "aria-busy": "true" });
  const drawing = ++chartsDrawn;
  loadCharts(battle).then((figures) => {
    if (drawing !== chartsDrawn) return; // a newer render (a language switch) draws its own
    box.removeAttribute("aria-busy");
    if (figures.some(Boolean)) fill(box, figures);
    else fill(box, h("p", { class: "warning" }, t("The charts could not be loaded. Try again in a moment.")));
  });
  return h(
    "section",
    { class: "panel", "aria-labelledby": "pictures-heading" },
    h("h2", { id: "pictures-heading" }, t("The evening in pictures")),
    box,
    h("p", { class: "button-row" }, h("a", { class: "btn", id: "poster-link", href: `/results/${encodeURIComponent(page.code)}/poster#${token}` }, t("Print poster"))),
  );
}

function roster() {
  return h(
    "section",
    { class: "panel" },
    table(
      t("Battlers"),
      [t("Name"), t("Vision"), t("Affiliation"), t("Status")],
      battle.battlers.map((b) => [b.name, b.vision, b.affiliation || "", battlerStatus(b)]),
    ),
  );
}

/** Each vision's history (docs/rules.md, "Visions that develop"): every version with its
 * round and its line, and the engagement and votes it drew while it stood. */
function history() {
  const rows = battle.battlers.flatMap((b) =>
    (visions[b.id] || []).map((v) => [b.name, `v${v.version}`, v.vision, t("Round {n}", { n: v.round }), v.changed || "–", versionFigures(v)]),
  );
  if (!rows.length) return null;
  return h(
    "section",
    { class: "panel", id: "vision-history" },
    table(t("How the visions developed"), [t("Battler"), t("Version"), t("Vision"), t("From"), t("What changed"), t("While it stood")], rows),
  );
}

/** Every battler's votes in each round's counted votes (revealed, or closed and counted by
 * end_battle): the evening at a glance. */
function totals() {
  const columns = [];
  for (const round of battle.rounds) {
    for (const vote of round.votes) {
      if (!vote.totals) continue;
      columns.push({ vote, label: vote.runoff ? t("Round {n} (runoff)", { n: round.number }) : t("Round {n}", { n: round.number }) });
    }
  }
  if (!columns.length) return null;
  return h(
    "section",
    { class: "panel" },
    table(
      t("Votes per round"),
      [t("Battler"), ...columns.map((c) => c.label)],
      battle.battlers.map((b) => [b.name, ...columns.map((c) => (c.vote.choices.includes(b.id) ? String(c.vote.totals[b.id] || 0) : "–"))]),
    ),
  );
}

function voteBlock(round, vote) {
  const head = [
    vote.runoff ? t("Runoff vote") : t("Vote"),
    t(VOTE_STATUS[vote.status] || vote.status),
    vote.mode === "keep" ? t("vote to keep") : t("vote out"),
    vote.ballots !== null && vote.ballots !== undefined ? ballotsText(vote.ballots) : null,
  ].filter(Boolean);
  return h(
    "div",
    { class: "vote-block" },
    h("h4", {}, head.join(" · ")),
    vote.void_reason ? h("p", { class: "warning" }, t("Voided: {reason}", { reason: vote.void_reason })) : null,
    digestLine(vote.digest),
    vote.totals
      ? h(
          "ol",
          { class: "bars bars-small" },
          standings(vote).map((row) => {
            const fillBar = h("span", { class: "bar-fill" });
            fillBar.style.width = `${row.share * 100}%`;
            return h(
              "li",
              { class: "bar-row" },
              h("span", { class: "bar-name" }, nameOf(row.id)),
              h("span", { class: "bar-track", "aria-hidden": "true" }, fillBar),
              h("span", { class: "bar-figures" }, figuresText(row.id, row.votes, row.share, vote.online)),
            );
          }),
        )
      : null,
  );
}

/** Checking a receipt (docs/rules.md, votes): a phone's receipt against a counted vote.
 * Public: the receipt is the secret, and the answer names that ballot only. */
function receiptCheck() {
  const counted = battle.rounds.flatMap((round) =>
    round.votes.filter((vote) => vote.status === "closed" || vote.status === "revealed").map((vote) => ({ round, vote })),
  );
  if (!counted.length) return null;
  const choose = h(
    "select",
    { id: "receipt-vote", name: "vote" },
    counted.map(({ round, vote }) =>
      h("option", { value: vote.id }, vote.runoff ? t("Round {n} (runoff)", { n: round.number }) : t("Round {n}", { n: round.number })),
    ),
  );
  const typed = h("input", { id: "receipt-code", name: "receipt", type: "text", autocomplete: "off", spellcheck: false, maxlength: 24, required: true });
  const answer = h("div", { id: "receipt-answer", role: "status", "aria-live": "polite" });
  const check = async (event) => {
    event.preventDefault();
    const found = await checkReceipt(choose.value, typed.value, nameOf);
    fill(answer, h("p", { class: `receipt-answer${found.counted ? " is-counted" : " is-missing"}` }, found.text), digestLine(found.digest));
  };
  return h(
    "section",
    { class: "panel", id: "receipt-check", "aria-labelledby": "receipt-check-title" },
    h("h2", { id: "receipt-check-title" }, t("Check a receipt")),
    h("p", { class: "hint" }, t("Each phone that voted got a receipt, such as K7QXM-2PART. Type it here to see that its ballot is in the count as it was cast; no other ballot is shown.")),
    h(
      "form",
      { class: "inline-form", onsubmit: check },
      h("label", { class: "field", for: "receipt-vote" }, h("span", {}, t("Vote")), choose),
      h("label", { class: "field", for: "receipt-code" }, h("span", {}, t("Receipt")), typed),
      h("button", { type: "submit", class: "btn" }, t("Check")),
    ),
    answer,
  );
}

function engagement(round) {
  const figures = round.engagement || {};
  const ids = Object.keys(figures);
  if (!ids.length) return h("p", { class: "hint" }, t("No reactions this round."));
  const kinds = Object.keys(REACTIONS);
  return table(
    t("Engagement in round {n}", { n: round.number }),
    [t("Battler"), ...kinds.map((k) => reactionLabel(k)), t("Score")],
    ids.map((id) => [nameOf(id), ...kinds.map((k) => String((figures[id].counts || {})[k] || 0)), String(figures[id].score)]),
  );
}

/** A turn's reactions as kept when it ended (the engagement chart's bars, as text). */
function turnReactions(turn) {
  if (!turn.reactions) return "–";
  const kinds = Object.keys(REACTIONS).filter((kind) => turn.reactions[kind]);
  const total = kinds.reduce((sum, kind) => sum + turn.reactions[kind], 0);
  return kinds.length ? `${total}: ${kinds.map((kind) => `${reactionLabel(kind)} ${turn.reactions[kind]}`).join(", ")}` : "0";
}

function turns(round) {
  if (!round.turns.length) return null;
  return table(
    t("Turns in round {n}", { n: round.number }),
    [t("Battler"), t("Started"), t("Length"), t("Skipped"), t("Reactions")],
    round.turns.map((turn) => [
      nameOf(turn.battler),
      formatTime(turn.started_ms),
      turn.ended_ms ? formatClock(turn.ended_ms - turn.started_ms) : "–",
      turn.skipped ? t("Yes") : t("No"),
      turnReactions(turn),
    ]),
  );
}

function roundSection(round) {
  return h(
    "section",
    { class: "panel round-section", "aria-labelledby": `round-${round.number}` },
    h("h3", { id: `round-${round.number}` }, round.final ? t("Round {n}: the final", { n: round.number }) : t("Round {n}", { n: round.number })),
    round.challenge ? h("p", { class: "challenge-inline" }, t("Challenge: {text}", { text: round.challenge })) : null,
    h("p", {}, t("Order: {names}", { names: list(round.order) })),
    turns(round),
    round.votes.map((vote) => voteBlock(round, vote)),
    engagement(round),
    round.eliminated.length
      ? h("p", { class: "strong" }, round.final ? t("Winner: {name}", { name: list(round.order.filter((id) => !round.eliminated.includes(id))) }) : t("Eliminated: {names}", { names: list(round.eliminated) }))
      : null,
    round.override_reason ? h("p", { class: "warning" }, t("The host overrode the rules: {reason}", { reason: round.override_reason })) : null,
  );
}

function overrides() {
  const entries = (battle.log || []).filter((e) => e.action === "override_elimination" || e.action === "void_vote" || e.action === "undo_elimination");
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, t("Overrides and corrections")),
    entries.length
      ? h(
          "ul",
          { class: "plain-list" },
          entries.map((e) =>
            h(
              "li",
              {},
              h("time", {}, formatTime(e.at_ms)),
              " ",
              actionLabel(e.action),
              e.details.reason ? ` · ${t("Reason: {reason}", { reason: e.details.reason })}` : "",
              e.details.eliminated ? ` · ${list(e.details.eliminated)}` : "",
              e.details.restored ? ` · ${list(e.details.restored)}` : "",
            ),
          ),
        )
      : h("p", { class: "hint" }, t("The host did not override or correct anything.")),
  );
}

/** What the hall sent that reached the screen, as the event log keeps it: nothing a
 * moderator held back, dismissed or never showed (docs/rules.md, "The audience takes part"). */
function fromTheHall() {
  const shown = (battle.log || []).filter((e) => e.action === "show_submission");
  if (!shown.length) return null;
  return h(
    "section",
    { class: "panel", id: "from-the-hall" },
    h("h2", {}, t("From the hall: challenges and questions")),
    h(
      "ul",
      { class: "plain-list" },
      shown.map((e) =>
        h(
          "li",
          {},
          h("time", {}, formatTime(e.at_ms)),
          " ",
          e.details.show_as === "challenge" ? t("Challenge") : t("Question"),
          " · ",
          h("q", {}, e.details.text),
          " · ",
          fromHall(e.details),
        ),
      ),
    ),
  );
}

function log() {
  const entries = battle.log || [];
  return h(
    "section",
    { class: "panel" },
    table(
      t("Event log"),
      [t("Time"), t("Who"), t("What"), t("Details")],
      entries.map((e) => [formatTime(e.at_ms), actorLabel(e.actor), actionLabel(e.action), logDetails(battle, e)]),
    ),
  );
}

function render() {
  if (!battle) return;
  $("#battle-title").textContent = battle.title;
  fill(
    container,
    summary(),
    pictures(),
    roster(),
    history(),
    totals(),
    mindsSection(table, battle, persuasion),
    h("h2", { class: "section-title" }, t("Rounds")),
    battle.rounds.length ? battle.rounds.map(roundSection) : h("p", { class: "hint" }, t("No round was played.")),
    receiptCheck(),
    fromTheHall(),
    overrides(),
    log(),
  );
}

$("#download-json").addEventListener("click", () => download("json"));
$("#download-csv").addEventListener("click", () => download("csv"));
$("#reload").addEventListener("click", load);
onLanguageChange(render);
load();
