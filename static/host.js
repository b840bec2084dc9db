// The host console at /host/CODE#TOKEN (the co-host link opens the same page).
import {
  ballotsText,
  battlerOf,
  currentRound,
  currentVote,
  leavingText,
  nameOf,
  names,
  openVote,
  phaseLabel,
  proposalText,
  reactionIcon,
  reactionLabel,
  remaining,
  revealedVote,
  speakerOf,
  standings,
  votesText,
} from "./client/battle.js";
import { Countdown } from "./client/clock.js";
import { $, fill, h, setText } from "./client/dom.js";
import { onLanguageChange, plural, t } from "./client/i18n.js";
import { Live, PROTOCOL } from "./client/live.js";
import { fragmentToken } from "./client/page.js";
import {
  actionLabel,
  actorLabel,
  ask,
  battlerInputs,
  battlerStatus,
  fillBattleFields,
  formatTime,
  linkField,
  logDetails,
  readBattleFields,
  wordList,
} from "./console.js";

const token = fragmentToken();
const countdown = new Countdown($("#host-clock"), { speak: true });
const commandStatus = $("#command-status");
const editorStatus = $("#editor-status");
const problem = $("#host-problem");

// A co-host link is /host/CODE#TOKEN too: the server knows the co-host by the token.
const live = new Live({ role: "host", protocols: () => [PROTOCOL, `auth.${token}`] });

// --- sending commands ---------------------------------------------------------------------

let inFlight = null;
let inFlightTimer = 0;
let statusTimer = 0;

function say(where, text, kind) {
  window.clearTimeout(statusTimer);
  where.dataset.kind = kind;
  where.textContent = text;
  if (kind === "ok") statusTimer = window.setTimeout(() => (where.textContent = ""), 3000);
}

/** Send a host command decided on the latest seq; the answer shows next to the controls. */
function run(type, fields, { where = commandStatus, then } = {}) {
  if (inFlight) return;
  const id = live.command(type, fields, (reply) => {
    inFlight = null;
    window.clearTimeout(inFlightTimer);
    updateControls();
    if (reply.type === "error") {
      let extra = "";
      if (reply.reason === "conflict") {
        // Another operator (or the timer) moved first; the update is on its way, and a
        // resync makes sure of it.
        live.send({ type: "resync" });
        extra = ` ${t("The console already shows the latest state.")}`;
      }
      say(where, `${reply.message}${extra}`, "error");
      return;
    }
    say(where, t("Done: {action}", { action: actionLabel(type) }), "ok");
    if (then) then(reply);
  });
  if (!id) {
    say(where, t("Not connected: nothing was sent. Wait for the connection and try again."), "error");
    return;
  }
  inFlight = id;
  say(where, t("Sending…"), "busy");
  // A reply that never comes (socket dropped) must not lock the console.
  inFlightTimer = window.setTimeout(() => {
    if (inFlight === id) {
      inFlight = null;
      updateControls();
    }
  }, 8000);
  updateControls();
}

// --- the controls -------------------------------------------------------------------------

const buttons = {
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
  confirm: $("#btn-confirm"),
  undo: $("#btn-undo"),
  override: $("#btn-override"),
  end: $("#btn-end"),
};
const stepButton = $("#btn-step");
// The console's keyboard shortcuts (wired at the end of this file).
const SHORTCUTS = { n: buttons.next, " ": buttons.pause, e: buttons.extend, v: buttons.vote, r: buttons.reveal };

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
  if (battle.phase === "vote") return Boolean(openVote(battle));
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

