// The setup page: a host creates a battle (POST /api/battles) and gets its links.
import { $, fill, h, setText } from "./client/dom.js";
import { currentLanguage, onLanguageChange, t } from "./client/i18n.js";
import { battlerInputs, linkField, readBattleFields } from "./console.js";

const form = $("#setup-form");
const rows = $("#battler-rows");
const error = $("#setup-error");
const created = $("#created");
let rowCount = 0;
let result = null;

function addRow(values) {
  rowCount += 1;
  const key = `battler-${rowCount}`;
  const legend = h("legend", {});
  const row = h(
    "li",
    { class: "battler-row" },
    h(
      "fieldset",
      { class: "fieldset-inner" },
      legend,
      h("div", { class: "field-grid" }, battlerInputs(values, key)),
      h("button", { type: "button", class: "btn btn-small btn-quiet", dataset: { remove: "", i18n: "Remove" } }, t("Remove")),
    ),
  );
  row.querySelector("[data-remove]").addEventListener("click", () => removeRow(row));
  rows.append(row);
  numberRows();
  return row;
}

function removeRow(row) {
  const next = row.nextElementSibling || row.previousElementSibling;
  row.remove();
  numberRows();
  (next ? next.querySelector("input") : $("#add-battler")).focus();
}

function numberRows() {
  [...rows.children].forEach((row, index) => {
    row.querySelector("legend").textContent = t("Battler {n}", { n: index + 1 });
    row.querySelector("[data-remove]").setAttribute("aria-label", t("Remove battler {n}", { n: index + 1 }));
  });
}

function battlers() {
  return [...rows.children].map((row) => ({
    name: row.querySelector('[name="name"]').value.trim(),
    vision: row.querySelector('[name="vision"]').value.trim(),
    affiliation: row.querySelector('[name="affiliation"]').value.trim(),
  }));
}

function showProblems(intro, problems) {
  fill(error, h("p", {}, intro), problems.length ? h("ul", {}, problems.map((p) => h("li", {}, p))) : null);
}

async function create(event) {
  event.preventDefault();
  if (!form.reportValidity()) return;
  setText(error, null);
  const button = $("#create-button");
  button.disabled = true;
  const headers = { "content-type": "application/json" };
  const token = $("#create-token").value.trim();
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch("/api/battles", {
      method: "POST",
      headers,
      body: JSON.stringify({ ...readBattleFields(form), battlers: battlers() }),
    });
  } catch {
    setText(error, "Could not reach the server. Check the connection and try again.");
    button.disabled = false;
    return;
  }
  button.disabled = false;
  if (response.status === 201) {
    result = await response.json();
    showCreated();
    return;
  }
  if (response.status === 401) {
    $("#create-token-box").open = true;
    setText(error, "This server needs an organiser key to create battles.");
    $("#create-token").focus();
    return;
  }
  if (response.status === 422) {
    const body = await response.json().catch(() => ({}));
    const problems = (body.details || []).map((d) => `${(d.loc || []).join(" › ")}: ${d.msg}`);
    showProblems(t("Please check these fields:"), problems);
    return;
  }
  setText(error, "The server could not create the battle. Try again in a moment.");
}

const LINKS = [
  ["host", "Host console (secret)"],
  ["cohost", "Co-host console (secret)"],
  ["screen", "Screen (secret, read-only)"],
  ["overlay", "Stream overlay (secret, read-only)"],
  ["join", "Audience join link (public)"],
  ["results", "Results after the show (secret)"],
];

function showCreated() {
  if (!result) return;
  form.hidden = true;
  created.hidden = false;
  $("#created-code").textContent = result.code;
  fill(
    $("#created-links"),
    LINKS.filter(([key]) => result.links[key]).map(([key, label]) => linkField(t(label), result.links[key])),
  );
  created.focus();
}

$("#add-battler").addEventListener("click", () => addRow().querySelector("input").focus());
$("#open-host").addEventListener("click", () => {
  if (result) window.location.assign(result.links.host);
});
$("#create-another").addEventListener("click", () => window.location.reload());
form.addEventListener("submit", create);

// The battle's language follows the page's until the host picks one: a host who reads
// this form in Danish most likely runs a Danish evening.
const battleLanguage = form.elements.language;
let languagePicked = false;
battleLanguage.addEventListener("change", () => {
  languagePicked = true;
});
battleLanguage.value = currentLanguage();

onLanguageChange((next) => {
  if (!languagePicked) battleLanguage.value = next;
  numberRows();
  if (!created.hidden) showCreated();
});

addRow();
addRow();
