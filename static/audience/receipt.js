/*
 * The phone's receipt (docs/rules.md, votes): shown with its acknowledged ballot, and
 * checked against the count once the vote has closed. Built again only when what it shows
 * changes, so the focus stays on its button.
 */
import { currentVote, nameOf } from "../client/battle.js";
import { $, fill, h } from "../client/dom.js";
import { currentLanguage, t } from "../client/i18n.js";
import { checkReceipt, digestLine } from "../client/receipt.js";

const SHOWN_IN = ["vote", "reveal", "final", "finished"];

export class Receipt {
  /** live: the phone's Live; ballot: its Ballot (ballot.js), whose acknowledged ballot carries the receipt. */
  constructor(live, ballot) {
    this.live = live;
    this.ballot = ballot;
    this.box = $("#receipt-box");
    this.answers = new Map(); // "vote:receipt" -> the check's answer
    this.key = "";
  }

  render() {
    const battle = this.live.battle;
    const vote = battle && SHOWN_IN.includes(battle.phase) ? currentVote(battle) : null;
    const mine = vote && this.ballot.confirmed && this.ballot.confirmed.vote_id === vote.id ? this.ballot.confirmed : null;
    const receipt = mine && mine.receipt;
    this.box.hidden = !receipt;
    if (!receipt) return;
    const closed = vote.status === "closed" || vote.status === "revealed";
    const answer = this.answers.get(`${vote.id}:${receipt}`);
    const key = JSON.stringify([vote.id, receipt, closed, answer, currentLanguage()]);
    if (key === this.key) return;
    this.key = key;
    fill(
      this.box,
      h("p", { class: "receipt-line" }, `${t("Your receipt:")} `, h("code", { class: "receipt-code" }, receipt)),
      closed
        ? h("button", { type: "button", class: "btn", dataset: { key: "check-receipt" }, onclick: () => this.check(vote.id, receipt) }, t("Check that it is in the count"))
        : h("p", { class: "hint" }, t("Keep it: once the vote has closed, you can check that your ballot is in the count as you cast it.")),
      answer ? h("p", { class: `receipt-answer${answer.counted ? " is-counted" : " is-missing"}`, role: "status" }, answer.text) : null,
      answer ? digestLine(answer.digest) : null,
    );
  }

  async check(voteId, receipt) {
    const answer = await checkReceipt(voteId, receipt, (id) => nameOf(this.live.battle, id));
    this.answers.set(`${voteId}:${receipt}`, answer);
    this.render();
  }
}