function updateControls() {
  const battle = live.battle;
  const ready = Boolean(battle) && live.connected && !inFlight;
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
  $("#vote-panel").hidden = ["lobby", "challenge"].includes(phase);
  buttons.challenge.disabled = !(ready && challengeOpen);

  const open = openVote(battle);
  if (open) label(buttons.vote, "Close the vote early…");
  else if (battle && runoffPending(battle)) label(buttons.vote, "Open the runoff vote");
  else label(buttons.vote, "Open the vote");
  buttons.vote.disabled = !(ready && (open || canOpenVote(battle)));
  buttons.reveal.disabled = !(ready && phase === "vote" && vote && vote.status === "closed");
  buttons.void.disabled = !(ready && phase === "vote" && vote && ["open", "closed"].includes(vote.status));

  const proposal = round && round.proposal;
  const inReveal = phase === "reveal" && proposal;
  $("#elimination-panel").hidden = !["reveal", "elimination", "final"].includes(phase);
  const picks = [...document.querySelectorAll("#pick-options input:checked")].length;
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
  renderStep(battle);
}

/** The button of the show's next step in its panel (null when the show is over). */
function stepTarget(battle) {
  if (!battle) return null;
  const vote = currentVote(battle);
  switch (battle.phase) {
    case "lobby":
    case "elimination":
      return buttons.startRound;
    case "challenge":
    case "turn":
    case "debate":
      return buttons.next;
    case "vote":
      return vote && vote.status === "closed" ? buttons.reveal : buttons.vote;
    case "reveal":
      return runoffPending(battle) ? buttons.vote : buttons.confirm;
    case "final":
      return buttons.end;
    default:
      return null;
  }
}

/**
 * The next step, always at the foot of the window with its shortcut, whatever the panels
 * above show or hide: the host's eyes and hand find it in the same place all evening.
 */
function renderStep(battle) {
  const target = stepTarget(battle);
  const key = Object.keys(SHORTCUTS).find((k) => SHORTCUTS[k] === target && k !== " ");
  const kbd = stepButton.querySelector("kbd");
  kbd.hidden = !key;
  kbd.textContent = key ? key.toUpperCase() : "";
  if (target) labelText(stepButton, target.querySelector(".label").textContent);
  else label(stepButton, battle && battle.phase === "finished" ? "The battle is over." : "Connecting…");
  stepButton.disabled = !target || target.disabled;
}

// --- what the console shows ---------------------------------------------------------------

function renderNow() {
  const battle = live.battle;
  const round = currentRound(battle);
  const phaseNode = $("#phase-label");
  setText(phaseNode, null);
  phaseNode.textContent = phaseLabel(battle.phase);
  $("#round-label").textContent = round && battle.phase !== "lobby" ? (round.final ? t("Final round") : t("Round {n}", { n: round.number })) : "";
  $("#battle-title").textContent = battle.title;
  let detail = "";
  const speaker = speakerOf(battle);
  if (speaker) {
    detail = t("{name} speaks (turn {n} of {total}).", { name: nameOf(battle, speaker), n: battle.turn_index + 1, total: round.order.length });
  } else if (battle.phase === "lobby") {
    detail = plural(
      battle.battlers.length,
      "1 battler. Add another below, then start the first round.",
      "{n} battlers. Edit them below, then start the first round.",
    );
  } else if (battle.phase === "challenge") {
    detail = round.challenge ? t("Challenge: {text}", { text: round.challenge }) : t("No challenge yet: reveal one, or start the first turn.");
  } else if (battle.phase === "debate") {
    detail = t("Open debate among {names}.", { names: names(battle, round.order.filter((id) => battlerOf(battle, id)?.status === "in")) });
  } else if (battle.phase === "vote") {
    detail = currentVote(battle) ? "" : t("The turns are over: open the vote.");
  } else if (battle.phase === "final") {
    detail = t("{name} wins. End the battle when the show is over.", { name: nameOf(battle, battle.winner) });
  } else if (battle.phase === "finished") {
    detail = battle.ended_reason === "ended_early" ? t("The battle was ended early.") : t("The battle is over.");
  }
  $("#now-detail").textContent = detail;
  const timer = battle.timer;
  countdown.set(timer);
  $("#clock-state").textContent = !timer ? t("No clock running") : timer.deadline_ms === null ? t("Paused") : t("Running");
}

