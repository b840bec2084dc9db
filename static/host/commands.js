/*
 * The console's commands: one at a time, each decided on the latest seq, its answer shown
 * next to the panel that sent it (docs/protocol.md, "Host commands").
 */
import { t } from "../client/i18n.js";
import { actionLabel } from "../console.js";

// A reply that never comes (the socket dropped) must not lock the console for longer.
const REPLY_WAIT_MS = 8000;
// How long "Done: ..." stays beside the controls.
const DONE_SHOWN_MS = 3000;

export class CommandRunner {
  /**
   * live: the console's Live; where: the status line a command answers in by default;
   * onBusy: called whenever a command starts or ends (the controls follow it).
   */
  constructor(live, { where, onBusy }) {
    this.live = live;
    this.where = where;
    this.onBusy = onBusy;
    this.inFlight = null; // the request id of the command waiting for its answer
    this.inFlightTimer = 0;
    this.clearTimers = new Map(); // status line -> the timer that clears its "Done"
  }

  get busy() {
    return Boolean(this.inFlight);
  }

  /** Show a command's outcome in a status line; "ok" fades after a moment. */
  say(where, text, kind) {
    window.clearTimeout(this.clearTimers.get(where));
    where.dataset.kind = kind;
    where.textContent = text;
    if (kind === "ok") this.clearTimers.set(where, window.setTimeout(() => (where.textContent = ""), DONE_SHOWN_MS));
  }

  /** Send a host command decided on the latest seq; the answer shows in `where`. */
  run(type, fields, { where = this.where, then } = {}) {
    if (this.inFlight) return;
    const id = this.live.command(type, fields, (reply) => {
      this.release();
      if (reply.type === "error") {
        let extra = "";
        if (reply.reason === "conflict") {
          // Another operator (or the timer) moved first; the update is on its way, and a
          // resync makes sure of it.
          this.live.send({ type: "resync" });
          extra = ` ${t("The console already shows the latest state.")}`;
        }
        this.say(where, `${reply.message}${extra}`, "error");
        return;
      }
      this.say(where, t("Done: {action}", { action: actionLabel(type) }), "ok");
      if (then) then(reply);
    });
    if (!id) {
      this.say(where, t("Not connected: nothing was sent. Wait for the connection and try again."), "error");
      return;
    }
    this.inFlight = id;
    this.say(where, t("Sending…"), "busy");
    this.inFlightTimer = window.setTimeout(() => {
      if (this.inFlight === id) this.release();
    }, REPLY_WAIT_MS);
    this.onBusy();
  }

  /** No command waits any more (answered, or its socket is gone). */
  release() {
    this.inFlight = null;
    window.clearTimeout(this.inFlightTimer);
    this.onBusy();
  }
}
