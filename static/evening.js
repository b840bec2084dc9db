// The evening after the show, as the results page, the poster and the screen's closing
// view read it: the export (behind the results token, docs/security.md) and the charts
// (docs/protocol.md, charts), which the server draws as SVG from the battle's record and
// the pages show inline, so that they take the page's colours (charts.css) and their
// <title> and <desc> reach a screen reader.
import { drawing, h } from "./client/dom.js";
import { currentLanguage, t } from "./client/i18n.js";
import { page } from "./client/page.js";

/** The export in one format; the token goes in a header, never in a URL. */
export function fetchExport(token, format) {
  return fetch(`/api/battles/${encodeURIComponent(page.code)}/export.${format}`, {
    headers: { authorization: `Bearer ${token}` },
    cache: "no-store",
  });
}

/** The battle of the export, or the problem to show (an msgid) and whether trying again may help. */
export async function readExport(token) {
  let response;
  try {
    response = await fetchExport(token, "json");
  } catch {
    return { problem: "Could not reach the server. Check the connection and try again.", retry: true };
  }
  if (response.status === 401) return { problem: "This link's key is not valid for this battle.", retry: false };
  if (!response.ok) return { problem: "The server could not load the results. Try again in a moment.", retry: true };
  const exported = await response.json();
  return { battle: exported.battle, persuasion: exported.persuasion || [], visions: exported.visions || {} };
}

export const CHART_NAMES = ["votes", "engagement"];

/** The charts of this battle: the flow chart too once the closing stance poll is revealed. */
function chartNames(battle) {
  return battle && battle.minds ? [...CHART_NAMES, "flows"] : CHART_NAMES;
}

/** One chart as an <svg> element of this document, in the page's current language. */
export async function loadChart(name) {
  const url = `/api/battles/${encodeURIComponent(page.code)}/charts/${name}.svg?lang=${currentLanguage()}`;
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`chart ${name}: ${response.status}`);
  // The server escapes every name into text (battles.charts).
  return drawing(await response.text(), `chart ${name}`);
}

/** A version's figures while it stood (the export's `visions`): "engagement 12 · votes: Round 1: 9". */
export function versionFigures(version) {
  const votes = (version.votes || []).map((v) => `${t("Round {n}", { n: v.round })}: ${v.votes}`).join(", ");
  if (!version.rounds.length) return t("did not stand in a round");
  return `${t("engagement {score}", { score: version.engagement.score })} · ${t("votes: {votes}", { votes: votes || "–" })}`;
}

/** Every chart in its <figure>, captioned with its title, in order; a chart that fails to load is left out. */
export async function loadCharts(battle) {
  const names = chartNames(battle);
  const loaded = await Promise.allSettled(names.map((name) => loadChart(name)));
  return loaded.map((result, i) => {
    if (result.status !== "fulfilled") return null;
    const svg = result.value;
    const caption = h("figcaption", { "aria-hidden": "true" }, svg.querySelector("title").textContent);
    return h("figure", { class: `chart-figure-box chart-figure-${names[i]}`, tabindex: "0" }, caption, svg);
  });
}