function renderVote() {
  const battle = live.battle;
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
    return;
  }
  const tally = live.currentTally();
  const totals = shown.status === "revealed" ? shown.totals : tally && tally.totals;
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
        h("span", { class: "bar-figures" }, votesText(row.votes, row.share)),
      );
    }),
  );
  const ballots = shown.status === "revealed" ? shown.ballots || 0 : tally ? tally.ballots : 0;
  $("#tally-count").textContent = ballotsText(ballots);
}

function checkList(container, ids, name, { max, checkedIds = [] } = {}) {
  const battle = live.battle;
  const before = new Set([...container.querySelectorAll("input:checked")].map((box) => box.value));
  fill(
    container,
    ids.map((id) => {
      const inputId = `${name}-${id}`;
      const box = h("input", { type: "checkbox", id: inputId, value: id, name, dataset: { key: inputId } });
      box.checked = before.has(id) || checkedIds.includes(id);
      box.addEventListener("change", () => {
        if (max) {
          const checked = container.querySelectorAll("input:checked");
          if (checked.length > max) box.checked = false;
        }
        updateControls();
      });
      return h("label", { class: "check", for: inputId }, box, h("span", {}, nameOf(battle, id)));
    }),
  );
}

let eliminationKey = "";

function renderElimination() {
  const battle = live.battle;
  const round = currentRound(battle);
  const proposal = round && round.proposal;
  $("#proposal-line").textContent = proposal ? proposalText(battle, round) : "";
  if (battle.phase === "elimination") {
    $("#proposal-line").textContent = t("{names} left the battle.", { names: names(battle, round.eliminated) });
  }
  // Rebuild the pickers only when the round's proposal changes: the host's ticks stay.
  const key = JSON.stringify([battle.phase, round && round.number, proposal, round && round.order, t("Battlers")]);
  if (key === eliminationKey) return;
  eliminationKey = key;
  const hostPicks = battle.phase === "reveal" && proposal && proposal.method === "host";
  $("#pick-tied").hidden = !hostPicks;
  if (hostPicks) {
    $("#pick-legend").textContent = t("Pick {need} of the tied to leave", { need: proposal.need });
    checkList($("#pick-options"), proposal.tied, "pick", { max: proposal.need });
  } else fill($("#pick-options"));
  checkList($("#override-options"), round ? round.order : [], "override");
}

function renderPresence() {
  const presence = live.presence || {};
  for (const role of ["audience", "screen", "host", "cohost"]) {
    $(`#presence-${role}`).textContent = String(presence[role] || 0);
  }
}

function renderEngagement() {
  const battle = live.battle;
  const round = currentRound(battle);
  const figures = live.currentEngagement();
  const list = $("#host-engagement");
  if (!round) {
    fill(list, h("li", { class: "hint" }, t("Reactions are counted from the first round.")));
    return;
  }
  const scale = Math.max(10, ...Object.values(figures).map((f) => Math.abs(f.score)));
  fill(
    list,
    round.order.map((id) => {
      const figure = figures[id] || { counts: {}, score: 0 };
      const fillBar = h("span", { class: "meter-fill" });
      fillBar.style.width = `${Math.max(0, (figure.score / scale) * 100)}%`;
      return h(
        "li",
        { class: `engagement-row${id === speakerOf(battle) ? " is-now" : ""}` },
        h("span", { class: "engagement-name" }, nameOf(battle, id)),
        h("span", { class: "engagement-score" }, String(figure.score)),
        h("span", { class: "meter", "aria-hidden": "true" }, fillBar),
        h(
          "span",
          { class: "engagement-counts" },
          battle.rules.reactions.map((kind) =>
            h("span", { class: "count-item", title: reactionLabel(kind) }, reactionIcon(kind, 18), h("span", { class: "visually-hidden" }, reactionLabel(kind)), ` ${figure.counts[kind] || 0}`),
          ),
        ),
      );
    }),
  );
}

