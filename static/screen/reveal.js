/*
 * The reveal on the wall: the standings build from the last place up, then a beat of
 * suspense, then who leaves (docs/rules.md).
 */
import { ballotsText, figuresText, nameOf, proposalText, revealedVote, standings, votesText } from "../client/battle.js";
import { h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { digestLine } from "../client/receipt.js";
import { PROPOSAL_SIZES, density, reducedMotion, sized } from "./wall.js";

// The reveal's pace: each row comes in a step after the one below it (the steps shrink
// with many battlers, so ten take no longer than four), its bar grows and its figures
// count up for GROW_MS, then the beat (revealOutcome()) shows for BEAT_MS before the one
// who leaves.
const STEP_MS = 600;
const ALL_STEPS_MS = 3000;
const GROW_MS = 1600;
const BEAT_MS = 1500;

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

/** A row as it stands at `progress` (0 to 1) of its growth; grown, with its hall's and online parts. */
function showRow(item, row, progress) {
  item.classList.add("is-shown");
  item.querySelector(".bar-fill").style.width = `${row.share * 100}%`;
  const text = progress < 1 ? votesText(Math.round(row.votes * progress), row.share * progress) : finalText(row);
  const figures = item.querySelector(".bar-figures");
  if (figures.textContent !== text) figures.textContent = text;
}

/** The bar grows (a CSS transition of GROW_MS) while the figures count up alongside. */
/** A row's figures once grown: with the vote's online part, where it has one (docs/rules.md, "Hall and online"). */
function finalText(row) {
  return figuresText(row.id, row.votes, row.share, row.online);
}

function countUp(item, row) {
  const start = performance.now();
  const frame = (now) => {
    const progress = Math.min(1, (now - start) / GROW_MS);
    showRow(item, row, 1 - (1 - progress) ** 3); // eased like the bar: fast, then settling
    if (progress < 1 && item.isConnected) window.requestAnimationFrame(frame);
  };
  window.requestAnimationFrame(frame);
}

export class Reveal {
  constructor() {
    this.builtVote = ""; // the vote whose reveal was built
  }

  view(battle, round) {
    const vote = revealedVote(battle);
    if (!vote) return h("p", { class: "big-line" }, t("The results are coming."));
    const rows = standings(vote).map((row) => ({ ...row, online: vote.online }));
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
          h("span", { class: "bar-figures" }, finalText(row)),
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
        // Small, for anyone comparing it with the console's and the results page's.
        h("div", { class: "reveal-count" }, h("p", { class: "vote-count" }, ballotsText(vote.ballots || 0)), digestLine(vote.digest)),
      ),
      list,
      revealOutcome(proposalText(battle, round)),
    );
    this.build(view, list, rows, vote.id);
    return view;
  }

  /**
   * The reveal builds, once per vote: rows from the last place up, each bar growing while
   * its figures count up, then a beat of suspense (is-counted) before the proposal (who
   * leaves, or the winner) and its colours show (is-decided). A redraw of a reveal already
   * built, and a hall that asked for less motion, get it whole at once.
   */
  build(view, list, rows, voteId) {
    const build = this.builtVote !== voteId && !reducedMotion.matches;
    this.builtVote = voteId;
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
}
