/*
 * Future Battles: the server's clock. The server owns the clock; pages show
 * deadline_ms - (Date.now() + offset), with the offset from the recent ping/pong with the
 * smallest round trip (a burst of pings at every connect and return to the page, sent by
 * live.js), and redraw countdowns on the second boundaries of the server's clock.
 */

import { announce } from "./dom.js";
import { t } from "./i18n.js";

// docs/protocol.md, Clock: a short burst of pings at connect, after every reconnect and on
// return to the page, then one every PING_EVERY_MS (live.js); the recent sample with the shortest
// round trip stands. A single ping at connect can take most of a second on a busy machine
// (docs/performance.md, In step), and half its round trip is the estimate's error bound.
export const SYNC_PINGS = 5;
export const SYNC_GAP_MS = 75;
// An older best gives way to the newer samples: the network or the local clock may have changed.
const SAMPLE_MAX_AGE_MS = 2 * 60 * 1000;
// A countdown is redrawn this long after its second's boundary, so that it never draws just before it.
const REDRAW_MARGIN_MS = 2;

/** The server's clock as seen from here (docs/protocol.md, Clock: the server owns it). */
export const clock = {
  offset: 0,
  bestRtt: Infinity,
  synced: false, // a pong has given an estimate
  samples: [], // the recent pongs: {rtt, offset, at} (at: performance.now(), which never jumps)
  listeners: new Set(),
  now() {
    return Date.now() + this.offset;
  },
  /** A first guess from a message's server_ms, until a pong gives a better one. */
  guess(serverMs) {
    if (!this.synced && typeof serverMs === "number") this.set(serverMs - Date.now());
  },
  /** A new burst starts: what was measured before it may be from another network or clock. */
  restart() {
    this.samples = [];
  },
  /** offset = server_ms - (t_sent + t_received) / 2, from the recent sample with the shortest round trip. */
  pong(sentAt, serverMs) {
    const received = Date.now();
    const rtt = received - sentAt;
    if (!(rtt >= 0) || typeof serverMs !== "number") return;
    const at = performance.now();
    this.samples = this.samples.filter((sample) => at - sample.at <= SAMPLE_MAX_AGE_MS);
    this.samples.push({ rtt, offset: serverMs - (sentAt + received) / 2, at });
    const best = this.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.bestRtt = best.rtt;
    this.synced = true;
    this.set(best.offset);
  },
  set(offset) {
    if (offset === this.offset) return;
    this.offset = offset;
    for (const listener of this.listeners) listener();
  },
};

/** Milliseconds left on a battle timer (negative in overtime), or null without a timer. */
export function remainingMs(timer) {
  if (!timer) return null;
  if (timer.deadline_ms === null || timer.deadline_ms === undefined) return timer.paused_remaining_ms || 0;
  return timer.deadline_ms - clock.now();
}

export function formatClock(ms) {
  const over = ms < 0;
  const seconds = over ? Math.floor(-ms / 1000) : Math.ceil(ms / 1000);
  const text = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  return over ? `+${text}` : text;
}

/** Milliseconds until a remaining time crosses its next whole second (when its text changes). */
function untilNextSecond(ms) {
  return ((ms % 1000) + 1000) % 1000 || 1000;
}

// Every countdown is redrawn when the estimate moves and when the page comes back (a hidden
// page's timers are slowed down).
const countdowns = new Set();
function redrawCountdowns() {
  for (const countdown of countdowns) countdown.draw();
}
clock.listeners.add(redrawCountdowns);
document.addEventListener("visibilitychange", redrawCountdowns);

/**
 * A countdown shown in an element, redrawn on the second boundaries of the server's
 * clock (so every device flips together), not on a fixed interval. With speak, it tells
 * screen readers at a pause and at whole tens of seconds, not every second.
 */
export class Countdown {
  constructor(element, { speak = false } = {}) {
    this.element = element;
    this.speak = speak;
    this.timer = null;
    this.lastSaid = null;
    this.wasPaused = false;
    this.nextDraw = null;
    countdowns.add(this);
    this.draw();
  }

  set(timer) {
    const paused = Boolean(timer && (timer.deadline_ms === null || timer.deadline_ms === undefined));
    if (this.speak && timer && paused && !this.wasPaused) announce(t("The clock is paused."));
    this.wasPaused = paused;
    this.timer = timer;
    this.draw();
  }

  draw() {
    window.clearTimeout(this.nextDraw);
    const ms = remainingMs(this.timer);
    const text = ms === null ? "–:––" : formatClock(ms);
    if (this.element.textContent !== text) this.element.textContent = text;
    const paused = Boolean(this.timer && (this.timer.deadline_ms === null || this.timer.deadline_ms === undefined));
    this.element.classList.toggle("is-idle", ms === null);
    this.element.classList.toggle("is-paused", paused);
    this.element.classList.toggle("is-low", ms !== null && ms >= 0 && ms <= 10000 && !paused);
    this.element.classList.toggle("is-over", ms !== null && ms < 0);
    this.nextDraw = ms === null || paused ? null : window.setTimeout(() => this.draw(), untilNextSecond(ms) + REDRAW_MARGIN_MS);
    if (!this.speak || ms === null || paused) return;
    const seconds = Math.ceil(ms / 1000);
    if (seconds > 0 && seconds % 10 === 0 && seconds !== this.lastSaid) {
      this.lastSaid = seconds;
      announce(t("{n} seconds left", { n: seconds }));
    } else if (seconds <= 0 && this.lastSaid !== 0) {
      this.lastSaid = 0;
      announce(t("Time is up."));
    }
  }
}
