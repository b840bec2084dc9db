/*
 * The console's controls: which buttons the phase allows, what they say, and the next
 * step at the foot of the window with its shortcut (docs/rules.md).
 */
import { currentRound, currentVote, openVote, remaining } from "../client/battle.js";
import { $, setText } from "../client/dom.js";
import { t } from "../client/i18n.js";

function label(button, msgid, params) {
  const node = button.querySelector(".label");
  if (params) {
    delete node.dataset.i18n;
    node.textContent = t(msgid, params);
  } else setText(node, msgid);
}

/** Show a text already in the page's language (the step's copy of its target's label). */
function labelText(button, text) {
  const node = button.querySelector(".label");
  delete node.dataset.i18n;
  node.textContent = text;
}

function timerAdjustable(battle) {
  if (!battle || !battle.timer) return false;
  if (battle.phase === "vote" || battle.phase === "stance") return Boolean(openVote(battle));
  return battle.phase === "turn" || battle.phase === "debate";
}

function runoffPending(battle) {
  const round = currentRound(battle);
  return battle.phase === "reveal" && round && round.proposal && round.proposal.method === "runoff";
}

function canOpenVote(battle) {
  const round = currentRound(battle);
  if (!round) return false;
  if (runoffPending(battle)) return true;
  if (battle.phase === "vote") return !currentVote(battle);
  if (battle.phase === "debate") return !currentVote(battle);
  return battle.phase === "turn" && battle.turn_index === round.order.length - 1 && !currentVote(battle);
}

/** The stance poll the host may open now (docs/rules.md, who moved minds), or null. */
function stanceDue(battle) {
  if (!battle || !(battle.rules.stance_polls || battle.rules.winner === "gain")) return null;
  const stance = battle.phase === "lobby" ? "opening" : battle.phase === "final" ? "closing" : null;
  if (!stance) return null;
  const taken = (vote) => vote.stance === stance && ["closed", "revealed"].includes(vote.status);
  const votes = [...battle.stances, ...battle.rounds.flatMap((round) => round.votes)];
  return votes.some(taken) ? null : stance;
}

/** The battlers ticked in one of the elimination panel's pickers ("pick" or "override"). */
export function ticked(picker) {
  return [...document.querySelectorAll(`#${picker}-options input:checked`)].map((box) => box.value);
}

export class Controls {
  constructor(live, commands) {
    this.live = live;
    this.commands = commands;
    this.buttons = {
      pause: $("#btn-pause"),
      extend: $("#btn-extend"),
      reset: $("#btn-reset"),
      next: $("#btn-next"),
      skip: $("#btn-skip"),
      startRound: $("#btn-start-round"),
      challenge: $("#btn-challenge"),
      vote: $("#btn-vote"),
      reveal: $("#btn-reveal"),
      void: $("#btn-void"),
      stance: $("#btn-stance"),
      confirm: $("#btn-confirm"),
      undo: $("#btn-undo"),
      override: $("#btn-override"),
      end: $("#btn-end"),
    };
    this.stepButton = $("#btn-step");
    // The console's keyboard shortcuts (static/host/actions.js listens for them).
    const b = this.buttons;
    this.shortcuts = { n: b.next, " ": b.pause, e: b.extend, v: b.vote, r: b.reveal };
  }

