/*
 * Future Battles: what the host's pages share (the host console, the setup page and the
 * results page), kept out of static/client/ so that the phones and the screen never load it:
 * the copy fields, the in-page confirmation, the event log in words and the battle forms.
 */
import { nameOf, names } from "./client/battle.js";
import { h } from "./client/dom.js";
import { currentLanguage, t } from "./client/i18n.js";
import { randomId } from "./client/page.js";

// --- links and confirmations ------------------------------------------------------------

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Plain http on a venue's network is not a secure context: no clipboard API there.
    const area = h("textarea", { class: "visually-hidden", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch {
      done = false;
    }
    area.remove();
    return done;
  }
}

/** A read-only link field with a copy button (host console, setup). */
export function linkField(label, url, { open = false } = {}) {
  const id = `link-${randomId(6)}`;
  const input = h("input", { id, type: "text", readonly: true, class: "link-input", value: url, spellcheck: "false" });
  const status = h("span", { class: "copy-status", role: "status" });
  const button = h(
    "button",
    {
      type: "button",
      class: "btn btn-small",
      onclick: async () => {
        const done = await copyText(url);
        status.textContent = done ? t("Copied") : t("Select the text and copy it");
        if (!done) input.select();
        window.setTimeout(() => {
          status.textContent = "";
        }, 2500);
      },
    },
    t("Copy"),
  );
  const opener = open ? h("a", { class: "btn btn-small", href: url, target: "_blank", rel: "noopener" }, t("Open")) : null;
  return h("div", { class: "link-field" }, h("label", { for: id }, label), h("div", { class: "link-row" }, input, button, opener, status));
}

/**
 * An in-page confirmation (the page may be on a projector-facing laptop: no native
 * dialogs). With input: {label, required, multiline, maxLength}, resolves to the text;
 * without, to true. Cancel resolves to null.
 */
export function ask({ title, message, confirm, danger = true, input = null }) {
  return new Promise((resolve) => {
    const headingId = `dialog-${randomId(6)}`;
    let field = null;
    if (input) {
      const fieldId = `${headingId}-input`;
      field = h(input.multiline ? "textarea" : "input", {
        id: fieldId,
        required: Boolean(input.required),
        maxlength: String(input.maxLength || 300),
        rows: input.multiline ? "3" : null,
        type: input.multiline ? null : "text",
      });
      field.value = input.value || "";
    }
    const error = h("p", { class: "form-error", role: "alert" });
    const cancelButton = h("button", { type: "button", class: "btn", value: "cancel" }, t("Cancel"));
    const confirmButton = h("button", { type: "submit", class: danger ? "btn btn-danger" : "btn btn-primary" }, confirm);
    const form = h(
      "form",
      { method: "dialog", class: "dialog-form" },
      h("h2", { id: headingId }, title),
      message ? h("p", {}, message) : null,
      field ? h("label", { for: field.id, class: "field" }, h("span", {}, input.label), field) : null,
      error,
      h("div", { class: "button-row" }, cancelButton, confirmButton),
    );
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": headingId }, form);
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancelButton.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(null);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (field) {
        const text = field.value.trim();
        if (input.required && !text) {
          error.textContent = t("Please fill this in.");
          field.focus();
          return;
        }
        finish(text);
      } else finish(true);
    });
    document.body.append(dialog);
    dialog.showModal();
    (field || cancelButton).focus();
  });
}

// --- the event log in words ------------------------------------------------------------

const ACTIONS = {
  create: "Battle created",
  start_round: "Round started",
  reveal_challenge: "Challenge revealed",
  next: "Next",
  skip_turn: "Turn skipped",
  pause_timer: "Clock paused",
  resume_timer: "Clock resumed",
  extend_timer: "Clock extended",
  reset_timer: "Clock reset",
  open_vote: "Vote opened",
  open_stance: "Stance poll opened",
  close_vote: "Vote closed",
  void_vote: "Vote voided",
  reveal_results: "Results revealed",
  confirm_elimination: "Elimination confirmed",
  override_elimination: "Elimination overridden",
  undo_elimination: "Elimination undone",
  add_battler: "Battler added",
  edit_battler: "Battler edited",
  remove_battler: "Battler removed",
  edit_battle: "Battle edited",
  end_battle: "Battle ended",
  revoke_cohost: "Co-host link revoked",
  revise_vision: "Vision revised",
  undo_revision: "Revision undone",
  revoke_battler: "Battler link revoked",
  show_submission: "Shown from the hall",
  hide_submission: "Taken off the screen",
  set_audience_rules: "Audience rules changed",
};

