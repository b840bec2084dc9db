/*
 * Future Battles: what every page shares.
 *
 * - i18n: t(text), text being the English msgid, looks it up in the current language's catalog
 *   (both catalogs arrive in one cached file, <link id="catalogs">); the DA/EN
 *   switch changes every text at once and is remembered in localStorage.
 * - DOM: h() builds elements with textContent only. Person-entered text (names,
 *   visions, titles, challenges) never goes through innerHTML (docs/rules.md, promises:
 *   nothing the audience sends can run as markup on a page).
 * - Clock: the server owns the clock; pages show deadline_ms - (Date.now() + offset),
 *   with the offset from the recent ping/pong with the smallest round trip (a burst of
 *   pings at every connect and return to the page), and redraw countdowns on the
 *   second boundaries of the server's clock.
 * - Live: one websocket per page that comes back by itself (the server's reconnect
 *   policy from the welcome, full jitter), the welcome -> snapshot -> update sequence
 *   and the connection badge.
 */

const body = document.body;

export const page = Object.freeze({
  code: body.dataset.code || "",
  lang: body.dataset.lang === "da" ? "da" : "en",
  title: body.dataset.title || "",
});

// --- storage: a browser that refuses localStorage still plays -------------------------

export function stored(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function store(key, value) {
  try {
    if (value === null || value === undefined) window.localStorage.removeItem(key);
    else window.localStorage.setItem(key, value);
  } catch {
    /* private mode: the value lives as long as the page */
  }
}

// --- i18n ---------------------------------------------------------------------------

const LANGUAGES = ["da", "en"];
const LANGUAGE_KEY = "battles.language";
let catalogs = {};
try {
  // A file the browser keeps (its address names its version, templates/base.html); the
  // pages' modules wait for it, so t() has its texts from the first render on.
  const response = await fetch(document.getElementById("catalogs").href);
  if (response.ok) catalogs = await response.json();
} catch {
  catalogs = {}; // unreachable: the English texts (the msgids) until a reload
}
let language = chooseLanguage();
const languageListeners = [];

function chooseLanguage() {
  // An explicit ?lang= in the address wins; then the person's choice; then the battle's.
  if (new URLSearchParams(window.location.search).has("lang")) return page.lang;
  const saved = stored(LANGUAGE_KEY);
  return LANGUAGES.includes(saved) ? saved : page.lang;
}

// Texts asked for in a language whose catalog lacks them (English needs none: the msgids
// are English). The browser tests read it through untranslated() after every view.
const missing = new Set();

/** The texts this page showed untranslated so far (a test's check on the catalogs). */
export function untranslated() {
  return [...missing];
}

/** The text in the current language; {name} placeholders are filled from params. */
export function t(text, params) {
  const found = (catalogs[language] || {})[text];
  if (language !== "en" && !(typeof found === "string" && found)) missing.add(text);
  let out = typeof found === "string" && found ? found : text;
  if (params) {
    out = out.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }
  return out;
}

export function currentLanguage() {
  return language;
}

export function setLanguage(next) {
  if (!LANGUAGES.includes(next)) return;
  store(LANGUAGE_KEY, next);
  if (next === language) return;
  language = next;
  applyLanguage();
  for (const listener of languageListeners) listener(next);
}

export function onLanguageChange(listener) {
  languageListeners.push(listener);
}

const I18N_ATTRIBUTES = [
  ["placeholder", "i18nPlaceholder"],
  ["aria-label", "i18nAriaLabel"],
  ["title", "i18nTitle"],
];

/** Retranslate the static texts under root: elements whose data-i18n holds an msgid. */
export function translate(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const [attribute, key] of I18N_ATTRIBUTES) {
    for (const node of root.querySelectorAll(`[data-i18n-${attribute}]`)) {
      node.setAttribute(attribute, t(node.dataset[key]));
    }
  }
}