function renderRoster() {
  const battle = live.battle;
  fill(
    $("#host-roster"),
    battle.battlers.map((b) =>
      h(
        "li",
        { class: `status-row is-${b.status}` },
        h("span", { class: "status-name" }, b.name),
        h("span", { class: "status-vision" }, b.vision),
        h("span", { class: "status-tag" }, battlerStatus(b)),
      ),
    ),
  );
}

const LINKS = [
  ["screen", "Screen (secret, read-only)"],
  ["cohost", "Co-host console (secret)"],
  ["join", "Audience join link (public)"],
  ["host", "Host console (secret)"],
];

let linksKey = "";

function renderLinks() {
  const links = live.links || {};
  const key = JSON.stringify([links, t("Copy")]);
  if (key === linksKey) return;
  linksKey = key;
  fill(
    $("#host-links"),
    LINKS.filter(([name]) => links[name]).map(([name, text]) => linkField(t(text), links[name], { open: name === "screen" || name === "join" })),
    // Only the host may revoke (docs/protocol.md, revoke_cohost); a co-host has no host link.
    links.cohost && links.host ? h("button", { id: "btn-revoke", type: "button", class: "btn btn-small btn-danger-quiet", onclick: revokeCohost }, t("Revoke the co-host link…")) : null,
  );
  const results = $("#results-link");
  results.hidden = !links.results;
  if (links.results) results.href = links.results;
  $("#results-note").hidden = Boolean(links.results);
}

async function revokeCohost() {
  const yes = await ask({
    title: t("Revoke the co-host link?"),
    message: t("Every co-host console open with it is closed at once. A new co-host link appears here to hand out."),
    confirm: t("Revoke the link"),
  });
  if (!yes) return;
  run("revoke_cohost", {}, {
    then: (reply) => {
      if (!reply.links) return;
      live.links = reply.links; // the ack carries the new co-host link
      renderLinks();
    },
  });
}

let logKey = "";

function renderLog() {
  const battle = live.battle;
  const log = battle.log || [];
  const key = `${log.length}:${t("Host")}`;
  if (key === logKey) return;
  logKey = key;
  fill(
    $("#event-log"),
    log
      .slice(-200)
      .reverse()
      .map((entry) =>
        h(
          "li",
          { class: "log-entry" },
          h("time", { class: "log-time", datetime: new Date(entry.at_ms).toISOString() }, formatTime(entry.at_ms)),
          h("span", { class: "log-actor" }, actorLabel(entry.actor)),
          h("span", { class: "log-action" }, actionLabel(entry.action)),
          h("span", { class: "log-details" }, logDetails(battle, entry)),
        ),
      ),
  );
}

// --- the lobby editor ---------------------------------------------------------------------

const editor = $("#battler-editor");
const battleForm = $("#battle-form");
let battleFormDirty = false;

function renderEditor() {
  const battle = live.battle;
  const lobby = battle.phase === "lobby";
  $("#lobby-editor").hidden = !lobby;
  if (!lobby) return;
  const rows = new Map([...editor.children].map((row) => [row.dataset.id, row]));
  for (const battler of battle.battlers) {
    let row = rows.get(battler.id);
    if (!row) row = battlerRow(battler);
    else if (!row.dataset.dirty) {
      for (const input of row.querySelectorAll("input")) {
        if (document.activeElement !== input) input.value = battler[input.name] || "";
      }
    }
    rows.delete(battler.id);
    editor.append(row); // in roster order
  }
  for (const gone of rows.values()) gone.remove();
  if (!battleFormDirty) fillBattleFields(battleForm, battle);
}

