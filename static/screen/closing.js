/*
 * The closing view: the winner, then the evening's charts, in turn. Once the winner is
 * crowned (the final phase) and after the end of the battle.
 */
import { battlerOf } from "../client/battle.js";
import { h } from "../client/dom.js";
import { plural, t } from "../client/i18n.js";
import { loadCharts } from "../evening.js";
import { apartText, mostMinds } from "../minds.js";
import { NAME_SIZES, VISION_SIZES, reducedMotion, sized } from "./wall.js";

// Each panel of the closing view stays this long: the winner, the vote shares, the
// reactions per turn, then the winner again. One chart at a time fills the wall, so its
// letters are as large as the projector allows (docs/protocol.md, charts).
const CLOSING_PANEL_MS = 15000;

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

export function winnerView(battle, caption) {
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

/** The second beat after the winner: who moved the most minds, with won and lost (docs/rules.md). */
function mindsBeat(battle) {
  const most = mostMinds(battle.minds);
  if (!most.length) return null;
  const cards = most.map((minds) => {
    const battler = battlerOf(battle, minds.battler);
    const name = battler ? battler.name : minds.battler;
    return h(
      "div",
      { class: "minds-card" },
      h("h2", { class: `winner-name minds-name${sized(name, NAME_SIZES)}` }, name),
      battler ? h("p", { class: `speaker-vision${sized(battler.vision, VISION_SIZES)}` }, battler.vision) : null,
      h(
        "p",
        { class: "minds-figures" },
        h("span", { class: "minds-won" }, t("{n} won", { n: minds.won })),
        h("span", { class: "minds-lost" }, t("{n} lost", { n: minds.lost })),
      ),
    );
  });
  return h(
    "div",
    { class: "minds-beat centered", dataset: { fit: "" } },
    h("p", { class: "eyebrow" }, plural(most.length, "Moved the most minds", "Moved the most minds, together")),
    cards,
    h("p", { class: "minds-apart" }, apartText(battle.minds)),
  );
}

export class Closing {
  /** fit: fits the view to the stage again (wall.js, fitStage). */
  constructor(fit) {
    this.fit = fit;
    this.timer = 0;
    this.drawn = 0; // counts the closing views built, so a late chart joins only the newest
  }

  view(battle, thanks) {
    window.clearInterval(this.timer);
    const panels = [h("div", { class: "closing-panel" }, thanks)];
    const view = h("div", { class: "closing" }, panels[0]);
    // The second beat after the winner: who moved the most minds (docs/rules.md).
    const beat = mindsBeat(battle);
    if (beat) {
      panels.push(h("div", { class: "closing-panel", hidden: true }, beat));
      view.append(panels[1]);
    }
    const drawing = ++this.drawn;
    if (!battle.rounds.length) return view; // ended in the lobby: nothing to draw
    loadCharts(battle).then((figures) => {
      if (drawing !== this.drawn) return; // rebuilt since (a new state, a language switch)
      for (const figure of figures.filter(Boolean).flatMap(byBlock)) {
        const panel = h("div", { class: "closing-panel closing-chart", hidden: true }, figure);
        panels.push(panel);
        view.append(panel);
      }
      let shown = 0;
      this.timer = window.setInterval(() => {
        panels[shown].hidden = true;
        shown = (shown + 1) % panels.length;
        panels[shown].hidden = false;
        this.fit();
      }, CLOSING_PANEL_MS);
    });
    return view;
  }
}