function applyLanguage() {
  document.documentElement.lang = language;
  translate(document);
  const pageTitle = body.dataset.pageTitle;
  if (pageTitle) {
    document.title = [page.title, t(pageTitle), "Future Battles"].filter(Boolean).join(" · ");
  }
  for (const button of document.querySelectorAll("[data-set-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.setLang === language));
  }
}

// --- DOM ----------------------------------------------------------------------------

/**
 * Build an element. props: class, text (textContent), dataset, on<event> listeners,
 * DOM properties (disabled, checked, value...) and plain attributes. Children are
 * nodes or strings (strings become text nodes, never markup).
 */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "style") throw new Error("use element.style from code: the CSP forbids style attributes");
    else if (typeof value !== "string" && key in node) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** Replace a container's children, keeping the focus on the element with the same data-key. */
export function fill(container, ...children) {
  const active = document.activeElement;
  const key = active && active !== container && container.contains(active) ? active.dataset.key : undefined;
  container.replaceChildren();
  append(container, children);
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

/** Show a fixed text (an msgid) that follows the language switch; null clears it. */
export function setText(node, msgid) {
  if (msgid) {
    node.dataset.i18n = msgid;
    node.textContent = t(msgid);
  } else {
    delete node.dataset.i18n;
    node.textContent = "";
  }
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function show(node, visible) {
  if (node) node.hidden = !visible;
}

/** Say something to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}

export function randomId(bytes = 16) {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// --- the game's words ---------------------------------------------------------------

const PHASES = {
  lobby: "Lobby",
  challenge: "Challenge",
  turn: "Presentation",
  debate: "Debate",
  vote: "Vote",
  reveal: "Results",
  elimination: "Elimination",
  final: "Final",
  finished: "Finished",
};

export function phaseLabel(phase) {
  return t(PHASES[phase] || phase);
}

export const REACTIONS = {
  applause: { label: "Applause" },
  fire: { label: "Fire" },
  idea: { label: "Good idea" },
  yawn: { label: "Yawn" },
};

export function reactionLabel(kind) {
  return t(REACTIONS[kind] ? REACTIONS[kind].label : kind);
}

/** A reaction's small SVG icon (no emoji font needed on a projector laptop). */
export function reactionIcon(kind, size = 32) {
  // Beside this module, under the same versioned address: kept by the browser too.
  const src = new URL(`reaction-${kind}.svg`, import.meta.url).pathname;
  return h("img", { class: "reaction-icon", src, alt: "", width: String(size), height: String(size) });
}

export function battlerOf(battle, id) {
  return (battle && battle.battlers.find((b) => b.id === id)) || null;
}

export function nameOf(battle, id) {
  const battler = battlerOf(battle, id);
  return battler ? battler.name : id;
}

export function currentRound(battle) {
  return battle && battle.rounds.length ? battle.rounds[battle.rounds.length - 1] : null;
}

/** The vote the round is on: the newest that was not voided (model.Round.vote). */
export function currentVote(battle) {
  const round = currentRound(battle);
  if (!round) return null;
  for (let i = round.votes.length - 1; i >= 0; i -= 1) {
    if (round.votes[i].status !== "voided") return round.votes[i];
  }
  return null;
}

export function revealedVote(battle) {
  const round = currentRound(battle);
  if (!round) return null;
  for (let i = round.votes.length - 1; i >= 0; i -= 1) {
    if (round.votes[i].status === "revealed") return round.votes[i];
  }
  return null;
}

export function openVote(battle) {
  const vote = currentVote(battle);
  return battle && battle.phase === "vote" && vote && vote.status === "open" ? vote : null;
}

export function speakerOf(battle) {
  const round = currentRound(battle);
  if (battle && battle.phase === "turn" && round && battle.turn_index !== null) return round.order[battle.turn_index];
  return null;
}

export function remaining(battle) {
  return battle ? battle.battlers.filter((b) => b.status === "in") : [];
}

/** What the vote asks, in the words a phone or a screen shows. */
export function voteQuestion(battle, vote) {
  const round = currentRound(battle);
  if (vote.runoff) {
    return vote.mode === "keep" ? t("Runoff: vote for the vision you want to keep") : t("Runoff: vote for who should leave");
  }
  if (round && round.final) return t("Final vote: which vision wins the evening?");
  return vote.mode === "keep" ? t("Vote for the vision you want to keep") : t("Vote for who should leave");
}

/** Standings of a vote: [{id, votes, share}] sorted by votes, most first. */
export function standings(vote, totals) {
  const counts = totals || vote.totals || {};
  const sum = vote.choices.reduce((n, id) => n + (counts[id] || 0), 0);
  return vote.choices
    .map((id, index) => ({ id, index, votes: counts[id] || 0, share: sum ? (counts[id] || 0) / sum : 0 }))
    .sort((a, b) => b.votes - a.votes || a.index - b.index);
}

export function percent(share) {
  return `${Math.round(share * 100)} %`;
}

/** One text for 1, another for any other number (Danish and English count alike). */
export function plural(n, one, many, params) {
  return t(n === 1 ? one : many, { n, ...(params || {}) });
}

export function votesText(votes, share) {
  return plural(votes, "1 vote · {share}", "{n} votes · {share}", { share: percent(share) });
}

export function ballotsText(n) {
  return plural(n, "1 ballot", "{n} ballots");
}

/** Battlers' names as a list in words: "Ada, Bo and Cy", "Ada, Bo og Cy". */
export function names(battle, ids) {
  const list = ids.map((id) => nameOf(battle, id));
  try {
    return new Intl.ListFormat(language === "da" ? "da" : "en-GB", { type: "conjunction" }).format(list);
  } catch {
    return list.join(", "); // a browser without Intl.ListFormat
  }
}

/** "Cy leaves the battle." or "Bo and Cy leave the battle." */
export function leavingText(battle, ids) {
  return plural(ids.length, "{names} leaves the battle.", "{names} leave the battle.", { names: names(battle, ids) });
}

/** What the rules proposed after a reveal, as one sentence. */
export function proposalText(battle, round) {
  const proposal = round && round.proposal;
  if (!proposal) return "";
  if (proposal.method === "runoff") return t("Tie between {names}: a runoff vote decides.", { names: names(battle, proposal.tied) });
  if (proposal.method === "host") {
    return t("Tie between {names}: the host decides who leaves.", { names: names(battle, proposal.tied) });
  }
  if (round.final) {
    const winner = round.order.find((id) => !proposal.leaving.includes(id));
    return t("The rules crown {name}.", { name: nameOf(battle, winner) });
  }
  const text = plural(proposal.leaving.length, "The rules say {names} leaves.", "The rules say {names} leave.", {
    names: names(battle, proposal.leaving),
  });
  return proposal.decided_by === "engagement" ? `${text} ${t("(The tie was decided by engagement.)")}` : text;
}

// --- clock --------------------------------------------------------------------------

// docs/protocol.md, Clock: a short burst of pings at connect, after every reconnect and on
// return to the page, then one every PING_EVERY_MS; the recent sample with the shortest
// round trip stands. A single ping at connect can take most of a second on a busy machine
// (docs/performance.md, In step), and half its round trip is the estimate's error bound.
const SYNC_PINGS = 5;
const SYNC_GAP_MS = 75;
// An older best gives way to the newer samples: the network or the local clock may have changed.
const SAMPLE_MAX_AGE_MS = 2 * 60 * 1000;
// A countdown is redrawn this long after its second's boundary, so that it never draws just before it.
const REDRAW_MARGIN_MS = 2;

/** The server's clock as seen from here (docs/rules.md, promises: the server owns the clock). */
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

// --- the live connection ------------------------------------------------------------

export const PROTOCOL = "battles.v1";
// Until a welcome brings the server's reconnect policy: exponential, full jitter.
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
// The server restarts (docs/protocol.md, Reconnecting): the whole hall comes back at once.
const CLOSE_RESTART = 1012;
// The host revoked this co-host link: trying again with it is refused for good.
const CLOSE_REVOKED = 4401;
// A newer socket of this device (another tab) took over: no retry until this page is
// looked at again (then it takes over in turn).
const CLOSE_REPLACED = 4409;
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
 * every later try, and the first after a restart (1012), up to max_ms, so a whole hall
 * comes back spread over that window. Without one: doubling from 500 ms up to 15 s.
 * Full jitter: a random time up to the cap.
 */
export function reconnectDelay(policy, attempt, closeCode, random = Math.random) {
  let cap;
  if (policy) cap = attempt <= 1 && closeCode !== CLOSE_RESTART ? policy.base_ms : policy.max_ms;
  else cap = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, attempt - 1));
  return random() * cap;
}

