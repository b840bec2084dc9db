// The evening after the show, as the results page, the poster and the screen's closing
// view read it: the export (behind the results token, docs/security.md) and the charts
// (docs/protocol.md, charts), which the server draws as SVG from the battle's record and
// the pages show inline, so that they take the page's colours (charts.css) and their
// <title> and <desc> reach a screen reader.
import { h } from "./client/dom.js";
import { currentLanguage } from "./client/i18n.js";
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
  return { battle: (await response.json()).battle };
}

export const CHART_NAMES = ["votes", "engagement"];
const SVG_NS = "http://www.w3.org/2000/svg";

/** One chart as an <svg> element of this document, in the page's current language. */
export async function loadChart(name) {
  const url = `/api/battles/${encodeURIComponent(page.code)}/charts/${name}.svg?lang=${currentLanguage()}`;
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(`chart ${name}: ${response.status}`);
  // The server escapes every name into text (battles.charts); parsed as XML, never as HTML,
  // and refused if it is anything but a plain drawing.
  const parsed = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
  const svg = parsed.documentElement;
  const handler = [svg, ...svg.querySelectorAll("*")].some((el) => [...el.attributes].some((a) => a.name.startsWith("on")));
  if (svg.namespaceURI !== SVG_NS || svg.localName !== "svg" || handler || svg.querySelector("script, foreignObject, [href]")) {
    throw new Error(`chart ${name}: not a drawing`);
  }
  return document.importNode(svg, true);
}

/** Every chart in its <figure>, captioned with its title, in order; a chart that fails to load is left out. */
export async function loadCharts() {
  const loaded = await Promise.allSettled(CHART_NAMES.map((name) => loadChart(name)));
  return loaded.map((result, i) => {
    if (result.status !== "fulfilled") return null;
    const svg = result.value;
    const caption = h("figcaption", { "aria-hidden": "true" }, svg.querySelector("title").textContent);
    return h("figure", { class: `chart-figure-box chart-figure-${CHART_NAMES[i]}`, tabindex: "0" }, caption, svg);
  });
}
