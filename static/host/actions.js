/*
 * What the console's buttons, forms and keys do: each sends its command, after an in-page
 * confirmation where a slip would cost the show (docs/rules.md).
 */
import { currentRound, leavingText, nameOf, names, openVote } from "../client/battle.js";
import { $ } from "../client/dom.js";
import { plural, t } from "../client/i18n.js";
import { ask } from "../console.js";
import { ticked } from "./controls.js";

/** Wire the controls' buttons to their commands (desk: static/host.js). */
export function wireActions({ live, commands, controls }) {
  const { buttons, stepButton, shortcuts } = controls;
  const run = commands.run.bind(commands);

  /**
   * After a field's form was sent with Enter, the focus goes to the next step: the next N or
   * Space is the show's again, not a letter typed into the field (or, once the start form
   * hides, into the challenge card's field the next Tab would reach from the page).
   */
  function leaveTheField() {
    const field = document.activeElement;
    if (!field || field === document.body || field.closest("form, [hidden]")) stepButton.focus();
  }

  buttons.pause.addEventListener("click", () => {
    const timer = live.battle && live.battle.timer;
    run(timer && timer.deadline_ms === null ? "resume_timer" : "pause_timer");
  });
  buttons.extend.addEventListener("click", () => run("extend_timer", { seconds: 30 }));
  buttons.reset.addEventListener("click", async () => {
    const yes = await ask({
      title: t("Reset the clock?"),
      message: t("The clock starts again from the full time of this part of the show."),
      confirm: t("Reset the clock"),
    });
    if (yes) run("reset_timer");
  });
  stepButton.addEventListener("click", () => {
    const target = controls.stepTarget(live.battle);
    if (target && !target.disabled) target.click();
  });
  buttons.next.addEventListener("click", () => run("next"));
  buttons.skip.addEventListener("click", () => run("skip_turn"));

  $("#start-round-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const challenge = $("#start-challenge").value.trim();
    run("start_round", challenge ? { challenge } : {}, {
      then: () => {
        $("#start-challenge").value = "";
        leaveTheField();
      },
    });
  });
  $("#challenge-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("#challenge-text").value.trim();
    if (!text) {
      $("#challenge-text").focus();
      return;
    }
    run("reveal_challenge", { text }, {
      then: () => {
        $("#challenge-text").value = "";
        leaveTheField();
      },
    });
  });

  buttons.vote.addEventListener("click", async () => {
    if (openVote(live.battle)) {
      const yes = await ask({
        title: t("Close the vote now?"),
        message: t("The clock still runs. Phones can no longer vote once it is closed."),
        confirm: t("Close the vote"),
      });
      if (yes) run("close_vote");
    } else run("open_vote");
  });
  buttons.reveal.addEventListener("click", () => run("reveal_results"));
  // docs/rules.md, who moved minds: the opening poll in the lobby, the closing one in the final.
  buttons.stance.addEventListener("click", () => run("open_stance", { stance: live.battle.phase === "lobby" ? "opening" : "closing" }));
  buttons.void.addEventListener("click", async () => {
    const reason = await ask({
      title: t("Void this vote?"),
      message: t("Its ballots no longer count; the void and its reason stay in the event log. You can open a new vote afterwards."),
      confirm: t("Void the vote"),
      input: { label: t("Reason (goes into the event log)"), required: true, maxLength: 300 },
    });
    if (reason) run("void_vote", { reason });
  });
  buttons.confirm.addEventListener("click", async () => {
    const battle = live.battle;
    const round = currentRound(battle);
    const proposal = round && round.proposal;
    if (!proposal) return;
    const picked = ticked("pick");
    const leaving = proposal.method === "host" ? [...proposal.leaving, ...picked] : proposal.leaving;
    const message = round.final
      ? t("{name} wins the evening.", { name: nameOf(battle, round.order.find((id) => !leaving.includes(id))) })
      : leavingText(battle, leaving);
    const yes = await ask({ title: round.final ? t("Crown the winner?") : t("Confirm the elimination?"), message, confirm: t("Confirm") });
    if (yes) run("confirm_elimination", proposal.method === "host" ? { battlers: picked } : {});
  });
  buttons.undo.addEventListener("click", () => run("undo_elimination"));
  buttons.override.addEventListener("click", async () => {
    const picked = ticked("override");
    const reason = $("#override-reason").value.trim();
    if (!picked.length) {
      commands.say(commands.where, t("Tick who leaves first."), "error");
      return;
    }
    if (!reason) {
      commands.say(commands.where, t("Give a reason: it goes into the event log."), "error");
      $("#override-reason").focus();
      return;
    }
    const yes = await ask({
      title: t("Override the rules?"),
      message: plural(
        picked.length,
        "{names} leaves the battle instead of the rules' pick. Reason: {reason}",
        "{names} leave the battle instead of the rules' pick. Reason: {reason}",
        { names: names(live.battle, picked), reason },
      ),
      confirm: t("Override"),
    });
    if (yes) run("override_elimination", { battlers: picked, reason }, { then: () => ($("#override-reason").value = "") });
  });
  buttons.end.addEventListener("click", async () => {
    const early = live.battle.phase !== "final";
    const reason = await ask({
      title: t("End the battle?"),
      message: early ? t("The battle is not over yet. Ending it now cannot be undone.") : t("This closes the evening. It cannot be undone."),
      confirm: t("End the battle"),
      input: { label: t("Reason (optional)"), required: false, maxLength: 300 },
    });
    if (reason !== null) run("end_battle", reason ? { reason } : {});
  });

  // Keyboard shortcuts for the frequent actions, never while typing in a field or answering
  // a confirmation. Space pauses wherever the focus is, on a button too: a host who clicked
  // "Next" must not start the following turn by pausing (its keydown's default is what
  // would press the focused button).
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable], dialog")) return;
    const button = shortcuts[event.key.toLowerCase()];
    if (!button) return;
    event.preventDefault();
    if (!button.disabled) button.click();
  });
}