/**
 * The page's view of one battle over a websocket: keeps seq, battle, tally,
 * engagement, presence (and links for hosts) and emits "state", "tally", "engagement",
 * "presence", "welcome", "snapshot" and every reply type to listeners.
 *
 * role: the endpoint to open (a co-host's link opens "host" too: the server tells
 * the co-host by its token, and the welcome's role says which it is).
 */
export class Live {
  constructor({ role, protocols }) {
    this.role = role;
    this.protocols = protocols;
    this.socket = null;
    this.attempts = 0;
    this.status = "connecting";
    this.listeners = {};
    this.replies = new Map();
    this.requestCount = 0;
    this.seq = -1;
    this.battle = null;
    this.tally = null;
    this.engagement = null;
    this.presence = null;
    this.links = null;
    this.welcome = null;
    this.lastHeard = 0;
    this.everOpened = false;
    this.policy = null; // the server's reconnect policy, from the newest welcome
    this.lastCloseCode = null;
    this.revoked = false;
    this.replaced = false; // closed with 4409: another tab of this device took over
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
      if (event.code === CLOSE_REVOKED) {
        this.revoked = true; // the same token is refused from now on: stop knocking
        this.setStatus("offline");
        this.emit("close", { opened, code: event.code });
        this.emit("revoked", { code: event.code });
        return;
      }
      if (event.code === CLOSE_REPLACED) {
        this.replaced = true;
        this.setStatus("replaced");
        this.emit("close", { opened, code: event.code });
        return;
      }
      this.emit("close", { opened, code: event.code });
      this.retry();
    });
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
    const delay = reconnectDelay(this.policy, this.attempts, this.lastCloseCode);
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
        this.seq = message.seq;
        this.battle = message.battle;
        this.tally = message.tally;
        this.engagement = message.engagement ? { round: currentRound(message.battle)?.number, battlers: message.engagement } : null;
        if (message.presence) this.presence = message.presence;
        if (message.links) this.links = message.links;
        this.emit("snapshot", message);
        this.emit("state", { events: [], snapshot: true });
        break;
      case "update":
        if (message.seq <= this.seq) return; // already shown
        // A gap means messages were lost: take the newer state and ask for the rest.
        if (this.seq >= 0 && message.seq > this.seq + 1) this.send({ type: "resync" });
        this.seq = message.seq;
        this.battle = message.battle;
        this.emit("state", { events: message.events || [], snapshot: false });
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

/** The token of a secret link: the fragment, which no browser sends to a server. */
export function fragmentToken() {
  // A pasted link that only differs after the # does not reload the page: make it.
  window.addEventListener("hashchange", () => window.location.reload());
  try {
    return decodeURIComponent(window.location.hash.replace(/^#/, "")).trim();
  } catch {
    return "";
  }
}

// --- every page -------------------------------------------------------------------------

function initChrome() {
  for (const button of document.querySelectorAll("[data-set-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.setLang));
  }
  applyLanguage();
}

initChrome();
