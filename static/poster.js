// The poster of the evening at /results/CODE/poster#TOKEN: one printed page (poster.css)
// with the title, the scenario, the visions, the winner and the charts. It reads the export
// with the results token, as the results page does (docs/security.md).
import { $, fill, h, setText } from "./client/dom.js";
import { currentLanguage, onLanguageChange, t } from "./client/i18n.js";
import { fragmentToken, page } from "./client/page.js";
import { loadCharts, readExport, versionFigures } from "./evening.js";
import { mostMinds, wonLost } from "./minds.js";

const token = fragmentToken();
const status = $("#poster-status");
const sheet = $("#poster");
const content = $("#poster-content");
let battle = null;
let history = {}; // each vision's history (the export's visions)
let drawing = 0;

async function load() {
  if (!token) {
    setText(status, "This poster link is incomplete: open it from the results page.");
    return;
  }
  const read = await readExport(token);
  if (!read.battle) {
    setText(status, read.problem);
    return;
  }
  battle = read.battle;
  history = read.visions;
  render();
}

function evening() {
  const date = new Intl.DateTimeFormat(currentLanguage() === "da" ? "da-DK" : "en-GB", { dateStyle: "long" }).format(new Date(battle.created_ms));
  return h("p", { class: "poster-eyebrow" }, [battle.topic, date].filter(Boolean).join(" · "));
}

function winnerBox() {
  const winner = battle.battlers.find((b) => b.id === battle.winner);
  if (!winner) return h("section", { class: "poster-winner" }, h("p", { class: "poster-winner-name" }, t("No winner")));
  return h(
    "section",
    { class: "poster-winner", "aria-labelledby": "poster-winner-caption" },
    h("p", { class: "poster-eyebrow", id: "poster-winner-caption" }, t("The winning vision")),
    h("p", { class: "poster-winner-name" }, `★ ${winner.name}`),
    h("p", { class: "poster-winner-vision" }, winner.vision),
  );
}

/** Who moved the most minds (docs/rules.md), under the winner. */
function mindsLine() {
  const most = mostMinds(battle.minds);
  if (!most.length) return null;
  const nameOf = (id) => (battle.battlers.find((b) => b.id === id) || { name: id }).name;
  return h("p", { class: "poster-minds" }, t("Moved the most minds: {names}", { names: most.map((m) => `${nameOf(m.battler)} (${wonLost(m)})`).join(", ") }));
}

function visions() {
  return h(
    "section",
    { class: "poster-visions", "aria-labelledby": "poster-visions-heading" },
    h("h2", { id: "poster-visions-heading" }, t("The visions")),
    h(
      "ul",
      {},
      battle.battlers.map((b) =>
        h(
          "li",
          { class: b.id === battle.winner ? "is-winner" : "" },
          h("strong", {}, b.name),
          b.affiliation ? ` (${b.affiliation})` : "",
          ": ",
          b.vision,
          versions(b),
        ),
      ),
    ),
  );
}

/** A revised vision's versions, each with its round, its line and its figures while it stood. */
function versions(battler) {
  const all = history[battler.id] || [];
  if (all.length < 2) return null;
  return h(
    "ol",
    { class: "poster-versions" },
    all.map((v) => h("li", {}, h("strong", {}, `v${v.version}`), ` · ${t("Round {n}", { n: v.round })}: ${v.vision}${v.changed ? ` (${v.changed})` : ""} · ${versionFigures(v)}`)),
  );
}

/** Shrink the sheet's content until it fits its one page (a long scenario, 24 battlers). */
function fitToPage() {
  content.style.zoom = "1";
  for (let i = 0; i < 8; i += 1) {
    const room = sheet.clientHeight;
    const used = content.getBoundingClientRect().height;
    if (used <= room) break;
    content.style.zoom = String(Number(content.style.zoom) * (room / used) * 0.99);
  }
  document.body.dataset.fitted = "true";
}

function render() {
  if (!battle) return;
  const mine = ++drawing;
  delete document.body.dataset.fitted;
  const charts = h("div", { class: "poster-charts" });
  fill(
    content,
    evening(),
    h("h1", { id: "poster-title", class: "poster-title" }, battle.title),
    battle.scenario ? h("p", { class: "poster-scenario" }, battle.scenario) : null,
    winnerBox(),
    mindsLine(),
    visions(),
    charts,
    h("p", { class: "poster-foot" }, `Future Battles · ${page.code}`),
  );
  sheet.hidden = false;
  setText(status, null);
  loadCharts(battle).then((figures) => {
    if (mine !== drawing) return;
    fill(charts, figures);
    fitToPage();
    $("#print").disabled = false;
  });
}

$("#print").addEventListener("click", () => window.print());
$("#back").href = `/results/${encodeURIComponent(page.code)}#${token}`;
onLanguageChange(render);
load();