function battlerRow(battler) {
  const key = `edit-${battler.id}`;
  const row = h(
    "li",
    { class: "battler-row", dataset: { id: battler.id } },
    h(
      "form",
      { class: "fieldset-inner" },
      h("div", { class: "field-grid" }, battlerInputs(battler, key)),
      h(
        "div",
        { class: "button-row" },
        h("button", { type: "submit", class: "btn btn-small", dataset: { i18n: "Save" } }, t("Save")),
        h("button", { type: "button", class: "btn btn-small btn-danger-quiet", dataset: { remove: "", i18n: "Remove…" } }, t("Remove…")),
      ),
    ),
  );
  const form = row.querySelector("form");
  form.addEventListener("input", () => {
    row.dataset.dirty = "1";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const value = (name) => form.querySelector(`[name="${name}"]`).value.trim();
    run(
      "edit_battler",
      { battler: battler.id, name: value("name"), vision: value("vision"), affiliation: value("affiliation") },
      { where: editorStatus, then: () => delete row.dataset.dirty },
    );
  });
  row.querySelector("[data-remove]").addEventListener("click", async () => {
    const current = battlerOf(live.battle, battler.id);
    const yes = await ask({
      title: t("Remove {name}?", { name: current ? current.name : battler.id }),
      message: t("The battler leaves the roster. You can add them again before the first round."),
      confirm: t("Remove"),
    });
    if (yes) run("remove_battler", { battler: battler.id }, { where: editorStatus });
  });
  return row;
}

const addForm = $("#add-battler-form");
fill($("#add-battler-fields"), battlerInputs({}, "add"));
addForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!addForm.reportValidity()) return;
  const value = (name) => addForm.querySelector(`[name="${name}"]`).value.trim();
  run(
    "add_battler",
    { name: value("name"), vision: value("vision"), affiliation: value("affiliation") },
    {
      where: editorStatus,
      then: () => {
        addForm.reset();
        addForm.querySelector("input").focus();
      },
    },
  );
});

battleForm.addEventListener("input", () => {
  battleFormDirty = true;
});
battleForm.addEventListener("change", () => {
  battleFormDirty = true;
});
battleForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!battleForm.reportValidity()) return;
  run("edit_battle", readBattleFields(battleForm), {
    where: editorStatus,
    then: () => {
      battleFormDirty = false;
    },
  });
});
$("#battle-revert").addEventListener("click", () => {
  battleFormDirty = false;
  if (live.battle) fillBattleFields(battleForm, live.battle);
});

// --- wiring the buttons -------------------------------------------------------------------

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
  const target = stepTarget(live.battle);
  if (target && !target.disabled) target.click();
});
buttons.next.addEventListener("click", () => run("next"));
buttons.skip.addEventListener("click", () => run("skip_turn"));

/**
 * After a field's form was sent with Enter, the focus goes to the next step: the next N or
 * Space is the show's again, not a letter typed into the field (or, once the start form
 * hides, into the challenge card's field the next Tab would reach from the page).
 */