/** A logged action (a host command type, or "create") in words. */
export function actionLabel(action) {
  return t(ACTIONS[action] || action);
}

const ACTORS = { host: "Host", cohost: "Co-host", timer: "Timer", system: "System", battler: "Battler" };

export function actorLabel(actor) {
  return t(ACTORS[actor] || actor);
}

// What edit_battle and set_audience_rules may change, as the forms name it (templates/
// battle_fields.html): a log entry says what changed in words, not by the field's code.
const FIELDS = {
  title: "Title",
  topic: "Topic",
  scenario: "Scenario",
  language: "Language",
  rules: "Rules",
  audience_challenges: "Challenges from the audience",
  audience_questions: "Questions from the audience",
  banned_words: "Word filter",
};

function changedFields(changes) {
  return Object.keys(changes || {})
    .map((name) => t(FIELDS[name] || name))
    .join(", ");
}

export function battlerStatus(battler) {
  if (battler.status === "winner") return t("Winner");
  if (battler.status === "eliminated") return t("Out in round {n}", { n: battler.eliminated_in_round });
  return t("In");
}

export function endedText(reason) {
  if (!reason) return t("Not ended yet");
  if (reason === "ended_early") return t("Ended early");
  if (reason === "completed") return t("Completed");
  return reason;
}

/** A log entry's details in words (host console, results page). */
export function logDetails(battle, entry) {
  const d = entry.details || {};
  const list = (ids) => names(battle, ids || []);
  switch (entry.action) {
    case "create":
      return d.title || "";
    case "void_vote":
      return t("Reason: {reason}", { reason: d.reason });
    case "override_elimination":
      return `${list(d.eliminated)}. ${t("Reason: {reason}", { reason: d.reason })}`;
    case "confirm_elimination":
      return d.winner ? t("Winner: {name}", { name: nameOf(battle, d.winner) }) : list(d.eliminated);
    case "undo_elimination":
      return list(d.restored);
    case "reveal_challenge":
      return d.text || "";
    case "show_submission":
      return `${d.show_as === "challenge" ? t("Challenge") : t("Question")}: ${d.text || ""}${d.nickname ? ` (${d.nickname})` : ""}`;
    case "hide_submission":
      return d.submission || "";
    case "set_audience_rules":
      return changedFields(d.changes);
    case "start_round":
      return d.challenge ? `${t("Round {n}", { n: d.round })}: ${d.challenge}` : t("Round {n}", { n: d.round });
    case "open_vote":
      return `${d.runoff ? `${t("Runoff vote")}: ` : ""}${list(d.choices)} · ${t("{n} s", { n: d.seconds })}`;
    case "reveal_results":
      return Object.entries(d.totals || {})
        .map(([id, votes]) => `${nameOf(battle, id)} ${votes}`)
        .join(", ");
    case "end_battle":
      return endedText(d.reason);
    case "extend_timer":
      return t("+{n} s", { n: d.seconds });
    case "next":
    case "skip_turn":
      return d.battler ? nameOf(battle, d.battler) : "";
    case "add_battler":
      return d.battler ? d.battler.name : "";
    case "remove_battler":
      return d.name || "";
    case "edit_battler":
      return nameOf(battle, d.id);
    case "edit_battle":
      return changedFields(d.changes);
    case "revise_vision":
      return `${nameOf(battle, d.battler)} v${d.version}: ${d.vision}${d.changed ? ` · ${d.changed}` : ""}`;
    case "undo_revision":
    case "revoke_battler":
      return nameOf(battle, d.battler);
    default:
      return "";
  }
}

