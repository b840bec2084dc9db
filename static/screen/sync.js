/*
 * The sync cue (docs/protocol.md, "The remote audience"): the battle's sync_cue {n, at_ms}
 * shows the number n large for CUE_MS from at_ms on the server's clock, so that a stream
 * that shows this page carries it, and a remote phone's viewer taps when they see it. The
 * screen and the stream overlay mount it (`new SyncCue(element).follow(battle)`).
 */
import { clock } from "../client/clock.js";
import { h } from "../client/dom.js";

const CUE_MS = 1500;

export class SyncCue {
  /** host: the element the cue is drawn in (it fills it while shown, and is hidden otherwise). */
  constructor(host) {
    this.host = host;
    this.shown = null; // the at_ms of the cue on show
    this.timer = null;
    host.hidden = true;
  }

  /** Show the battle's cue while its CUE_MS run, on the server's clock. */
  follow(battle) {
    const cue = battle && battle.sync_cue;
    const left = cue ? cue.at_ms + CUE_MS - clock.now() : 0;
    if (!cue || left <= 0) {
      this.hide();
      return;
    }
    if (this.shown !== cue.at_ms) {
      this.shown = cue.at_ms;
      this.host.replaceChildren(h("span", { class: "sync-cue-number", "data-sync-cue": String(cue.n) }, String(cue.n)));
    }
    this.host.hidden = false;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.hide(), left);
  }

  hide() {
    window.clearTimeout(this.timer);
    this.host.hidden = true;
    this.shown = null;
  }
}
