/*
 * The hall's reactions on the wall: a meter per battler in the turns and the debate, and
 * icons floating up as the reactions come in.
 */
import { REACTIONS, reactionIcon, reactionLabel } from "../client/battle.js";
import { h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { reducedMotion } from "./wall.js";

// However many phones react, at most FLOATS_PER_UPDATE icons start per engagement message
// (one every live_tick_ms at most, docs/settings.md) and FLOATS_AT_ONCE are on the wall:
// a hall of 2,000 tapping makes the same few dozen elements as a hall of 20, each moved
// by the compositor alone (transform and opacity), so the projector's browser keeps up.
const FLOATS_PER_UPDATE = 6;
const FLOATS_AT_ONCE = 24;
const floatLayer = h("div", { class: "floating-reactions", "aria-hidden": "true" });
document.body.append(floatLayer);

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

/** A battler's engagement meter, its figures filled in by Engagement.render(). */
export function engagementMeter(live, battlerId) {
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

export class Engagement {
  /** wall: what the screen's parts share (static/screen.js). */
  constructor({ live, stage }) {
    this.live = live;
    this.stage = stage;
    this.lastCounts = null; // the counts of the last engagement message
  }

  /** The meters on the stage, with the figures as they stand. */
  render() {
    const figures = this.live.currentEngagement();
    const scores = Object.values(figures).map((f) => Math.abs(f.score));
    const scale = Math.max(10, ...scores);
    for (const meter of this.stage.querySelectorAll("[data-engagement]")) {
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

  /** The reactions added since the last engagement message, in the turns and the debate. */
  floatNew() {
    const battle = this.live.battle;
    const figures = this.live.currentEngagement();
    const previous = this.lastCounts;
    this.lastCounts = figures;
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
}
