/*
 * From the hall: the moderation queue of the audience's challenges and questions, and the
 * phones blocked for the evening (docs/rules.md, "The audience takes part").
 */
import { currentRound, nameOf } from "../client/battle.js";
import { $, fill, h } from "../client/dom.js";
import { plural, t } from "../client/i18n.js";
import { ask, formatTime } from "../console.js";

const MODERATION = { approve: "Approved", dismiss: "Dismissed", block: "Device blocked", unblock: "Phone unblocked" };
// A decision as one sentence each, for the Danish to read as it is said ("Godkendt af
// værten kl. 20:14"), not words joined in the English order.
const DECISIONS = {
  approve: "Approved by {who} at {time}",
  dismiss: "Dismissed by {who} at {time}",
  block: "Blocked by {who} at {time}",
  unblock: "Unblocked by {who} at {time}",
};
const MODERATORS = { host: "the host", cohost: "the co-host" };

/** Who decided what, and when, in words (the moderation queue, the blocked phones). */
function decisionText(action, by, atMs) {
  return t(DECISIONS[action] || action, { who: t(MODERATORS[by] || by), time: formatTime(atMs) });
}

// How long recountBlocks waits for the other submissions a block or an unblock changed.
const RECOUNT_AFTER_MS = 300;

/** The newest moderator's decision on an item, in words: what, who, when. */
function lastDecision(item) {
  const decision = item.decisions && item.decisions[item.decisions.length - 1];
  if (!decision) return null;
  return h("span", { class: "queue-meta" }, decisionText(decision.action, decision.by, decision.at_ms));
}

/** What is on the screen now from the hall: the submission ids. */
function shownIds(battle) {
  const round = currentRound(battle);
  return new Set([battle.question && battle.question.submission, round && round.challenge_from && round.challenge_from.submission].filter(Boolean));
}

function canShow(battle, as) {
  if (as === "question") return ["turn", "debate"].includes(battle.phase);
  return ["challenge", "turn", "debate"].includes(battle.phase);
}

function none() {
  return [h("li", { class: "hint" }, t("None"))];
}

export class HallQueue {
  /** desk: what the console's panels share (static/host.js). */
  constructor({ live, commands }) {
    this.live = live;
    this.commands = commands;
    this.status = $("#hall-status");
    /** Submission id -> the newest item heard (highest rev): the queue and its changes may cross. */
    this.items = new Map();
    /** The blocks as the newest queue listed them: { submission, by, at_ms }, never a device. */
    this.blocks = [];
    this.recountTimer = 0;
  }

  /** The whole queue (docs/protocol.md, `submissions`). */
  takeQueue(queue) {
    // A change that overtook the queue on the way keeps its higher rev.
    for (const item of queue.items) this.keepNewest(item);
    this.blocks = queue.blocks || [];
    this.render();
  }

  /** One submission stored or changed (docs/protocol.md, `submission`). */
  takeItem(message) {
    const before = this.items.get(message.item.id);
    this.keepNewest(message.item);
    // A device was blocked or unblocked (here or on another console).
    if ((message.item.status === "blocked") !== Boolean(before && before.status === "blocked")) this.recountBlocks();
    this.render();
  }

  keepNewest(item) {
    const known = this.items.get(item.id);
    if (!known || item.rev >= known.rev) this.items.set(item.id, item);
  }

  /** A block or an unblock changed the list of blocked phones, which only the queue carries:
   * ask for it again once the change's other submissions are in (docs/protocol.md, `submissions`). */
  recountBlocks() {
    window.clearTimeout(this.recountTimer);
    this.recountTimer = window.setTimeout(() => this.live.send({ type: "resync" }), RECOUNT_AFTER_MS);
  }

  moderate(item, action) {
    const { commands, status } = this;
    const sent = this.live.request({ type: "moderate", submission: item.id, action }, (reply) => {
      if (reply.type === "error") commands.say(status, reply.message, "error");
      else {
        this.keepNewest(reply.item);
        if (action === "block" || action === "unblock") this.recountBlocks();
        this.render();
        commands.say(status, t("Done: {action}", { action: t(MODERATION[action] || action) }), "ok");
      }
    });
    if (!sent) commands.say(status, t("Not connected: nothing was sent. Wait for the connection and try again."), "error");
  }

