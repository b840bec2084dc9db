/*
 * The room's panels of the console: who is connected, how the hall reacts to each battler
 * this round, and the battlers' standing in the battle.
 */
import { currentRound, nameOf, reactionIcon, reactionLabel, speakerOf } from "../client/battle.js";
import { $, fill, h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { battlerStatus } from "../console.js";

export function renderPresence(live) {
  const presence = live.presence || {};
  for (const role of ["audience", "screen", "host", "cohost", "battler"]) {
    $(`#presence-${role}`).textContent = String(presence[role] || 0);
  }
}

export function renderEngagement(live) {
  const battle = live.battle;
  const round = currentRound(battle);
  const figures = live.currentEngagement();
  const list = $("#host-engagement");
  if (!round) {
    fill(list, h("li", { class: "hint" }, t("Reactions are counted from the first round.")));
    return;
  }
  const scale = Math.max(10, ...Object.values(figures).map((f) => Math.abs(f.score)));
  fill(
    list,
    round.order.map((id) => {
      const figure = figures[id] || { counts: {}, score: 0 };
      const fillBar = h("span", { class: "meter-fill" });
      fillBar.style.width = `${Math.max(0, (figure.score / scale) * 100)}%`;
      return h(
        "li",
        { class: `engagement-row${id === speakerOf(battle) ? " is-now" : ""}` },
        h("span", { class: "engagement-name" }, nameOf(battle, id)),
        h("span", { class: "engagement-score" }, String(figure.score)),
        h("span", { class: "meter", "aria-hidden": "true" }, fillBar),
        h(
          "span",
          { class: "engagement-counts" },
          battle.rules.reactions.map((kind) =>
            h("span", { class: "count-item", title: reactionLabel(kind) }, reactionIcon(kind, 18), h("span", { class: "visually-hidden" }, reactionLabel(kind)), ` ${figure.counts[kind] || 0}`),
          ),
        ),
      );
    }),
  );
}

export function renderRoster(live) {
  const battle = live.battle;
  fill(
    $("#host-roster"),
    battle.battlers.map((b) =>
      h(
        "li",
        { class: `status-row is-${b.status}` },
        h("span", { class: "status-name" }, b.name),
        h("span", { class: "status-vision" }, b.vision),
        h("span", { class: "status-tag" }, battlerStatus(b)),
      ),
    ),
  );
}
