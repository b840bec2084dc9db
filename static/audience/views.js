/* What the phone shows in each phase of the show (docs/rules.md): the top and the main part. */
import {
  battlerOf,
  currentVote,
  figuresText,
  fromHall,
  leavingText,
  nameOf,
  proposalText,
  questionCard,
  remaining,
  revealedVote,
  speakerOf,
  standings,
  voteQuestion,
} from "../client/battle.js";
import { h } from "../client/dom.js";
import { changedLine, earlierVersions, versionTag } from "../client/visions.js";
import { t } from "../client/i18n.js";

function battlerCard(battler, extra) {
  return h(
    "li",
    { class: `battler-card${battler.status !== "in" ? ` is-${battler.status}` : ""}` },
    h("span", { class: "battler-name" }, battler.name),
    h("span", { class: "battler-vision" }, battler.vision, versionTag(battler)),
    battler.affiliation ? h("span", { class: "battler-affiliation" }, battler.affiliation) : null,
    earlierVersions(battler),
    extra || null,
  );
}

function roster(battlers) {
  return h("ul", { class: "roster" }, battlers.map((b) => battlerCard(b)));
}

function challengeCard(round) {
  if (!round || !round.challenge) return null;
  return h(
    "div",
    { class: "challenge-card" },
    h("span", { class: "challenge-label" }, t("Challenge")),
    h("p", { class: "challenge-text" }, round.challenge),
    round.challenge_from ? h("p", { class: "from-hall" }, fromHall(round.challenge_from)) : null,
  );
}

function resultList(battle, vote, ballot) {
  const mine = ballot.mine(vote);
  return h(
    "ol",
    { class: "results" },
    standings(vote).map((row) =>
      h(
        "li",
        { class: `result${row.id === mine ? " is-mine" : ""}` },
        h("span", { class: "result-name" }, nameOf(battle, row.id)),
        h("span", { class: "result-figures" }, figuresText(row.id, row.votes, row.share, vote.online)),
        row.id === mine ? h("span", { class: "result-mine" }, t("Your vote")) : null,
        meter(row.share),
      ),
    ),
  );
}

function meter(share) {
  const fillBar = h("span", { class: "meter-fill" });
  fillBar.style.width = `${Math.round(share * 1000) / 10}%`;
  return h("span", { class: "meter", "aria-hidden": "true" }, fillBar);
}

// Each view: (phone, battle, round) -> { top, main }; phone: what the phone's panels share
// (static/audience.js).
const VIEWS = {
  lobby(phone, battle) {
    return {
      top: [
        battle.topic ? h("p", { class: "topic" }, battle.topic) : null,
        battle.scenario ? h("p", { class: "scenario" }, battle.scenario) : null,
        h("p", { class: "waiting" }, t("Waiting for the show to start. Keep this page open.")),
      ],
      main: [h("h2", { class: "section-title" }, t("The battlers")), roster(battle.battlers)],
    };
  },
  challenge(phone, battle, round) {
    return {
      top: [round.challenge ? challengeCard(round) : h("p", { class: "waiting" }, t("The round is about to start."))],
      main: [h("h2", { class: "section-title" }, t("Speaking order")), roster(round.order.map((id) => battlerOf(battle, id)).filter(Boolean))],
    };
  },
  turn({ reactions }, battle, round) {
    const speaker = battlerOf(battle, speakerOf(battle));
    const nextId = round.order[battle.turn_index + 1];
    return {
      top: [
        h("p", { class: "eyebrow" }, t("Now speaking")),
        speaker ? h("h2", { class: "speaker-name" }, speaker.name) : null,
        speaker ? h("p", { class: "speaker-vision" }, speaker.vision, versionTag(speaker)) : null,
        speaker ? changedLine(speaker, round) : null,
        speaker ? earlierVersions(speaker) : null,
        speaker && speaker.affiliation ? h("p", { class: "battler-affiliation" }, speaker.affiliation) : null,
      ],
      main: [
        questionCard(battle),
        reactions.panel(battle),
        nextId ? h("p", { class: "hint" }, t("Up next: {name}", { name: nameOf(battle, nextId) })) : null,
        challengeCard(round),
      ],
    };
  },
  debate({ reactions }, battle, round) {
    const inPlay = round.order.map((id) => battlerOf(battle, id)).filter((b) => b && b.status === "in");
    const picker = reactions.targetPicker(inPlay);
    return {
      top: [h("p", { class: "eyebrow" }, t("Open debate")), h("h2", { class: "speaker-name" }, t("Everyone still in the battle"))],
      main: [questionCard(battle), h("h3", { class: "panel-title" }, t("Who are you reacting to?")), picker, reactions.panel(battle), challengeCard(round)],
    };
  },
  vote(phone, battle, round) {
    const vote = currentVote(battle);
    if (!vote) {
      return {
        top: [h("p", { class: "waiting" }, t("The vote opens in a moment."))],
        main: [roster(round.order.map((id) => battlerOf(battle, id)).filter((b) => b && b.status === "in"))],
      };
    }
    return {
      top: [h("h2", { class: "vote-question" }, voteQuestion(battle, vote))],
      main: [h("div", { id: "choices", class: "choices" })],
    };
  },
  stance(phone, battle, round) {
    return VIEWS.vote(phone, battle, round); // a stance poll is a vote that eliminates no one (docs/rules.md)
  },
  reveal({ ballot }, battle, round) {
    const vote = revealedVote(battle);
    return {
      top: [h("h2", { class: "section-title" }, t("The results"))],
      main: [vote ? resultList(battle, vote, ballot) : null, h("p", { class: "proposal" }, proposalText(battle, round))],
    };
  },
  elimination(phone, battle, round) {
    return {
      top: [
        h("h2", { class: "leaving" }, leavingText(battle, round.eliminated)),
        round.override_reason ? h("p", { class: "hint" }, t("The host decided: {reason}", { reason: round.override_reason })) : null,
      ],
      main: [h("h2", { class: "section-title" }, t("Still in the battle")), roster(remaining(battle)), h("p", { class: "waiting" }, t("The next round starts soon."))],
    };
  },
  final(phone, battle) {
    const winner = battlerOf(battle, battle.winner);
    return {
      top: [
        h(
          "div",
          { class: "winner-card" },
          h("p", { class: "eyebrow" }, t("The winning vision")),
          winner ? h("h2", { class: "winner-name" }, winner.name) : null,
          winner ? h("p", { class: "speaker-vision" }, winner.vision) : null,
        ),
      ],
      main: [h("p", { class: "waiting" }, t("Thank you for voting!"))],
    };
  },
  finished(phone, battle) {
    const winner = battlerOf(battle, battle.winner);
    return {
      top: [h("h2", { class: "section-title" }, t("The battle is over."))],
      main: [
        winner ? h("p", { class: "speaker-vision" }, t("Winner: {name}: {vision}", { name: winner.name, vision: winner.vision })) : null,
        h("p", { class: "waiting" }, t("Thank you for playing!")),
      ],
    };
  },
};

/** The view of the battle's phase (the lobby's for a phase the page does not know). */
export function phaseView(phone, battle, round) {
  return (VIEWS[battle.phase] || VIEWS.lobby)(phone, battle, round);
}