function leaveTheField() {
  const field = document.activeElement;
  if (!field || field === document.body || field.closest("form, [hidden]")) stepButton.focus();
}

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
  const battle = live.battle;
  if (openVote(battle)) {
    const yes = await ask({
      title: t("Close the vote now?"),
      message: t("The clock still runs. Phones can no longer vote once it is closed."),
      confirm: t("Close the vote"),
    });
    if (yes) run("close_vote");
  } else run("open_vote");
});
buttons.reveal.addEventListener("click", () => run("reveal_results"));
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
  const picked = [...document.querySelectorAll("#pick-options input:checked")].map((box) => box.value);
  const leaving = proposal.method === "host" ? [...proposal.leaving, ...picked] : proposal.leaving;
  const message = round.final
    ? t("{name} wins the evening.", { name: nameOf(battle, round.order.find((id) => !leaving.includes(id))) })
    : leavingText(battle, leaving);
  const yes = await ask({ title: round.final ? t("Crown the winner?") : t("Confirm the elimination?"), message, confirm: t("Confirm") });
  if (yes) run("confirm_elimination", proposal.method === "host" ? { battlers: picked } : {});
});
buttons.undo.addEventListener("click", () => run("undo_elimination"));
buttons.override.addEventListener("click", async () => {
  const battle = live.battle;
  const picked = [...document.querySelectorAll("#override-options input:checked")].map((box) => box.value);
  const reason = $("#override-reason").value.trim();
  if (!picked.length) {
    say(commandStatus, t("Tick who leaves first."), "error");
    return;
  }
  if (!reason) {
    say(commandStatus, t("Give a reason: it goes into the event log."), "error");
    $("#override-reason").focus();
    return;
  }
  const yes = await ask({
    title: t("Override the rules?"),
    message: plural(
      picked.length,
      "{names} leaves the battle instead of the rules' pick. Reason: {reason}",
      "{names} leave the battle instead of the rules' pick. Reason: {reason}",
      { names: names(battle, picked), reason },
    ),
    confirm: t("Override"),
  });
  if (yes) run("override_elimination", { battlers: picked, reason }, { then: () => ($("#override-reason").value = "") });
});
buttons.end.addEventListener("click", async () => {
  const battle = live.battle;
  const early = battle.phase !== "final";
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
  const button = SHORTCUTS[event.key.toLowerCase()];
  if (!button) return;
  event.preventDefault();
  if (!button.disabled) button.click();
});

// --- from the hall: the moderation queue (docs/rules.md, "The audience takes part") --------

/** Submission id -> the newest item heard (highest rev): the queue and its changes may cross. */
const hall = new Map();
let blockedDevices = 0;
/** The blocks as the newest queue listed them: { submission, by, at_ms }, never a device. */
let blocks = [];
let recount = 0;

/** A block or an unblock changed the list of blocked phones, which only the queue carries:
 * ask for it again once the change's other submissions are in (docs/protocol.md, `submissions`). */
function recountBlocks() {
  window.clearTimeout(recount);
  recount = window.setTimeout(() => live.send({ type: "resync" }), 300);
}
const hallStatus = $("#hall-status");

function keepNewest(item) {
  const known = hall.get(item.id);
  if (!known || item.rev >= known.rev) hall.set(item.id, item);
}

function moderate(item, action) {
  const sent = live.request({ type: "moderate", submission: item.id, action }, (reply) => {
    if (reply.type === "error") say(hallStatus, reply.message, "error");
    else {
      keepNewest(reply.item);
      if (action === "block" || action === "unblock") recountBlocks();
      renderHall();
      say(hallStatus, t("Done: {action}", { action: t(MODERATION[action] || action) }), "ok");
    }
  });
  if (!sent) say(hallStatus, t("Not connected: nothing was sent. Wait for the connection and try again."), "error");
}

const MODERATION = { approve: "Approved", dismiss: "Dismissed", block: "Device blocked", unblock: "Phone unblocked" };
// A decision as one sentence each, for the Danish to read as it is said ("Godkendt af
// værten kl. 20:14"), not words joined in the English order.
const DECISIONS = {
  approve: "Approved by {who} at {time}",
  dismiss: "Dismissed by {who} at {time}",
  block: "Blocked by {who} at {time}",
  unblock: "Unblocked by {who} at {time}",
};
const MODERATORS = { host: "the host", cohost: "the co-host" };

/** Who decided what, and when, in words (the moderation queue, the blocked phones). */
function decisionText(action, by, atMs) {
  return t(DECISIONS[action] || action, { who: t(MODERATORS[by] || by), time: formatTime(atMs) });
}

/** The newest moderator's decision on an item, in words: what, who, when. */
function lastDecision(item) {
  const decision = item.decisions && item.decisions[item.decisions.length - 1];
  if (!decision) return null;
  return h("span", { class: "queue-meta" }, decisionText(decision.action, decision.by, decision.at_ms));
}