  update() {
    const { buttons, live } = this;
    const battle = live.battle;
    const ready = Boolean(battle) && live.connected && !this.commands.busy;
    const phase = battle ? battle.phase : "";
    const round = currentRound(battle);
    const vote = currentVote(battle);
    const adjustable = ready && timerAdjustable(battle);
    const paused = Boolean(battle && battle.timer && battle.timer.deadline_ms === null);

    buttons.pause.disabled = !adjustable;
    label(buttons.pause, paused ? "Resume" : "Pause");
    buttons.extend.disabled = !adjustable;
    buttons.reset.disabled = !adjustable;

    buttons.next.disabled = !(ready && ["challenge", "turn", "debate"].includes(phase));
    if (phase === "challenge") label(buttons.next, "Start the first turn");
    else if (phase === "turn" && round && battle.turn_index < round.order.length - 1) label(buttons.next, "Next speaker");
    else if (phase === "turn" && battle.rules.debate_seconds > 0) label(buttons.next, "Start the debate");
    else if (phase === "turn" || phase === "debate") label(buttons.next, "Go to the vote");
    else label(buttons.next, "Next");
    buttons.skip.disabled = !(ready && phase === "turn");

    const canStart = ["lobby", "elimination"].includes(phase) && remaining(battle).length >= 2;
    buttons.startRound.disabled = !(ready && canStart);
    $("#start-challenge").disabled = !(ready && canStart);
    const nextNumber = battle ? battle.rounds.length + 1 : 1;
    const nextIsFinal = battle && remaining(battle).length <= battle.rules.final_size;
    if (nextIsFinal) label(buttons.startRound, "Start the final");
    else label(buttons.startRound, "Start round {n}", { n: nextNumber });
    $("#start-round-form").hidden = Boolean(battle) && !["lobby", "elimination"].includes(phase);
    const challengeOpen = ["challenge", "turn", "debate"].includes(phase);
    $("#challenge-form").hidden = !challengeOpen;
    $("#round-panel").hidden = Boolean(battle) && $("#start-round-form").hidden && !challengeOpen;
    // Before the turns there is nothing to vote on: the panel would only push the rest down.
    const stance = stanceDue(battle);
    $("#vote-panel").hidden = ["lobby", "challenge"].includes(phase) && !stance;
    buttons.stance.hidden = !stance;
    buttons.stance.disabled = !(ready && stance);
    label(buttons.stance, stance === "closing" ? "Open the closing stance poll" : "Open the opening stance poll");
    buttons.challenge.disabled = !(ready && challengeOpen);

    const open = openVote(battle);
    if (open && phase === "stance") label(buttons.vote, "Close the poll early…");
    else if (open) label(buttons.vote, "Close the vote early…");
    else if (battle && runoffPending(battle)) label(buttons.vote, "Open the runoff vote");
    else label(buttons.vote, "Open the vote");
    buttons.vote.disabled = !(ready && (open || canOpenVote(battle)));
    const voting = phase === "vote" || phase === "stance";
    buttons.reveal.disabled = !(ready && voting && vote && vote.status === "closed");
    buttons.void.disabled = !(ready && voting && vote && ["open", "closed"].includes(vote.status));

    const proposal = round && round.proposal;
    const inReveal = phase === "reveal" && proposal;
    $("#elimination-panel").hidden = !["reveal", "elimination", "final"].includes(phase);
    const picks = ticked("pick").length;
    buttons.confirm.disabled = !(
      ready &&
      inReveal &&
      proposal.method !== "runoff" &&
      (proposal.method !== "host" || picks === proposal.need)
    );
    label(buttons.confirm, round && round.final ? "Crown the winner…" : "Confirm the elimination…");
    buttons.undo.disabled = !(ready && ["elimination", "final"].includes(phase));
    $("#override-box").hidden = phase !== "reveal";
    buttons.override.disabled = !(ready && phase === "reveal");
    buttons.end.disabled = !(ready && phase !== "finished");
    this.renderStep(battle);
  }

  /** The button of the show's next step in its panel (null when the show is over). */
  stepTarget(battle) {
    if (!battle) return null;
    const { buttons } = this;
    const vote = currentVote(battle);
    switch (battle.phase) {
      case "lobby":
        return stanceDue(battle) ? buttons.stance : buttons.startRound;
      case "elimination":
        return buttons.startRound;
      case "challenge":
      case "turn":
      case "debate":
        return buttons.next;
      case "vote":
      case "stance":
        return vote && vote.status === "closed" ? buttons.reveal : buttons.vote;
      case "reveal":
        return runoffPending(battle) ? buttons.vote : buttons.confirm;
      case "final":
        return stanceDue(battle) ? buttons.stance : buttons.end;
      default:
        return null;
    }
  }

  /**
   * The next step, always at the foot of the window with its shortcut, whatever the panels
   * above show or hide: the host's eyes and hand find it in the same place all evening.
   */
  renderStep(battle) {
    const { shortcuts, stepButton } = this;
    const target = this.stepTarget(battle);
    const key = Object.keys(shortcuts).find((k) => shortcuts[k] === target && k !== " ");
    const kbd = stepButton.querySelector("kbd");
    kbd.hidden = !key;
    kbd.textContent = key ? key.toUpperCase() : "";
    if (target) labelText(stepButton, target.querySelector(".label").textContent);
    else label(stepButton, battle && battle.phase === "finished" ? "The battle is over." : "Connecting…");
    stepButton.disabled = !target || target.disabled;
  }
}
