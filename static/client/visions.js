/*
 * A vision that develops (docs/rules.md, "Visions that develop"): its version ("v2"), the
 * "what changed" line of a fresh revision, and its earlier versions a tap away. Shared by
 * the screen, the phones, the battler's own page and the results.
 */
import { h } from "./dom.js";
import { t } from "./i18n.js";

/** The phases in which a vision may be revised: between the rounds (docs/rules.md). */
export const REVISION_PHASES = ["lobby", "challenge", "elimination"];

/** The number of the vision's current version: 1 until it is revised. */
export function versionOf(battler) {
  return Math.max(1, (battler.versions || []).length);
}

/** "v2", "v3"... for a revised vision; nothing for one never revised. */
export function versionTag(battler) {
  const n = versionOf(battler);
  return n > 1 ? h("span", { class: "version-tag", title: t("Version {n} of this vision", { n }) }, `v${n}`) : null;
}

/** The "what changed" line of the current version, while it is new: in the round it first
 *  stands in (a revision shows with the battler's next turn, then only its "v2"). */
export function changedLine(battler, round, className = "vision-changed") {
  const versions = battler.versions || [];
  const current = versions[versions.length - 1];
  if (!current || !current.changed || (round && current.round < round.number)) return null;
  return h("p", { class: className }, h("span", { class: "vision-changed-label" }, t("What changed:")), " ", current.changed);
}

/** One version as a line: "v1 (round 1): the title. What changed." */
function versionLine(version, n) {
  return h(
    "li",
    { class: "version-line" },
    h("span", { class: "version-tag" }, `v${n}`),
    " ",
    h("span", { class: "version-round" }, t("from round {n}", { n: version.round })),
    ": ",
    h("span", { class: "version-vision" }, version.vision),
    version.changed ? h("span", { class: "version-changed" }, ` · ${version.changed}`) : null,
  );
}

/** The earlier versions of a revised vision, behind a tap (a <details>); nothing before a revision. */
export function earlierVersions(battler) {
  const versions = battler.versions || [];
  if (versions.length < 2) return null;
  const earlier = versions.slice(0, -1).map((version, i) => versionLine(version, i + 1));
  return h(
    "details",
    { class: "earlier-versions" },
    h("summary", {}, t("Earlier versions ({n})", { n: earlier.length })),
    h("ol", { class: "version-list" }, earlier.reverse()),
  );
}
