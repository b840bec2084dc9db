/*
 * What the audience may send, and the word filter (docs/rules.md, "The audience takes
 * part"). The rules change at any time (set_audience_rules); the form follows the battle
 * until the host starts editing it.
 */
import { $ } from "../client/dom.js";
import { wordList } from "../console.js";

export class AudienceRules {
  /** desk: what the console's panels share (static/host.js); where: the hall's status line. */
  constructor({ live, commands }, where) {
    this.live = live;
    this.form = $("#audience-rules-form");
    this.dirty = false;
    const form = this.form;
    form.addEventListener("input", () => (this.dirty = true));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const rules = {
        audience_challenges: form.elements.audience_challenges.checked,
        audience_questions: form.elements.audience_questions.checked,
        banned_words: wordList(form.elements.banned_words.value),
      };
      commands.run("set_audience_rules", rules, { where, then: () => (this.dirty = false) });
    });
  }

  render() {
    if (this.dirty) return;
    const rules = this.live.battle.rules;
    const { elements } = this.form;
    elements.audience_challenges.checked = rules.audience_challenges;
    elements.audience_questions.checked = rules.audience_questions;
    elements.banned_words.value = rules.banned_words.join(" ");
  }
}
