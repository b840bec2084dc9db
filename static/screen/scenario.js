/*
 * The lobby's scenario keeps the letters of a short one, whatever its length (up to 2,000
 * characters, docs/security.md) and the wall: what the room the topic and the roster leave
 * cannot hold is shown a page of whole lines at a time (the columns of .scenario-pages,
 * screen.css), each page for SCENARIO_PAGE_MS, then the next, round again to the first.
 * Beside ten of the longest battlers a page holds 220 (1024x768) to 290 (1920x1080)
 * characters: 15 s reads 300 at 200 words a minute.
 * fitStage() zooms the topic and the roster, never the scenario; a long one (more than
 * SCENARIO_LONG characters, more than fits beside a roster) keeps two fifths of the
 * column for its pages, so a long roster does not leave it three lines a page.
 */
import { h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { reducedMotion } from "./wall.js";

const SCENARIO_PAGE_MS = 15000;
const SCENARIO_LONG = 600;

export class ScenarioPages {
  /** stage: the wall's stage, where the lobby shows the scenario. */
  constructor(stage) {
    this.stage = stage;
    this.page = 0;
    this.resized = new ResizeObserver(() => this.show(false));
    window.setInterval(() => this.show(true), SCENARIO_PAGE_MS);
  }

  /** The scenario's pages, and the line that says which one shows. */
  build(text) {
    const long = [...text].length > SCENARIO_LONG ? " is-long" : "";
    const pages = h("div", { class: `scenario-pages${long}`, dataset: { paged: "" } }, h("p", { class: "scenario" }, text));
    this.resized.disconnect();
    this.resized.observe(pages); // its room changes with the wall and the roster's zoom
    // "Page 1 of 1" holds the line from the start, so showing it never takes room from the pages.
    return [pages, h("p", { class: "scenario-page is-single" }, t("Page {n} of {count}", { n: 1, count: 1 }))];
  }

  /** The scenario's page (the next one if `turn`), counted again from its box as it is now. */
  show(turn) {
    const pages = this.stage.querySelector(".scenario-pages");
    if (!pages) return;
    const pitch = pages.clientWidth + parseFloat(getComputedStyle(pages).columnGap);
    const count = Math.max(1, Math.round(pages.scrollWidth / pitch));
    this.page = (this.page + (turn ? 1 : 0)) % count;
    pages.scrollTo({ left: this.page * pitch, behavior: turn && !reducedMotion.matches ? "smooth" : "instant" });
    const where = pages.nextElementSibling;
    where.textContent = t("Page {n} of {count}", { n: this.page + 1, count });
    where.classList.toggle("is-single", count === 1);
  }
}
