/*
 * The console's panel of the stream's audience (docs/protocol.md, "The remote audience"):
 * the remote join link and its QR code, the sync cue, and how long the reveal waits for
 * the remote phones' vote windows ("Vote windows").
 */
import { currentVote } from "../client/battle.js";
import { clock } from "../client/clock.js";
import { $, fill, h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { page } from "../client/page.js";
import { linkField } from "../console.js";

export class StreamPanel {
  /** desk: what the console's panels share (static/host.js). */
  constructor({ live, commands }) {
    this.live = live;
    this.commands = commands;
    this.panel = $("#stream-panel");
    this.until = null; // when the reveal may go, on the server's clock, as a remote_wait said
    this.shownKey = "";
    this.ticker = null;
    $("#btn-sync-cue").addEventListener("click", () => this.commands.run("sync_cue", {}, { where: $("#stream-status") }));
    live.on("error", (reply) => {
      if (reply.reason !== "remote_wait") return;
      this.until = clock.now() + reply.params.wait_ms;
      this.render();
    });
  }

  render() {
    const battle = this.live.battle;
    const remote = Boolean(battle && battle.rules.remote);
    this.panel.hidden = !remote;
    if (!remote) return;
    const join = this.live.links && this.live.links.join;
    const key = JSON.stringify([join, t("Copy")]);
    if (key !== this.shownKey && join) {
      this.shownKey = key;
      fill(
        $("#stream-links"),
        linkField(t("Stream audience join link (public)"), join.replace(/\/join\/([^/]+)$/, "/watch/$1"), { open: true }),
        h("img", { class: "stream-qr", src: `/qr/${page.code}/watch.svg`, alt: t("QR code of the stream audience's join link"), width: "132", height: "132" }),
      );
    }
    const cue = battle.sync_cue;
    $("#sync-cue-last").textContent = cue ? t("Last sync cue: {n}", { n: cue.n }) : "";
    $("#btn-sync-cue").disabled = !this.live.connected || battle.phase === "finished";
    this.renderWait(battle);
  }

  /** The reveal's wait, counted down to the second, while the current vote is closed. */
  renderWait(battle) {
    const vote = currentVote(battle);
    const closed = vote && vote.status === "closed" && ["vote", "stance"].includes(battle.phase);
    const left = closed && this.until !== null ? this.until - clock.now() : 0;
    const wait = $("#remote-wait");
    window.clearTimeout(this.ticker);
    if (!closed) this.until = null;
    if (left > 0) {
      wait.textContent = t("The stream's viewers can still vote for {seconds} s.", { seconds: Math.ceil(left / 1000) });
      this.ticker = window.setTimeout(() => this.renderWait(this.live.battle), ((left - 1) % 1000) + 1);
    } else if (closed) {
      const latest = vote.closed_ms + battle.rules.max_delay_seconds * 1000 - clock.now();
      wait.textContent = latest > 0 ? t("The reveal waits for the stream's viewers: at most {seconds} s.", { seconds: Math.ceil(latest / 1000) }) : "";
      if (latest > 0) this.ticker = window.setTimeout(() => this.renderWait(this.live.battle), ((latest - 1) % 1000) + 1);
    } else wait.textContent = "";
  }
}