/** One blocked phone, shown by the submission it was blocked on, with its undo. */
function blockedItem(block) {
  const item = hall.get(block.submission);
  const who = item ? item.nickname || t("anonymous") : block.submission;
  const when = decisionText("block", block.by, block.at_ms);
  const unblock = h(
    "button",
    { type: "button", class: "btn btn-small", dataset: { key: `unblock-${block.submission}` }, onclick: () => moderate({ id: block.submission }, "unblock") },
    t("Unblock"),
  );
  return h(
    "li",
    { class: "queue-item is-blocked", dataset: { block: block.submission } },
    h("span", { class: "queue-meta" }, `${who} · ${when}`),
    item ? h("p", { class: "queue-text" }, item.text) : null,
    h("div", { class: "queue-actions" }, [unblock]),
  );
}

async function blockDevice(item) {
  const yes = await ask({
    title: t("Block this phone for the evening?"),
    message: t("Its waiting challenges and questions are dismissed and it cannot send more tonight. Its votes still count."),
    confirm: t("Block the phone"),
  });
  if (yes) moderate(item, "block");
}

/** What is on the screen now from the hall: the submission ids. */
function shownIds(battle) {
  const round = currentRound(battle);
  return new Set([battle.question && battle.question.submission, round && round.challenge_from && round.challenge_from.submission].filter(Boolean));
}

function canShow(battle, as) {
  if (as === "question") return ["turn", "debate"].includes(battle.phase);
  return ["challenge", "turn", "debate"].includes(battle.phase);
}

function queueItem(item, battle, shown) {
  const kindLabel = item.kind === "challenge" ? t("Challenge") : t("Question");
  const who = item.nickname || t("anonymous");
  const meta = [kindLabel, who];
  if (item.kind === "question" && item.battler) meta.push(t("for {name}", { name: nameOf(battle, item.battler) }));
  if (item.round) meta.push(t("Round {n}", { n: item.round }));
  const button = (label, key, onclick, extra = {}) =>
    h("button", { type: "button", class: `btn btn-small${extra.primary ? " btn-primary" : ""}`, dataset: { key: `${key}-${item.id}` }, onclick, ...extra.attrs }, label);
  const actions = [];
  if (item.status === "pending" || item.status === "held") {
    actions.push(button(t("Approve"), "approve", () => moderate(item, "approve"), { primary: true }));
    actions.push(button(t("Dismiss"), "dismiss", () => moderate(item, "dismiss")));
  }
  if (item.status === "approved") {
    const isShown = shown.has(item.id);
    if (isShown) actions.push(button(t("Take off the screen"), "hide", () => run("hide_submission", { submission: item.id }, { where: hallStatus }), { primary: true }));
    else {
      actions.push(button(t("Show as the challenge card"), "show-challenge", () => run("show_submission", { submission: item.id, show_as: "challenge" }, { where: hallStatus }), { attrs: { disabled: !canShow(battle, "challenge") } }));
      actions.push(button(t("Show as a question"), "show-question", () => run("show_submission", { submission: item.id, show_as: "question" }, { where: hallStatus }), { attrs: { disabled: !canShow(battle, "question") } }));
      actions.push(button(t("Dismiss"), "dismiss", () => moderate(item, "dismiss")));
    }
  }
  actions.push(button(t("Block phone"), "block", () => blockDevice(item)));
  return h(
    "li",
    { class: `queue-item is-${item.status}${shown.has(item.id) ? " is-shown" : ""}`, dataset: { submission: item.id } },
    h("span", { class: "queue-meta" }, meta.join(" · ")),
    h("p", { class: "queue-text" }, item.text),
    item.held_for ? h("span", { class: "queue-meta" }, t("Matched: {word}", { word: item.held_for })) : null,
    lastDecision(item),
    h("div", { class: "queue-actions" }, actions),
  );
}

