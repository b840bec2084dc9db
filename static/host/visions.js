/*
 * The battlers' own links and their visions (docs/rules.md, "Visions that develop"): each
 * battler's link with its QR code to hand over, the host's revocation of it, and the
 * console's revision of a vision for a battler and the undo of the latest one.
 */
import { $, drawing, fill, h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { page } from "../client/page.js";
import { REVISION_PHASES, changedLine, earlierVersions, versionTag } from "../client/visions.js";
import { ask, battlerStatus, linkField } from "../console.js";

export class VisionsPanel {
  /** desk: what the console's panels share (static/host.js); token: this console's own. */
  constructor({ live, commands }, token) {
    this.live = live;
    this.commands = commands;
    this.token = token;
    this.shownKey = "";
    this.asked = ""; // the battlers a resync was sent for, when one had no link yet
  }

  render() {
    const battle = this.live.battle;
    const links = this.live.battlerLinks || {};
    const missing = battle.battlers.filter((b) => !links[b.id]).map((b) => b.id).join();
    if (missing && missing !== this.asked) {
      this.asked = missing; // a battler added since the snapshot: its link comes with a new one
      this.live.send({ type: "resync" });
    }
    const key = JSON.stringify([battle.battlers, battle.phase, battle.rules.vision_revisions, links, t("Copy")]);
    if (key === this.shownKey) return;
    this.shownKey = key;
    fill($("#battler-visions"), battle.battlers.map((b) => this.row(battle, b, links[b.id])));
  }

  row(battle, battler, link) {
    const open = REVISION_PHASES.includes(battle.phase) && battle.rules.vision_revisions && battler.status === "in";
    const canUndo = REVISION_PHASES.includes(battle.phase) && (battler.versions || []).length > 1;
    const isHost = Boolean(this.live.links && this.live.links.host);
    const qrBox = h("div", { class: "qr-box" });
    return h(
      "li",
      { class: `vision-row is-${battler.status}`, dataset: { battler: battler.id } },
      h("p", { class: "vision-row-head" }, h("strong", {}, battler.name), " · ", battlerStatus(battler)),
      h("p", { class: "status-vision" }, battler.vision, versionTag(battler)),
      changedLine(battler, null),
      earlierVersions(battler),
      link ? linkField(t("{name}'s own link (secret)", { name: battler.name }), link, { open: true }) : null,
      h(
        "div",
        { class: "button-row" },
        link ? h("button", { type: "button", class: "btn btn-small", onclick: () => this.showQr(battler, qrBox) }, t("Show QR code")) : null,
        open ? h("button", { type: "button", class: "btn btn-small", onclick: () => this.revise(battler) }, t("Revise the vision…")) : null,
        canUndo ? h("button", { type: "button", class: "btn btn-small", onclick: () => this.undo(battler) }, t("Undo the latest revision")) : null,
        isHost && link ? h("button", { type: "button", class: "btn btn-small btn-danger-quiet", onclick: () => this.revoke(battler) }, t("Revoke this link…")) : null,
      ),
      qrBox,
    );
  }

  async showQr(battler, box) {
    const url = `/api/battles/${encodeURIComponent(page.code)}/battlers/${encodeURIComponent(battler.id)}/qr.svg`;
    try {
      const response = await fetch(url, { headers: { authorization: `Bearer ${this.token}` }, cache: "no-store" });
      if (!response.ok) throw new Error(`QR code: ${response.status}`);
      const svg = drawing(await response.text(), "QR code");
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", t("QR code of {name}'s own link", { name: battler.name }));
      svg.classList.add("qr-battler");
      fill(box, svg);
    } catch {
      fill(box, h("p", { class: "form-error" }, t("Could not load the QR code. Try again in a moment.")));
    }
  }

  async revise(battler) {
    const vision = await ask({
      title: t("Revise {name}'s vision", { name: battler.name }),
      confirm: t("Next"),
      danger: false,
      input: { label: t("Vision title"), required: true, maxLength: 140, value: battler.vision },
    });
    if (!vision) return;
    const changed = await ask({
      title: t("What changed?"),
      message: t("One short line the hall sees with the new version."),
      confirm: t("Revise the vision"),
      danger: false,
      input: { label: t("What changed (one short line)"), maxLength: 140 },
    });
    if (changed === null) return;
    this.commands.run("revise_vision", { battler: battler.id, vision: vision.trim(), changed: changed.trim() }, { where: $("#visions-status") });
  }

  async undo(battler) {
    const yes = await ask({
      title: t("Undo {name}'s latest revision?", { name: battler.name }),
      message: t("The version before it becomes the current one again."),
      confirm: t("Undo the latest revision"),
    });
    if (yes) this.commands.run("undo_revision", { battler: battler.id }, { where: $("#visions-status") });
  }

  async revoke(battler) {
    const yes = await ask({
      title: t("Revoke {name}'s link?", { name: battler.name }),
      message: t("Their phone is closed at once. A new link appears here to hand over."),
      confirm: t("Revoke the link"),
    });
    if (!yes) return;
    this.commands.run("revoke_battler", { battler: battler.id }, {
      where: $("#visions-status"),
      then: (reply) => {
        if (reply.battler_links) this.live.battlerLinks = reply.battler_links;
        this.render();
      },
    });
  }
}
