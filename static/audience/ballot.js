/*
 * The phone's ballot and the vote view (docs/rules.md, promises: one device, one ballot per
 * vote; a phone comes back with it). The view is built once per vote and updated in place,
 * so the focus stays put.
 */
import { battlerOf, currentVote, nameOf, openVote, votesText } from "../client/battle.js";
import { remainingMs } from "../client/clock.js";
import { $, fill, h } from "../client/dom.js";
import { plural, t } from "../client/i18n.js";
import { page, randomId, store, stored } from "../client/page.js";
import { versionTag } from "../client/visions.js";

const PENDING_KEY = `battles.ballot.${page.code}`;

function loadPending() {
  try {
    const value = JSON.parse(stored(PENDING_KEY) || "null");
    return value && value.vote_id && value.choice && value.ballot_id ? value : null;
  } catch {
    return null;
  }
}

export class Ballot {
  /** live: the phone's Live; notice: its notice line (notice.js). */
  constructor(live, notice) {
    this.live = live;
    this.notice = notice;
    this.confirmed = null; // what the server acknowledged
    this.pending = loadPending(); // a tap not acknowledged yet
    this.status = $("#vote-status");
    this.choicesKey = ""; // the vote and choices the buttons were built for
    this.lastStatus = "";
    live.on("ballot", (reply) => this.takeReply(reply));
    live.on("snapshot", (snapshot) => this.takeSnapshot(snapshot));
    // Votes close on the server's deadline: redraw the buttons when the time runs out.
    let wasOpen = false;
    window.setInterval(() => {
      const battle = live.battle;
      const open = Boolean(battle && openVote(battle) && remainingMs(battle.timer) > 0);
      if (open !== wasOpen) {
        wasOpen = open;
        this.renderVote();
      }
    }, 250);
  }

  /** This phone's choice in `vote`: the confirmed one, or the tap on its way. */
  mine(vote) {
    return this.confirmed && this.confirmed.vote_id === vote.id ? this.confirmed.choice : null;
  }

  pendingIn(vote) {
    return this.pending && this.pending.vote_id === vote.id ? this.pending.choice : null;
  }

  savePending() {
    const p = this.pending;
    store(PENDING_KEY, p ? JSON.stringify({ vote_id: p.vote_id, choice: p.choice, ballot_id: p.ballot_id }) : null);
  }

  cast(choice) {
    const live = this.live;
    const vote = openVote(live.battle);
    if (!vote || remainingMs(live.battle.timer) <= 0) return;
    const confirmed = this.confirmed;
    if (!this.pending && confirmed && confirmed.vote_id === vote.id && confirmed.choice === choice) {
      this.renderStatus(true);
      return;
    }
    // A new ballot id per tap; a resend after a dropped socket keeps the same one.
    this.pending = { vote_id: vote.id, choice, ballot_id: randomId(16) };
    this.savePending();
    this.sendPending();
    this.renderVote();
  }

  sendPending() {
    const p = this.pending;
    if (!p) return;
    p.requestId = this.live.request({ type: "vote", vote_id: p.vote_id, choice: p.choice, ballot_id: p.ballot_id }, (reply) => {
      if (reply.type === "error" && this.pending && this.pending.ballot_id === p.ballot_id) {
        this.pending = null;
        this.savePending();
        this.notice.show(reply.message);
        this.renderVote();
      }
    });
  }

  takeReply(reply) {
    this.confirmed = { vote_id: reply.vote_id, choice: reply.choice, status: reply.status, receipt: reply.receipt };
    if (this.pending && this.pending.ballot_id === reply.ballot_id) {
      this.pending = null;
      this.savePending();
    }
    this.renderVote();
  }

  takeSnapshot(snapshot) {
    // The battle as this phone shows it: a remote phone's vote may be closed in the hall and
    // still open on its stream, where a tap kept offline still counts (audience/stream.js).
    const battle = this.live.battle;
    const vote = currentVote(battle);
    const mine = snapshot.my_ballot;
    this.confirmed = mine && vote && mine.vote_id === vote.id ? { ...mine, status: "counted" } : null;
    const p = this.pending;
    if (!p) return;
    const open = openVote(battle);
    if (open && open.id === p.vote_id) {
      this.sendPending(); // the reply may have been lost with the socket: the same ballot id again
    } else {
      if (!mine || mine.choice !== p.choice) this.notice.show(t("Your last tap did not reach the server before the vote closed."));
      this.pending = null;
      this.savePending();
    }
  }

