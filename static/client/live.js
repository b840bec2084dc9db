/*
 * Future Battles: the live connection. One websocket per page that comes back by itself
 * (the server's reconnect policy from the welcome, full jitter), the welcome -> snapshot
 * -> update sequence and the connection badge.
 */

import { currentRound, currentVote } from "./battle.js";
import { SYNC_GAP_MS, SYNC_PINGS, clock } from "./clock.js";
import { currentLanguage, onLanguageChange, t } from "./i18n.js";
import { page, randomId } from "./page.js";
import { applyPatch } from "./patch.js";

export const PROTOCOL = "battles.v1";
export const REMOTE = "battles.remote"; // a remote phone's socket offers it too (protocol.REMOTE)
// Until a welcome brings the server's reconnect policy: exponential, full jitter.
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const PING_EVERY_MS = 15000; // between bursts: one ping keeps the clock's samples fresh
const SILENCE_LIMIT_MS = 50000; // no word (not even a pong) for this long: the socket is dead
const OFFLINE_AFTER_ATTEMPTS = 5;
const REPLY_WAIT_MS = 60000;

const BADGE_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  replaced: "Open in another tab",
};

function setBadge(status) {
  const badge = document.getElementById("connection-badge");
  if (!badge) return;
  badge.hidden = false;
  badge.dataset.status = status;
  badge.dataset.i18n = BADGE_TEXT[status];
  badge.textContent = t(BADGE_TEXT[status]);
}

/**
 * The welcome's reconnect policy ({base_ms, max_ms, jitter}), or null when the server
 * sent none or an unusable one.
 */
export function reconnectPolicy(welcome) {
  const policy = welcome && welcome.reconnect;
  if (!policy || typeof policy !== "object") return null;
  const base = Number(policy.base_ms);
  const max = Number(policy.max_ms);
  if (!(Number.isFinite(base) && Number.isFinite(max) && base > 0 && max > 0)) return null;
  // "full" jitter is the only kind the server sends; any other is taken as full, the widest spread.
  return { base_ms: Math.min(base, max), max_ms: max, jitter: "full" };
}

/**
 * How long to wait before reconnect try number `attempt` (1 for the first after a loss).
 * With the server's policy (docs/settings.md, reconnect_base_ms and reconnect_max_ms):
 * the first try waits up to base_ms, so a phone whose Wi-Fi blinked is back at once;
 * every later try, and the first after a restart (`restarted`: the server closed with
 * its close_codes.restart), up to max_ms, so a whole hall comes back spread over that
 * window. Without one: doubling from 500 ms up to 15 s. Full jitter: a random time up
 * to the cap.
 */
export function reconnectDelay(policy, attempt, restarted, random = Math.random) {
  let cap;
  if (policy) cap = attempt <= 1 && !restarted ? policy.base_ms : policy.max_ms;
  else cap = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, attempt - 1));
  return random() * cap;
}

/**
 * The page's view of one battle over a websocket: keeps seq, battle, tally,
 * engagement, presence (and links for hosts) and emits "state", "tally", "engagement",
 * "presence", "welcome", "snapshot" and every reply type to listeners.
 *
 * role: the endpoint to open (a co-host's link opens "host" too: the server tells
 * the co-host by its token, and the welcome's role says which it is). view: what the
 * page is shown of the battle the server sent (a remote phone's is shifted by its
 * stream delay: audience/stream.js); without it, the battle as sent.
 */
export class Live {
  constructor({ role, protocols, view = null }) {
    this.role = role;
    this.protocols = protocols;
    this.view = view;
    this.socket = null;
    this.attempts = 0;
    this.status = "connecting";
    this.listeners = {};
    this.replies = new Map();
    this.requestCount = 0;
    this.seq = -1;
    this.awaitingSnapshot = false; // asked for a resync: updates wait for its snapshot
    this.state = null; // the battle as the server sent it, patched (`battle` is the page's view of it)
    this.tally = null;
    this.engagement = null;
    this.presence = null;
    this.links = null;
    this.battlerLinks = null; // a console's: each battler's own link
    this.welcome = null;
    this.lastHeard = 0;
    this.everOpened = false;
    this.policy = null; // the server's reconnect policy, from the newest welcome
    this.lastCloseCode = null;
    this.revoked = false;
    this.replaced = false; // closed with close_codes.replaced: another tab of this device took over
    onLanguageChange((next) => this.send({ type: "set_language", language: next }));
  }

  on(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
    return this;
  }

