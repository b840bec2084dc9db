/*
 * Future Battles: the page's texts in Danish and English. t(text), text being the English
 * msgid, looks it up in the current language's catalog (both catalogs arrive in one cached
 * file, <link id="catalogs">); the DA/EN switch changes every text at once and is
 * remembered in localStorage.
 */

import { page, store, stored } from "./page.js";

const LANGUAGES = ["da", "en"];
const LANGUAGE_KEY = "battles.language";
let catalogs = {};
try {
  // A file the browser keeps (its address names its version, templates/base.html); the
  // pages' modules wait for it, so t() has its texts from the first render on.
  const response = await fetch(document.getElementById("catalogs").href);
  if (response.ok) catalogs = await response.json();
} catch {
  catalogs = {}; // unreachable: the English texts (the msgids) until a reload
}
let language = chooseLanguage();
const languageListeners = [];

function chooseLanguage() {
  // An explicit ?lang= in the address wins; then the person's choice; then the battle's.
  if (new URLSearchParams(window.location.search).has("lang")) return page.lang;
  const saved = stored(LANGUAGE_KEY);
  return LANGUAGES.includes(saved) ? saved : page.lang;
}

// Texts asked for in a language whose catalog lacks them (English needs none: the msgids
// are English). The browser tests read it through untranslated() after every view.
const missing = new Set();

/** The texts this page showed untranslated so far (a test's check on the catalogs). */
export function untranslated() {
  return [...missing];
}

/** The text in the current language; {name} placeholders are filled from params. */
export function t(text, params) {
  const found = (catalogs[language] || {})[text];
  if (language !== "en" && !(typeof found === "string" && found)) missing.add(text);
  let out = typeof found === "string" && found ? found : text;
  if (params) {
    out = out.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }
  return out;
}

export function currentLanguage() {
  return language;
}

export function setLanguage(next) {
  if (!LANGUAGES.includes(next)) return;
  store(LANGUAGE_KEY, next);
  if (next === language) return;
  language = next;
  applyLanguage();
  for (const listener of languageListeners) listener(next);
}

export function onLanguageChange(listener) {
  languageListeners.push(listener);
}

const I18N_ATTRIBUTES = [
  ["placeholder", "i18nPlaceholder"],
  ["aria-label", "i18nAriaLabel"],
  ["title", "i18nTitle"],
];

/** Retranslate the static texts under root: elements whose data-i18n holds an msgid. */
export function translate(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const [attribute, key] of I18N_ATTRIBUTES) {
    for (const node of root.querySelectorAll(`[data-i18n-${attribute}]`)) {
      node.setAttribute(attribute, t(node.dataset[key]));
    }
  }
}

function applyLanguage() {
  document.documentElement.lang = language;
  translate(document);
  const pageTitle = document.body.dataset.pageTitle;
  if (pageTitle) {
    document.title = [page.title, t(pageTitle), "Future Battles"].filter(Boolean).join(" · ");
  }
  for (const button of document.querySelectorAll("[data-set-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.setLang === language));
  }
}

/** One text for 1, another for any other number (Danish and English count alike). */
export function plural(n, one, many, params) {
  return t(n === 1 ? one : many, { n, ...(params || {}) });
}

// --- every page: the DA/EN switch --------------------------------------------------------

function initChrome() {
  for (const button of document.querySelectorAll("[data-set-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.setLang));
  }
  applyLanguage();
}

initChrome();