  /** The choices of the vote view (#choices), built again when the vote or the view is new. */
  renderVote() {
    const battle = this.live.battle;
    const container = $("#choices");
    const vote = currentVote(battle);
    if (!container || !vote) {
      this.renderStatus();
      return;
    }
    const key = `${vote.id}:${vote.choices.join(",")}`;
    if (this.choicesKey !== key || !container.children.length) {
      this.choicesKey = key;
      fill(
        container,
        vote.choices.map((id) => {
          const battler = battlerOf(battle, id);
          return h(
            "button",
            { type: "button", class: "choice", dataset: { choice: id, key: `choice-${id}` }, onclick: () => this.cast(id) },
            h("span", { class: "choice-name" }, nameOf(battle, id)),
            h("span", { class: "choice-vision" }, battler ? battler.vision : "", battler ? versionTag(battler) : null),
            h("span", { class: "choice-state" }),
            h("span", { class: "choice-total" }),
          );
        }),
        h("p", { id: "ballot-count", class: "hint" }),
      );
    }
    const open = openVote(battle) === vote && remainingMs(battle.timer) > 0;
    const mine = this.mine(vote);
    const pending = this.pendingIn(vote);
    const tally = this.live.currentTally();
    const sum = tally && tally.totals ? Object.values(tally.totals).reduce((a, b) => a + b, 0) : 0;
    for (const button of container.querySelectorAll("[data-choice]")) {
      const id = button.dataset.choice;
      button.disabled = !open;
      button.setAttribute("aria-pressed", String(id === (pending || mine)));
      button.classList.toggle("is-pending", id === pending);
      button.classList.toggle("is-counted", id === mine && !pending);
      const state = id === pending ? t("Sending…") : id === mine ? t("✓ Counted") : "";
      button.querySelector(".choice-state").textContent = state;
      const total = tally && tally.totals ? tally.totals[id] || 0 : null;
      // With live totals the line is there from the start: a tally that arrives as a finger
      // lands moves no button.
      const placeholder = battle.rules.live_totals ? "\u00a0" : "";
      button.querySelector(".choice-total").textContent =
        total === null ? placeholder : votesText(total, sum ? total / sum : 0);
    }
    const count = $("#ballot-count");
    if (count) count.textContent = tally ? plural(tally.ballots, "1 ballot so far", "{n} ballots so far") : "";
    this.renderStatus();
  }

  /** The vote's status line (#vote-status), said again when `again` (a tap on the same choice). */
  renderStatus(again = false) {
    const live = this.live;
    const battle = live.battle;
    const vote = battle && (battle.phase === "vote" || battle.phase === "stance") ? currentVote(battle) : null;
    let text = "";
    if (vote) {
      const mine = this.mine(vote);
      const pending = this.pendingIn(vote);
      const open = openVote(battle) === vote && remainingMs(battle.timer) > 0;
      if (open && pending && !live.connected) {
        text = t("No connection: your vote for {name} is sent as soon as it is back.", { name: nameOf(battle, pending) });
      } else if (open && pending) text = t("Sending your vote for {name}…", { name: nameOf(battle, pending) });
      else if (open && mine) text = t("Your vote for {name} is counted. You can change it until the vote closes.", { name: nameOf(battle, mine) });
      else if (open) text = t("The vote is open: tap a battler to vote.");
      else if (mine) text = t("The vote has closed. Your vote for {name} was counted.", { name: nameOf(battle, mine) });
      else text = t("The vote has closed.");
    }
    const status = this.status;
    status.hidden = !text;
    if (text !== this.lastStatus || again) {
      this.lastStatus = text;
      status.textContent = "";
      if (text) window.setTimeout(() => (status.textContent = text), again ? 50 : 0);
    }
  }
}