  emit(type, message) {
    for (const listener of this.listeners[type] || []) listener(message, this);
  }

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    // The browser knows the network is gone: an open socket is dead too (it may take the
    // server's ping timeout to notice). Drop it, so that "online" brings a fresh one and
    // a fresh snapshot instead of a badge stuck on "Offline" over a stale view.
    window.addEventListener("offline", () => this.drop());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
    window.setInterval(() => this.watch(), 5000);
    setBadge("connecting");
    this.open();
    return this;
  }

  url(role) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${window.location.host}/ws/${role}/${encodeURIComponent(page.code)}`;
  }

  open() {
    window.clearTimeout(this.retryTimer);
    if (this.revoked) return;
    const role = this.role;
    let socket;
    try {
      socket = new WebSocket(this.url(role), this.protocols());
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      opened = true;
      this.everOpened = true;
      this.lastHeard = Date.now();
      this.setStatus("connected");
      this.syncClock();
      this.emit("open", { role });
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      this.lastHeard = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && typeof message.type === "string") this.receive(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (opened) this.attempts = 0;
      this.lastCloseCode = event.code;
      if (this.closedAs("revoked", event.code)) {
        this.revoked = true; // the same token is refused from now on: stop knocking
        this.setStatus("offline");
        this.emit("close", { opened, code: event.code });
        this.emit("revoked", { code: event.code });
        return;
      }
      // A newer socket of this device (another tab) took over: no retry until this page
      // is looked at again (then it takes over in turn).
      if (this.closedAs("replaced", event.code)) {
        this.replaced = true;
        this.setStatus("replaced");
        this.emit("close", { opened, code: event.code });
        return;
      }
      this.emit("close", { opened, code: event.code });
      this.retry();
    });
  }

  /**
   * Whether a close code is the server's `name` one (docs/protocol.md, welcome's
   * close_codes: restart, revoked, replaced). Before the first welcome none is known:
   * every close is then a lost connection, tried again.
   */
  closedAs(name, code) {
    const codes = this.welcome && this.welcome.close_codes;
    return Boolean(codes) && codes[name] === code;
  }

  /** Forget the current socket at once (a dead network, a silent socket) and try again. */
  drop() {
    const socket = this.socket;
    if (!socket) {
      if (navigator.onLine === false) this.setStatus("offline");
      return;
    }
    const opened = socket.readyState === WebSocket.OPEN;
    this.socket = null;
    try {
      socket.close();
    } catch {
      /* already gone */
    }
    if (opened) this.attempts = 0;
    this.lastCloseCode = 1006;
    this.emit("close", { opened, code: 1006 });
    this.retry();
  }

  retry() {
    if (this.revoked || this.replaced) return;
    this.attempts += 1;
    // Jittered: a hall of phones that lost the venue's wifi does not come back at once.
    const delay = reconnectDelay(this.policy, this.attempts, this.closedAs("restart", this.lastCloseCode));
    this.setStatus(navigator.onLine === false || this.attempts > OFFLINE_AFTER_ATTEMPTS ? "offline" : "reconnecting");
    this.retryTimer = window.setTimeout(() => this.open(), delay);
  }

  reconnectNow() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.syncClock();
      return;
    }
    if (this.socket) return; // a try is under way
    if (this.revoked) return;
    this.replaced = false; // looked at again: this page takes the device back
    this.attempts = 0;
    this.open();
  }

  /** Drop a socket that went silent (a phone that slept, a dead wifi) and start again. */
  watch() {
    // A reaction is answered only when refused: forget callbacks nobody will call.
    for (const [id, entry] of this.replies) {
      if (Date.now() - entry.at > REPLY_WAIT_MS) this.replies.delete(id);
    }
    const socket = this.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      if (Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
        this.drop();
      } else if (Date.now() - this.lastPing >= PING_EVERY_MS) {
        this.ping();
      }
    }
  }

  setStatus(status) {
    this.status = status;
    setBadge(status);
    this.emit("status", status);
  }

  get connected() {
    return Boolean(this.socket && this.socket.readyState === WebSocket.OPEN);
  }

  send(message) {
    if (!this.connected) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Send with a request id; onReply gets the ack/ballot/error/snapshot carrying it. */
  request(message, onReply) {
    this.requestCount += 1;
    // edit_battler and remove_battler carry the battler's id in "id", the field that
    // also names a request: that id then names the request, and the reply echoes it.
    const id = message.id || `${message.type}-${this.requestCount}-${randomId(4)}`;
    if (onReply) this.replies.set(id, { onReply, at: Date.now() });
    if (!this.send({ ...message, id })) {
      this.replies.delete(id);
      return null;
    }
    return id;
  }

  /** A host command, decided on the latest battle version this page has seen. */
  command(type, fields, onReply) {
    return this.request({ type, ...(fields || {}), seq: this.seq }, onReply);
  }

  /** Estimate the server's clock afresh: a short burst of pings on this socket. */
  syncClock() {
    const socket = this.socket;
    clock.restart();
    for (let n = 0; n < SYNC_PINGS; n += 1) {
      window.setTimeout(() => {
        if (this.socket === socket) this.ping();
      }, n * SYNC_GAP_MS);
    }
  }

  ping() {
    this.lastPing = Date.now();
    this.send({ type: "ping", t: Date.now() });
  }

  receive(message) {
    switch (message.type) {
      case "welcome":
        this.welcome = message;
        this.policy = reconnectPolicy(message) || this.policy;
        clock.guess(message.server_ms);
        // Server errors arrive in the connection's language: make it the person's.
        if (message.language !== currentLanguage()) this.send({ type: "set_language", language: currentLanguage() });
        this.emit("welcome", message);
        return;
      case "snapshot":
        clock.guess(message.server_ms);
        this.awaitingSnapshot = false;
        this.seq = message.seq;
        this.state = message.battle;
        this.tally = message.tally;
        this.engagement = message.engagement ? { round: currentRound(message.battle)?.number, battlers: message.engagement } : null;
        if (message.presence) this.presence = message.presence;
        if (message.links) this.links = message.links;
        if (message.battler_links) this.battlerLinks = message.battler_links;
        this.emit("snapshot", message);
        this.emit("state", { events: [], snapshot: true });
        break;
      case "update":
        if (message.seq <= this.seq || this.awaitingSnapshot) return; // already shown, or a snapshot is coming
        // A gap (messages were lost) or a patch that does not apply: the whole view again.
        if (!this.takeUpdate(message)) this.resync();
        this.emit("state", { events: message.events || [], snapshot: false });
        break;
      case "service":
        // The store is back, and may hold an older version than this page shows
        // (docs/protocol.md, Reconnecting): forget the seq and take the snapshot whole.
        if (message.store === "ok") {
          this.seq = -1;
          this.resync();
        }
        break;
      case "tally":
        this.tally = message;
        this.emit("tally", message);
        return;
      case "engagement":
        this.engagement = { round: message.round, battlers: message.battlers };
        this.emit("engagement", this.engagement);
        return;
      case "presence":
        this.presence = message;
        this.emit("presence", message);
        return;
      case "pong":
        clock.pong(message.t, message.server_ms);
        break;
      default:
        break;
    }
    if (message.id && this.replies.has(message.id)) {
      const { onReply } = this.replies.get(message.id);
      this.replies.delete(message.id);
      onReply(message);
    }
    if (message.type !== "snapshot" && message.type !== "update") this.emit(message.type, message);
  }

  /**
   * An update's change to the battle this page holds (docs/protocol.md, "update"): its
   * patch applies to version `base`, the battle's version becomes `seq`, and a console's
   * log grows by its events. False when
   * this page holds another version, or the patch does not apply: nothing is changed.
   */
  /**
   * Ask for the whole view; updates wait for its snapshot. Refused (rate limited, the store
   * away), the next update that does not apply asks again, rather than wait for ever.
   */
  resync() {
    this.awaitingSnapshot = true;
    const id = this.request({ type: "resync" }, (reply) => {
      if (reply.type === "error") this.awaitingSnapshot = false;
    });
    if (!id) this.awaitingSnapshot = false; // not connected: the next connection's snapshot comes anyway
  }

  takeUpdate(message) {
    if (!this.state || message.base !== this.seq) return false;
    let battle;
    try {
      battle = applyPatch(this.state, message.patch);
    } catch {
      return false;
    }
    battle = { ...battle, version: message.seq };
    if (Array.isArray(battle.log) && message.events?.length) battle.log = battle.log.concat(message.events);
    this.seq = message.seq;
    this.state = battle;
    return true;
  }

  /** The battle as this page shows it (the constructor's `view`). */
  get battle() {
    return this.state && this.view ? this.view(this.state) : this.state;
  }

  /** The live tally, if it belongs to the vote the battle is on now. */
  currentTally() {
    const vote = currentVote(this.battle);
    return vote && this.tally && this.tally.vote_id === vote.id ? this.tally : null;
  }

  /** Engagement figures of the current round: battler id -> {counts, score}. */
  currentEngagement() {
    const round = currentRound(this.battle);
    return round && this.engagement && this.engagement.round === round.number ? this.engagement.battlers || {} : {};
  }
}
