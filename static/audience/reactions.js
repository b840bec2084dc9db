/*
 * The phone's reactions (docs/rules.md, "The audience takes part"): one tap, then a
 * cool-down the server sets; in the open debate, to the battler the phone picked.
 */
import { reactionIcon, reactionLabel } from "../client/battle.js";
import { $, h } from "../client/dom.js";
import { t } from "../client/i18n.js";

const DEFAULT_COOLDOWN_MS = 800;

export class Reactions {
  /** live: the phone's Live; notice: its notice line (notice.js). */
  constructor(live, notice) {
    this.live = live;
    this.notice = notice;
    this.cooldownUntil = 0;
    this.cooldownTimer = 0;
    this.target = null; // the battler picked in the open debate
    this.stageMain = $("#stage-main");
  }

  cooldownMs() {
    const limits = this.live.welcome && this.live.welcome.limits;
    return limits && typeof limits.reaction_cooldown_ms === "number" ? limits.reaction_cooldown_ms : DEFAULT_COOLDOWN_MS;
  }

  react(kind) {
    if (Date.now() < this.cooldownUntil) return;
    const battle = this.live.battle;
    const message = { type: "react", kind };
    if (battle.phase === "debate") {
      if (!this.target) return;
      message.battler = this.target;
    }
    const sent = this.live.request(message, (reply) => {
      if (reply.type !== "error") return;
      if (reply.reason === "cooldown" && reply.params && reply.params.wait_ms) this.startCooldown(reply.params.wait_ms);
      this.notice.show(reply.message);
    });
    if (!sent) {
      this.notice.show(t("Not connected. Your reaction was not sent."));
      return;
    }
    this.startCooldown(this.cooldownMs());
    this.notice.show(t("Sent: {reaction}", { reaction: reactionLabel(kind) }));
  }

  startCooldown(ms) {
    this.cooldownUntil = Date.now() + ms;
    window.clearTimeout(this.cooldownTimer);
    this.cooldownTimer = window.setTimeout(() => this.updateButtons(), ms + 20);
    this.updateButtons();
    const bar = $("#cooldown-bar");
    if (bar) {
      // Restart the shrinking bar: full width at once, then to zero over the cool-down.
      bar.style.transition = "none";
      bar.style.width = "100%";
      void bar.offsetWidth;
      bar.style.transition = `width ${ms}ms linear`;
      bar.style.width = "0%";
    }
  }

  updateButtons() {
    const cooling = Date.now() < this.cooldownUntil;
    const needTarget = this.live.battle && this.live.battle.phase === "debate" && !this.target;
    for (const button of this.stageMain.querySelectorAll("[data-reaction]")) button.disabled = cooling || needTarget;
    const panel = $("#reaction-panel");
    if (panel) panel.classList.toggle("is-cooling", cooling);
  }

  panel(battle) {
    const kinds = battle.rules.reactions;
    if (!kinds.length) return h("p", { class: "hint" }, t("Reactions are switched off tonight."));
    return h(
      "div",
      { id: "reaction-panel", class: "reaction-panel" },
      h("h3", { class: "panel-title" }, t("React")),
      h(
        "div",
        { class: "reaction-buttons" },
        kinds.map((kind) =>
          h(
            "button",
            { type: "button", class: "reaction", dataset: { reaction: kind, key: `react-${kind}` }, onclick: () => this.react(kind) },
            reactionIcon(kind, 44),
            h("span", { class: "reaction-label" }, reactionLabel(kind)),
          ),
        ),
      ),
      h("div", { class: "cooldown", "aria-hidden": "true" }, h("div", { id: "cooldown-bar", class: "cooldown-bar" })),
    );
  }

  /** Who the phone reacts to in the open debate: one button per battler still in. */
  targetPicker(inPlay) {
    if (this.target && !inPlay.some((b) => b.id === this.target)) this.target = null;
    const picker = h(
      "div",
      { class: "target-picker", role: "group", "aria-label": t("Who are you reacting to?") },
      inPlay.map((b) =>
        h(
          "button",
          {
            type: "button",
            class: "target",
            "aria-pressed": String(b.id === this.target),
            dataset: { key: `target-${b.id}` },
            onclick: () => {
              this.target = b.id;
              for (const other of picker.querySelectorAll(".target")) {
                other.setAttribute("aria-pressed", String(other.dataset.key === `target-${b.id}`));
              }
              this.updateButtons();
            },
          },
          b.name,
        ),
      ),
    );
    return picker;
  }
}