function renderHall() {
  const battle = live.battle;
  if (!battle) return;
  const shown = shownIds(battle);
  const items = [...hall.values()].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
  const lists = { pending: $("#queue-pending"), held: $("#queue-held"), approved: $("#queue-approved") };
  for (const [status, list] of Object.entries(lists)) {
    const matching = items.filter((item) => item.status === status);
    fill(list, matching.length ? matching.map((item) => queueItem(item, battle, shown)) : [h("li", { class: "hint" }, t("None"))]);
  }
  fill($("#queue-blocked"), blocks.length ? blocks.map(blockedItem) : [h("li", { class: "hint" }, t("None"))]);
  const waiting = items.filter((item) => item.status === "pending" || item.status === "held").length;
  $("#hall-summary").textContent = `${plural(waiting, "1 waiting for review", "{n} waiting for review")} · ${plural(
    blockedDevices,
    "1 phone blocked",
    "{n} phones blocked",
  )}`;
}

// The audience rules change at any time (set_audience_rules); the form follows the battle
// until the host starts editing it.
const audienceForm = $("#audience-rules-form");
let audienceFormDirty = false;
audienceForm.addEventListener("input", () => (audienceFormDirty = true));
audienceForm.addEventListener("submit", (event) => {
  event.preventDefault();
  run(
    "set_audience_rules",
    {
      audience_challenges: audienceForm.elements.audience_challenges.checked,
      audience_questions: audienceForm.elements.audience_questions.checked,
      banned_words: wordList(audienceForm.elements.banned_words.value),
    },
    { where: hallStatus, then: () => (audienceFormDirty = false) },
  );
});

function renderAudienceRules() {
  const rules = live.battle.rules;
  if (audienceFormDirty) return;
  audienceForm.elements.audience_challenges.checked = rules.audience_challenges;
  audienceForm.elements.audience_questions.checked = rules.audience_questions;
  audienceForm.elements.banned_words.value = rules.banned_words.join(" ");
}

// --- the whole console --------------------------------------------------------------------

function render() {
  if (!live.battle) return;
  renderNow();
  renderVote();
  renderElimination();
  renderEngagement();
  renderRoster();
  renderLinks();
  renderLog();
  renderEditor();
  renderPresence();
  renderHall();
  renderAudienceRules();
  updateControls();
}

if (!token) {
  problem.hidden = false;
  setText(problem, "This console link is incomplete: it needs the secret part after the #.");
  updateControls();
} else {
  live.on("state", render);
  live.on("tally", renderVote);
  live.on("engagement", renderEngagement);
  live.on("presence", renderPresence);
  live.on("submissions", (queue) => {
    // A change that overtook the queue on the way keeps its higher rev.
    for (const item of queue.items) keepNewest(item);
    blockedDevices = queue.blocked;
    blocks = queue.blocks || [];
    renderHall();
  });
  live.on("submission", (message) => {
    const before = hall.get(message.item.id);
    keepNewest(message.item);
    // A device was blocked or unblocked (here or on another console).
    if ((message.item.status === "blocked") !== Boolean(before && before.status === "blocked")) recountBlocks();
    renderHall();
  });
  live.on("status", updateControls);
  live.on("open", () => {
    problem.hidden = true;
  });
  // The welcome says who this link is (a co-host link may open /ws/host/CODE too).
  live.on("welcome", (welcome) => {
    const chip = $("#role-chip");
    chip.hidden = false;
    setText(chip, welcome.role === "host" ? "Host" : "Co-host");
  });
  live.on("revoked", () => {
    inFlight = null;
    updateControls();
    problem.hidden = false;
    setText(problem, "The host revoked this co-host link. Ask the host for the new one.");
  });
  live.on("close", ({ opened }) => {
    inFlight = null;
    updateControls();
    if (!live.everOpened && !opened && live.attempts >= 2) {
      problem.hidden = false;
      setText(problem, "Cannot connect. Check that the console link is complete and the server is running.");
    }
  });
  onLanguageChange(() => {
    for (const where of [commandStatus, editorStatus]) if (where.dataset.kind !== "error") where.textContent = "";
    render();
  });
  live.start();
}