export function formatTime(ms) {
  return new Date(ms).toLocaleTimeString(currentLanguage() === "da" ? "da-DK" : "en-GB");
}

// --- forms of the setup page and the host console -------------------------------------

/** Read the rules of templates/battle_fields.html from a form. */
export function readRules(form) {
  const number = (name) => Number.parseInt(form.elements[name].value, 10);
  return {
    turn_seconds: number("turn_seconds"),
    debate_seconds: number("debate_seconds"),
    vote_seconds: number("vote_seconds"),
    runoff_seconds: number("runoff_seconds"),
    order: form.elements.order.value,
    vote_mode: form.elements.vote_mode.value,
    eliminations_per_round: number("eliminations_per_round"),
    final_size: number("final_size"),
    ties: form.elements.ties.value,
    live_totals: form.elements.live_totals.checked,
    stance_polls: form.elements.stance_polls.checked,
    winner: form.elements.winner.value,
    vision_revisions: form.elements.vision_revisions.checked,
    remote: form.elements.remote.checked,
    remote_delay_seconds: number("remote_delay_seconds"),
    max_delay_seconds: number("max_delay_seconds"),
    combine: form.elements.combine.value,
    online_share: number("online_share"),
    reactions: [...form.querySelectorAll('input[name="reactions"]:checked')].map((box) => box.value),
    audience_challenges: form.elements.audience_challenges.checked,
    audience_questions: form.elements.audience_questions.checked,
    banned_words: wordList(form.elements.banned_words.value),
  };
}

/** The word filter's list as a host types it: words apart by spaces, commas or new lines. */
export function wordList(text) {
  return [...new Set(text.toLowerCase().split(/[\s,;]+/).filter(Boolean))];
}

/** The battle fields of templates/battle_fields.html as a BattleDraft / edit_battle body. */
export function readBattleFields(form) {
  return {
    title: form.elements.title.value.trim(),
    topic: form.elements.topic.value.trim(),
    scenario: form.elements.scenario.value.trim(),
    language: form.elements.language.value,
    rules: readRules(form),
  };
}

export function fillBattleFields(form, battle) {
  form.elements.title.value = battle.title;
  form.elements.topic.value = battle.topic;
  form.elements.scenario.value = battle.scenario;
  form.elements.language.value = battle.language;
  const rules = battle.rules;
  const numbers = ["turn_seconds", "debate_seconds", "vote_seconds", "runoff_seconds", "eliminations_per_round", "final_size", "remote_delay_seconds", "max_delay_seconds", "online_share"];
  for (const name of numbers) {
    form.elements[name].value = String(rules[name]);
  }
  form.elements.order.value = rules.order;
  form.elements.vote_mode.value = rules.vote_mode;
  form.elements.stance_polls.checked = rules.stance_polls;
  form.elements.winner.value = rules.winner;
  form.elements.ties.value = rules.ties;
  form.elements.live_totals.checked = rules.live_totals;
  form.elements.vision_revisions.checked = rules.vision_revisions;
  form.elements.remote.checked = rules.remote;
  form.elements.combine.value = rules.combine;
  for (const box of form.querySelectorAll('input[name="reactions"]')) box.checked = rules.reactions.includes(box.value);
  form.elements.audience_challenges.checked = rules.audience_challenges;
  form.elements.audience_questions.checked = rules.audience_questions;
  form.elements.banned_words.value = (rules.banned_words || []).join(" ");
}

/** Name, vision and affiliation inputs of one battler (setup rows, host editor). */
export function battlerInputs(values, key) {
  const field = (name, label, maxLength, required) => {
    const id = `${key}-${name}`;
    const input = h("input", {
      id,
      name,
      type: "text",
      maxlength: String(maxLength),
      required,
      autocomplete: "off",
      dataset: { key: id },
    });
    input.value = (values && values[name]) || "";
    return h("label", { class: "field", for: id }, h("span", { dataset: { i18n: label } }, t(label)), input);
  };
  return [
    field("name", "Name", 60, true),
    field("vision", "Vision title", 140, true),
    field("affiliation", "Affiliation (optional)", 140, false),
  ];
}
