/*
 * The console's secret and public links, and the host's revocation of the co-host link
 * (docs/protocol.md, revoke_cohost).
 */
import { $, fill, h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { ask, linkField } from "../console.js";

const LINKS = [
  ["screen", "Screen (secret, read-only)"],
  ["overlay", "Stream overlay (secret, read-only)"],
  ["cohost", "Co-host console (secret)"],
  ["join", "Audience join link (public)"],
  ["host", "Host console (secret)"],
];

export class LinksPanel {
  /** desk: what the console's panels share (static/host.js). */
  constructor({ live, commands }) {
    this.live = live;
    this.commands = commands;
    this.shownKey = ""; // the links (and language) the panel was built for
  }

  render() {
    const links = this.live.links || {};
    const key = JSON.stringify([links, t("Copy")]);
    if (key === this.shownKey) return;
    this.shownKey = key;
    fill(
      $("#host-links"),
      LINKS.filter(([name]) => links[name]).map(([name, text]) => linkField(t(text), links[name], { open: ["screen", "overlay", "join"].includes(name) })),
      // Only the host may revoke (docs/protocol.md, revoke_cohost); a co-host has no host link.
      links.cohost && links.host
        ? h("button", { id: "btn-revoke", type: "button", class: "btn btn-small btn-danger-quiet", onclick: () => this.revokeCohost() }, t("Revoke the co-host link…"))
        : null,
    );
    const results = $("#results-link");
    results.hidden = !links.results;
    if (links.results) results.href = links.results;
    $("#results-note").hidden = Boolean(links.results);
  }

  async revokeCohost() {
    const yes = await ask({
      title: t("Revoke the co-host link?"),
      message: t("Every co-host console open with it is closed at once. A new co-host link appears here to hand out."),
      confirm: t("Revoke the link"),
    });
    if (!yes) return;
    this.commands.run("revoke_cohost", {}, {
      then: (reply) => {
        if (!reply.links) return;
        this.live.links = reply.links; // the ack carries the new co-host link
        this.render();
      },
    });
  }
}
