/*
 * A remote phone, one of the stream's audience (docs/protocol.md, "The remote audience"):
 * its stream delay, measured from the sync cue or nudged by hand and kept by the server,
 * and the battle as its stream shows it: the vote opens, counts down and closes that much
 * later than in the hall, as the server's window for this phone does ("Vote windows").
 */
import { currentVote } from "../client/battle.js";
import { clock } from "../client/clock.js";
import { fill, h } from "../client/dom.js";
import { t } from "../client/i18n.js";

const NUDGE_MS = 1000;
const MAX_DELAY_MS = 120000; // protocol.MAX_DELAY_MS; the battle's maximum caps it below that
const ASK_FOR_MS = 60000; // a cue this old is no longer asked about: the stream has shown it

/** `battle` with `vote` (its current vote) replaced by `shown`, or taken out when `shown` is null. */
function withVote(battle, vote, shown) {
  const swap = (votes) => votes.flatMap((v) => (v === vote ? (shown ? [shown] : []) : [v]));
  if (battle.phase === "stance") {
    const back = shown ? battle.phase : vote.stance === "opening" ? "lobby" : "final";
    return { ...battle, phase: back, stances: swap(battle.stances), timer: shown ? battle.timer : null };
  }
  const rounds = battle.rounds.slice();
  const round = rounds[rounds.length - 1];
  rounds[rounds.length - 1] = { ...round, votes: swap(round.votes) };
  return { ...battle, rounds, timer: shown ? battle.timer : null };
}

/**
 * The battle as a stream `delayMs` behind the hall shows it at `now` (the server's clock):
 * the current vote not yet open before its opened_ms + delay; open, its deadline shifted, until
 * its close + delay, the close being the deadline or the close on the record.
 */
function streamView(battle, delayMs, now) {
  const vote = currentVote(battle);
  if (!delayMs || !vote || !["vote", "stance"].includes(battle.phase) || !["open", "closed"].includes(vote.status)) return battle;
  if (now < vote.opened_ms + delayMs) return withVote(battle, vote, null);
  if (vote.status === "open") {
    const timer = battle.timer;
    const shifted = timer && timer.deadline_ms !== null && timer.deadline_ms !== undefined ? { ...timer, deadline_ms: timer.deadline_ms + delayMs } : timer;
    return { ...battle, timer: shifted };
  }
  if (now >= vote.closed_ms + delayMs) return battle;
  const shown = { ...vote, status: "open", closed_ms: null };
  const timer = { duration_ms: battle.timer ? battle.timer.duration_ms : 0, deadline_ms: vote.closed_ms + delayMs, paused_remaining_ms: null };
  return { ...withVote(battle, vote, shown), timer };
}

/** The next moment at which streamView's answer changes (a shifted opening or close), or null. */
function nextChange(battle, delayMs, now) {
  const vote = currentVote(battle);
  if (!delayMs || !vote) return null;
  const moments = [vote.opened_ms + delayMs, vote.closed_ms ? vote.closed_ms + delayMs : null];
  const later = moments.filter((at) => at !== null && at > now);
  return later.length ? Math.min(...later) : null;
}

export class Stream {
  /** live: the phone's Live; box: the panel of the delay and the sync cue's question. */
  constructor(live, box) {
    this.live = live;
    this.box = box;
    this.delayMs = 0; // what this phone's window is shifted by, as the server keeps it
    this.ownMs = null; // its own delay (null: the battle's default)
    this.tapped = null; // the at_ms of the sync cue already answered
    this.status = "";
    this.wake = null;
    box.hidden = false;
    live.on("snapshot", (snapshot) => {
      if (snapshot.my_delay) this.take(snapshot.my_delay.delay_ms, snapshot.my_delay.own_ms);
    });
    live.on("state", () => this.render());
  }

  /** What the page shows of `battle` (Live's view). */
  view(battle) {
    return streamView(battle, this.delayMs, clock.now());
  }

  take(delayMs, ownMs) {
    this.delayMs = delayMs;
    this.ownMs = ownMs;
    this.live.emit("state");
  }

  send(delayMs) {
    const asked = Math.max(0, Math.min(MAX_DELAY_MS, Math.round(delayMs)));
    this.live.request({ type: "set_delay", delay_ms: asked }, (reply) => {
      this.status = reply.type === "ack" ? "" : reply.message;
      if (reply.type === "ack") this.take(reply.delay_ms, reply.delay_ms);
      else this.render();
    });
  }

  /** The viewer saw the cue on their stream now: the delay is now minus the cue's time. */
  tap(cue) {
    this.tapped = cue.at_ms;
    this.send(clock.now() - cue.at_ms);
  }

  render() {
    const battle = this.live.state;
    if (!battle) return;
    const cue = battle.sync_cue;
    const ask = cue && cue.at_ms !== this.tapped && clock.now() - cue.at_ms < ASK_FOR_MS;
    const seconds = Math.round(this.delayMs / 100) / 10;
    fill(
      this.box,
      ask
        ? h("button", { type: "button", class: "btn btn-primary stream-tap", "data-key": "tap", onclick: () => this.tap(cue) }, t("Tap when you see {n} on your stream", { n: cue.n }))
        : null,
      h("p", { class: "stream-delay" }, t("Your stream runs {seconds} s behind the hall.", { seconds })),
      h(
        "div",
        { class: "stream-nudge" },
        h("button", { type: "button", class: "btn", "data-key": "less", onclick: () => this.send(this.delayMs - NUDGE_MS) }, t("1 s less")),
        h("button", { type: "button", class: "btn", "data-key": "more", onclick: () => this.send(this.delayMs + NUDGE_MS) }, t("1 s more")),
      ),
      this.status ? h("p", { class: "form-status", role: "status" }, this.status) : null,
    );
    // Shown again when the stream shows the vote open, or closed.
    window.clearTimeout(this.wake);
    const at = nextChange(battle, this.delayMs, clock.now());
    if (at !== null) this.wake = window.setTimeout(() => this.live.emit("state"), at - clock.now() + 5);
  }
}
