/*
 * The show's panels of the console: what happens now and its clock, the vote and its live
 * tally, and the elimination's pickers (docs/rules.md).
 */
import {
  ballotsText,
  battlerOf,
  currentRound,
  currentVote,
  figuresText,
  nameOf,
  names,
  phaseLabel,
  proposalText,
  revealedVote,
  speakerOf,
  standings,
} from "../client/battle.js";
import { Countdown } from "../client/clock.js";
import { $, fill, h, setText } from "../client/dom.js";
import { digestLine } from "../client/receipt.js";
import { currentLanguage, plural, t } from "../client/i18n.js";

/** What the show is doing now, in one line under the phase. */
function nowDetail(battle) {
  const round = currentRound(battle);
  const speaker = speakerOf(battle);
  if (speaker) {
    return t("{name} speaks (turn {n} of {total}).", { name: nameOf(battle, speaker), n: battle.turn_index + 1, total: round.order.length });
  }
  switch (battle.phase) {
    case "lobby":
      return plural(
        battle.battlers.length,
        "1 battler. Add another below, then start the first round.",
        "{n} battlers. Edit them below, then start the first round.",
      );
    case "challenge":
      return round.challenge ? t("Challenge: {text}", { text: round.challenge }) : t("No challenge yet: reveal one, or start the first turn.");
    case "debate":
      return t("Open debate among {names}.", { names: names(battle, round.order.filter((id) => battlerOf(battle, id)?.status === "in")) });
    case "vote":
      return currentVote(battle) ? "" : t("The turns are over: open the vote.");
    case "final":
      return t("{name} wins. End the battle when the show is over.", { name: nameOf(battle, battle.winner) });
    case "finished":
      return battle.ended_reason === "ended_early" ? t("The battle was ended early.") : t("The battle is over.");
    default:
      return "";
  }
}

export class ShowPanels {
  /** desk: what the console's panels share (static/host.js). */
  constructor({ live, controls }) {
    this.live = live;
    this.controls = controls;
    this.countdown = new Countdown($("#host-clock"), { speak: true });
    this.eliminationKey = ""; // the proposal the pickers were built for
  }

  render() {
    this.renderNow();
    this.renderVote();
    this.renderElimination();
  }

  renderNow() {
    const battle = this.live.battle;
    const round = currentRound(battle);
    const phaseNode = $("#phase-label");
    setText(phaseNode, null);
    phaseNode.textContent = phaseLabel(battle.phase);
    $("#round-label").textContent = round && battle.phase !== "lobby" ? (round.final ? t("Final round") : t("Round {n}", { n: round.number })) : "";
    $("#battle-title").textContent = battle.title;
    $("#now-detail").textContent = nowDetail(battle);
    const timer = battle.timer;
    this.countdown.set(timer);
    $("#clock-state").textContent = !timer ? t("No clock running") : timer.deadline_ms === null ? t("Paused") : t("Running");
  }

  renderVote() {
    const battle = this.live.battle;
    const vote = currentVote(battle);
    const shown = battle.phase === "vote" && vote ? vote : revealedVote(battle);
    let line = t("No vote this round yet.");
    if (vote && vote.status === "open") line = vote.runoff ? t("The runoff vote is open.") : t("The vote is open.");
    else if (vote && vote.status === "closed") line = t("The vote has closed: reveal the results when the hall is ready.");
    else if (shown && shown.status === "revealed") line = t("The results are revealed.");
    const voided = currentRound(battle)?.votes.filter((v) => v.status === "voided") || [];
    if (voided.length) line += ` ${t("Voided votes this round: {n}.", { n: voided.length })}`;
    const lineNode = $("#vote-line");
    if (lineNode.textContent !== line) lineNode.textContent = line;
    const list = $("#host-tally");
    if (!shown) {
      fill(list);
      $("#tally-count").textContent = "";
      this.renderDigest(null);
      return;
    }
    const tally = this.live.currentTally();
    const totals = shown.status === "revealed" ? shown.totals : tally && tally.totals;
    const online = shown.status === "revealed" ? shown.online : tally && tally.online;
    const rows = standings(shown, totals || {});
    fill(
      list,
      rows.map((row) => {
        const fillBar = h("span", { class: "bar-fill" });
        fillBar.style.width = `${row.share * 100}%`;
        return h(
          "li",
          { class: "bar-row" },
          h("span", { class: "bar-name" }, nameOf(battle, row.id)),
          h("span", { class: "bar-track", "aria-hidden": "true" }, fillBar),
          h("span", { class: "bar-figures" }, figuresText(row.id, row.votes, row.share, online)),
        );
      }),
    );
    const ballots = shown.status === "revealed" ? shown.ballots || 0 : tally ? tally.ballots : 0;
    $("#tally-count").textContent = ballotsText(ballots);
    // Closed, the tally carries the digest of its ballots; the screen shows the same at the reveal.
    this.renderDigest(shown.status === "revealed" ? shown.digest : tally && tally.digest);
  }

  renderDigest(digest) {
    const box = $("#tally-digest");
    const key = digest ? `${digest} ${currentLanguage()}` : "";
    if (box.dataset.shown === key) return;
    box.dataset.shown = key;
    fill(box, digestLine(digest));
  }

  renderElimination() {
    const battle = this.live.battle;
    const round = currentRound(battle);
    const proposal = round && round.proposal;
    $("#proposal-line").textContent = proposal ? proposalText(battle, round) : "";
    if (battle.phase === "elimination") {
      $("#proposal-line").textContent = t("{names} left the battle.", { names: names(battle, round.eliminated) });
    }
    // Rebuild the pickers only when the round's proposal changes: the host's ticks stay.
    const key = JSON.stringify([battle.phase, round && round.number, proposal, round && round.order, t("Battlers")]);
    if (key === this.eliminationKey) return;
    this.eliminationKey = key;
    const hostPicks = battle.phase === "reveal" && proposal && proposal.method === "host";
    $("#pick-tied").hidden = !hostPicks;
    if (hostPicks) {
      $("#pick-legend").textContent = t("Pick {need} of the tied to leave", { need: proposal.need });
      this.checkList($("#pick-options"), proposal.tied, "pick", { max: proposal.need });
    } else fill($("#pick-options"));
    this.checkList($("#override-options"), round ? round.order : [], "override");
  }

  /** A picker of battlers whose ticks survive a rebuild; at most `max` ticked. */
  checkList(container, ids, name, { max } = {}) {
    const battle = this.live.battle;
    const before = new Set([...container.querySelectorAll("input:checked")].map((box) => box.value));
    fill(
      container,
      ids.map((id) => {
        const inputId = `${name}-${id}`;
        const box = h("input", { type: "checkbox", id: inputId, value: id, name, dataset: { key: inputId } });
        box.checked = before.has(id);
        box.addEventListener("change", () => {
          if (max) {
            const checked = container.querySelectorAll("input:checked");
            if (checked.length > max) box.checked = false;
          }
          this.controls.update();
        });
        return h("label", { class: "check", for: inputId }, box, h("span", {}, nameOf(battle, id)));
      }),
    );
  }
}