  show(item, fields) {
    this.commands.run(fields ? "show_submission" : "hide_submission", { submission: item.id, ...fields }, { where: this.status });
  }

  async blockDevice(item) {
    const yes = await ask({
      title: t("Block this phone for the evening?"),
      message: t("Its waiting challenges and questions are dismissed and it cannot send more tonight. Its votes still count."),
      confirm: t("Block the phone"),
    });
    if (yes) this.moderate(item, "block");
  }

  /** One blocked phone, shown by the submission it was blocked on, with its undo. */
  blockedItem(block) {
    const item = this.items.get(block.submission);
    const who = item ? item.nickname || t("anonymous") : block.submission;
    const when = decisionText("block", block.by, block.at_ms);
    const unblock = h(
      "button",
      { type: "button", class: "btn btn-small", dataset: { key: `unblock-${block.submission}` }, onclick: () => this.moderate({ id: block.submission }, "unblock") },
      t("Unblock"),
    );
    return h(
      "li",
      { class: "queue-item is-blocked", dataset: { block: block.submission } },
      h("span", { class: "queue-meta" }, `${who} · ${when}`),
      item ? h("p", { class: "queue-text" }, item.text) : null,
      h("div", { class: "queue-actions" }, [unblock]),
    );
  }

  queueItem(item, battle, shown) {
    const kindLabel = item.kind === "challenge" ? t("Challenge") : t("Question");
    const who = item.nickname || t("anonymous");
    const meta = [kindLabel, who];
    if (item.kind === "question" && item.battler) meta.push(t("for {name}", { name: nameOf(battle, item.battler) }));
    if (item.round) meta.push(t("Round {n}", { n: item.round }));
    const button = (label, key, onclick, extra = {}) =>
      h("button", { type: "button", class: `btn btn-small${extra.primary ? " btn-primary" : ""}`, dataset: { key: `${key}-${item.id}` }, onclick, ...extra.attrs }, label);
    const actions = [];
    if (item.status === "pending" || item.status === "held") {
      actions.push(button(t("Approve"), "approve", () => this.moderate(item, "approve"), { primary: true }));
      actions.push(button(t("Dismiss"), "dismiss", () => this.moderate(item, "dismiss")));
    }
    if (item.status === "approved") {
      if (shown.has(item.id)) actions.push(button(t("Take off the screen"), "hide", () => this.show(item, null), { primary: true }));
      else {
        actions.push(button(t("Show as the challenge card"), "show-challenge", () => this.show(item, { show_as: "challenge" }), { attrs: { disabled: !canShow(battle, "challenge") } }));
        actions.push(button(t("Show as a question"), "show-question", () => this.show(item, { show_as: "question" }), { attrs: { disabled: !canShow(battle, "question") } }));
        actions.push(button(t("Dismiss"), "dismiss", () => this.moderate(item, "dismiss")));
      }
    }
    actions.push(button(t("Block phone"), "block", () => this.blockDevice(item)));
    return h(
      "li",
      { class: `queue-item is-${item.status}${shown.has(item.id) ? " is-shown" : ""}`, dataset: { submission: item.id } },
      h("span", { class: "queue-meta" }, meta.join(" · ")),
      h("p", { class: "queue-text" }, item.text),
      item.held_for ? h("span", { class: "queue-meta" }, t("Matched: {word}", { word: item.held_for })) : null,
      lastDecision(item),
      h("div", { class: "queue-actions" }, actions),
    );
  }

  render() {
    const battle = this.live.battle;
    if (!battle) return;
    const shown = shownIds(battle);
    const items = [...this.items.values()].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
    const lists = { pending: $("#queue-pending"), held: $("#queue-held"), approved: $("#queue-approved") };
    for (const [status, list] of Object.entries(lists)) {
      const matching = items.filter((item) => item.status === status);
      fill(list, matching.length ? matching.map((item) => this.queueItem(item, battle, shown)) : none());
    }
    fill($("#queue-blocked"), this.blocks.length ? this.blocks.map((block) => this.blockedItem(block)) : none());
    const waiting = items.filter((item) => item.status === "pending" || item.status === "held").length;
    $("#hall-summary").textContent = `${plural(waiting, "1 waiting for review", "{n} waiting for review")} · ${plural(
      this.blocks.length,
      "1 phone blocked",
      "{n} phones blocked",
    )}`;
  }
}
