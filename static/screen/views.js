/*
 * What the wall shows in each phase of the show (docs/rules.md): one view, fitted to the
 * stage (wall.js); the reveal and the closing view have modules of their own.
 */
import { UNDECIDED, battlerOf, currentVote, fromHall, leavingText, nameOf, questionCard, remaining, speakerOf, voteQuestion, votesText } from "../client/battle.js";
import { $, h } from "../client/dom.js";
import { changedLine, versionTag } from "../client/visions.js";
import { plural, t } from "../client/i18n.js";
import { page } from "../client/page.js";
import { winnerView } from "./closing.js";
import { engagementMeter } from "./reactions.js";
import { CHALLENGE_SIZES, NAME_SIZES, PROPOSAL_SIZES, VISION_SIZES, density, sized } from "./wall.js";

export const joinUrl = `${window.location.origin}/join/${page.code}`;

/** A vote's live bars, a row per choice, empty until renderTally() fills them in (the
 * screen's vote, and the stream overlay's lower third). */
export function liveBars(battle, vote) {
  return h(
    "ol",
    { class: `bars ${density(vote.choices.length)}`, id: "vote-bars" },
    vote.choices.map((id) =>
      h(
        "li",
        { class: "bar-row", dataset: { choice: id } },
        h("span", { class: "bar-name" }, nameOf(battle, id)),
        h("span", { class: "bar-track", "aria-hidden": "true" }, h("span", { class: "bar-fill" })),
        h("span", { class: "bar-figures" }),
      ),
    ),
  );
}

function battlerCard(battler, extra, className = "") {
  return h(
    "div",
    { class: `screen-card ${className}`, dataset: { battler: battler.id } },
    h("span", { class: "card-name" }, battler.name),
    h("span", { class: "card-vision" }, battler.vision, versionTag(battler)),
    battler.affiliation ? h("span", { class: "card-affiliation" }, battler.affiliation) : null,
    extra || null,
  );
}

/** The QR code and the join code, big: in the lobby, and whenever a vote is open. */
function joinBox(extra = null) {
  return h(
    "div",
    { class: "join-box" },
    h("img", { class: "qr-big", src: `/qr/${encodeURIComponent(page.code)}.svg`, alt: t("QR code to join the battle"), width: "440", height: "440" }),
    h("p", { class: "join-code-label" }, t("Join code")),
    h("p", { class: "join-code" }, page.code),
    h("p", { class: "join-url" }, joinUrl),
    extra,
  );
}

/** A vote's choice as a card: a battler, or a stance poll's "undecided". */
function choiceCard(battle, id) {
  if (id === UNDECIDED) return battlerCard({ id, name: nameOf(battle, id), vision: "" }, null, "is-undecided");
  const battler = battlerOf(battle, id);
  return battler ? battlerCard(battler) : null;
}

function challengeCard(round, big = false) {
  if (!round || !round.challenge) return null;
  return h(
    "div",
    { class: `challenge-card${big ? " challenge-big" : ""}` },
    h("span", { class: "challenge-label" }, t("Challenge")),
    h("p", { class: `challenge-text${sized(round.challenge, CHALLENGE_SIZES)}` }, round.challenge),
    round.challenge_from ? h("p", { class: "from-hall" }, fromHall(round.challenge_from)) : null,
  );
}

// Each view: (wall, battle, round) -> its element; wall: what the screen's parts share
// (static/screen.js).
const VIEWS = {
  lobby({ scenario }, battle) {
    return h(
      "div",
      { class: "lobby" },
      h(
        "div",
        { class: "lobby-story" },
        battle.topic ? h("p", { class: "topic", dataset: { fit: "" } }, battle.topic) : null,
        battle.scenario ? scenario.build(battle.scenario) : null,
        h("div", { class: `card-grid ${density(battle.battlers.length)}`, dataset: { fit: "" } }, battle.battlers.map((b) => battlerCard(b))),
      ),
      joinBox(h("p", { class: "audience-line" }, h("strong", { dataset: { audienceCount: "" } }, "0"), " ", t("have joined"))),
    );
  },
  challenge(wall, battle, round) {
    return h(
      "div",
      { class: "centered" },
      h("p", { class: "eyebrow" }, round.final ? t("The final") : t("Round {n}", { n: round.number })),
      challengeCard(round, true) || h("p", { class: "big-line" }, t("Get ready: the round is about to start.")),
      h("div", { class: "order-strip" }, round.order.map((id) => h("span", { class: "order-item" }, nameOf(battle, id)))),
    );
  },
  turn({ live, clock }, battle, round) {
    const speaker = battlerOf(battle, speakerOf(battle));
    const side = h("div", { class: "turn-side" });
    const view = h(
      "div",
      { class: "turn" },
      h(
        "div",
        { class: "turn-main" },
        h(
          "div",
          { dataset: { fit: "" } },
          h("p", { class: "eyebrow" }, t("Now speaking")),
          speaker ? h("h2", { class: `speaker-name${sized(speaker.name, NAME_SIZES)}` }, speaker.name) : null,
          speaker ? h("p", { class: `speaker-vision${sized(speaker.vision, VISION_SIZES)}` }, speaker.vision, versionTag(speaker)) : null,
          speaker ? changedLine(speaker, round, "speaker-changed") : null,
          speaker && speaker.affiliation ? h("p", { class: "card-affiliation" }, speaker.affiliation) : null,
          questionCard(battle, sized(battle.question?.text, CHALLENGE_SIZES)) || challengeCard(round),
        ),
      ),
      side,
      h(
        "ol",
        { class: "order-strip", dataset: { fit: "" } },
        round.order.map((id, index) =>
          h(
            "li",
            { class: `order-item${index < battle.turn_index ? " is-done" : ""}${index === battle.turn_index ? " is-now" : ""}` },
            nameOf(battle, id),
          ),
        ),
      ),
    );
    clock.place(side, t("Time left"));
    if (speaker) side.append(engagementMeter(live, speaker.id));
    return view;
  },
  debate({ live, clock }, battle, round) {
    const head = h("div", { class: "debate-head" }, h("h2", { class: "big-line" }, t("Open debate")), questionCard(battle, sized(battle.question?.text, CHALLENGE_SIZES)));
    const view = h(
      "div",
      { class: "debate" },
      head,
      h(
        "div",
        { class: `card-grid ${density(round.order.length)}` },
        round.order
          .map((id) => battlerOf(battle, id))
          .filter((b) => b && b.status === "in")
          .map((b) => battlerCard(b, engagementMeter(live, b.id))),
      ),
    );
    clock.place(head, t("Time left"));
    return view;
  },
  vote({ clock }, battle, round) {
    const vote = currentVote(battle);
    if (!vote) {
      return h(
        "div",
        { class: "centered" },
        h("p", { class: "big-line" }, t("Get your phones ready: the vote opens in a moment.")),
        h("div", { class: `card-grid ${density(round.order.length)}` }, round.order.map((id) => battlerOf(battle, id)).filter((b) => b && b.status === "in").map((b) => battlerCard(b))),
      );
    }
    const head = h("div", { class: "vote-head" }, h("h2", { class: "vote-question" }, voteQuestion(battle, vote)));
    // Live bars when the rules show totals; otherwise the choices and a count of ballots.
    const choices = battle.rules.live_totals
      ? liveBars(battle, vote)
      : h("div", { class: `card-grid ${density(vote.choices.length + 2)}` }, vote.choices.map((id) => choiceCard(battle, id)));
    // While the vote is open, the QR code is big enough to scan from the middle of the hall
    // (the footer's small one steps aside).
    const open = vote.status === "open";
    const view = h(
      "div",
      { class: `vote${open ? " is-open" : ""}` },
      h("div", { class: "vote-main" }, head, h("div", { class: "vote-choices", dataset: { fit: "" } }, h("p", { id: "vote-count", class: "vote-count" }), choices)),
      open ? joinBox() : null,
    );
    if (vote.status === "open" && battle.timer) clock.place(head, t("Time left to vote"));
    return view;
  },
  stance(wall, battle, round) {
    return VIEWS.vote(wall, battle, round); // a stance poll is a vote that eliminates no one (docs/rules.md)
  },
  reveal({ reveal }, battle, round) {
    return reveal.view(battle, round);
  },
  elimination(wall, battle, round) {
    return h(
      "div",
      { class: "elimination centered" },
      h(
        "div",
        { class: `leaving-row ${density(round.eliminated.length * 2)}` },
        round.eliminated.map((id) => battlerOf(battle, id)).filter(Boolean).map((b) => battlerCard(b, null, "is-leaving")),
      ),
      h("p", { class: `big-line${sized(leavingText(battle, round.eliminated), PROPOSAL_SIZES)}` }, leavingText(battle, round.eliminated)),
      round.override_reason ? h("p", { class: "scenario" }, t("The host decided: {reason}", { reason: round.override_reason })) : null,
      h("p", { class: "eyebrow" }, t("Still in the battle")),
      h("div", { class: `card-grid ${density(remaining(battle).length)}` }, remaining(battle).map((b) => battlerCard(b))),
    );
  },
  final({ closing }, battle) {
    return closing.view(battle, winnerView(battle, t("The winning vision")));
  },
  finished({ closing }, battle) {
    const thanks = battle.winner
      ? winnerView(battle, t("Thank you! The winning vision"))
      : h("div", { class: "centered" }, h("p", { class: "big-line" }, t("The battle is over. Thank you!")));
    return closing.view(battle, thanks);
  },
};

/** The view of the battle's phase (the lobby's for a phase the page does not know). */
export function phaseView(wall, battle, round) {
  return (VIEWS[battle.phase] || VIEWS.lobby)(wall, battle, round);
}

/** The open vote's live bars and its count of ballots, as the tally stands. */
export function renderTally(live) {
  const battle = live.battle;
  const vote = currentVote(battle);
  const count = $("#vote-count");
  if (!count || !vote) return;
  const tally = live.currentTally();
  const totals = tally && tally.totals;
  const sum = totals ? Object.values(totals).reduce((a, b) => a + b, 0) : 0;
  const bars = $("#vote-bars");
  for (const row of bars ? bars.children : []) {
    const votes = totals ? totals[row.dataset.choice] || 0 : 0;
    const share = sum ? votes / sum : 0;
    row.querySelector(".bar-fill").style.width = totals ? `${share * 100}%` : "0%";
    row.querySelector(".bar-figures").textContent = totals ? votesText(votes, share) : "";
  }
  const ballots = tally ? tally.ballots : 0;
  count.textContent =
    vote.status === "open"
      ? plural(ballots, "1 ballot in", "{n} ballots in")
      : plural(ballots, "The vote has closed: 1 ballot.", "The vote has closed: {n} ballots.");
}
