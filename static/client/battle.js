/*
 * Future Battles: the game's words and questions asked of a battle, as the pages receive
 * it in a snapshot or an update (docs/protocol.md): whose turn it is, the vote the round
 * is on, standings, and the sentences that say them.
 */

import { h } from "./dom.js";
import { currentLanguage, plural, t } from "./i18n.js";

const PHASES = {
  lobby: "Lobby",
  challenge: "Challenge",
  turn: "Presentation",
  debate: "Debate",
  vote: "Vote",
  reveal: "Results",
  elimination: "Out",
  final: "Final",
  finished: "Finished",
  stance: "Stance poll",
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
  // In static/, under the same versioned address as this module: kept by the browser too.
  const src = new URL(`../reaction-${kind}.svg`, import.meta.url).pathname;
  return h("img", { class: "reaction-icon", src, alt: "", width: String(size), height: String(size) });
}

export function battlerOf(battle, id) {
  return (battle && battle.battlers.find((b) => b.id === id)) || null;
}

export function nameOf(battle, id) {
  if (id === UNDECIDED) return t("Undecided");
  const battler = battlerOf(battle, id);
  return battler ? battler.name : id;
}

/** The choice beside the battlers in a stance poll (docs/rules.md, who moved minds). */
export const UNDECIDED = "undecided";

export function currentRound(battle) {
  return battle && battle.rounds.length ? battle.rounds[battle.rounds.length - 1] : null;
}

/** The vote this phase is on (model.Battle.current_vote): the stance poll in its phase, else
 * the round's newest vote that was not voided. */
export function currentVote(battle) {
  if (battle && battle.phase === "stance") return battle.stances[battle.stances.length - 1] || null;
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
  return battle && (battle.phase === "vote" || battle.phase === "stance") && vote && vote.status === "open" ? vote : null;
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
  if (vote.stance) return t("Which vision do you lean towards now?");
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

export function votesText(votes, share) {
  return plural(votes, "1 vote · {share}", "{n} votes · {share}", { share: percent(share) });
}

/**
 * A battler's votes with their hall's and online parts (docs/rules.md, "Hall and online"):
 * `online` is the vote's or the tally's online part, null without a remote audience.
 */
export function figuresText(battlerId, votes, share, online) {
  const text = votesText(votes, share);
  if (!online) return text;
  const remote = online[battlerId] || 0;
  return `${text} · ${t("hall {hall}, online {online}", { hall: votes - remote, online: remote })}`;
}

export function ballotsText(n) {
  return plural(n, "1 ballot", "{n} ballots");
}

/** Battlers' names as a list in words: "Ada, Bo and Cy", "Ada, Bo og Cy". */
export function names(battle, ids) {
  const list = ids.map((id) => nameOf(battle, id));
  try {
    return new Intl.ListFormat(currentLanguage() === "da" ? "da" : "en-GB", { type: "conjunction" }).format(list);
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
    // The gain rule (docs/rules.md, who moved minds): the standings are the closing poll's,
    // the crown goes to the largest gain; say so, with the gain.
    const minds = battle.minds && battle.minds.battlers.find((m) => m.battler === winner);
    if (minds && revealedVote(battle)?.stance === "closing" && proposal.decided_by === "votes") {
      return t("The rules crown {name}: the largest gain, {gain}.", { name: nameOf(battle, winner), gain: signed(minds.won - minds.lost) });
    }
    return t("The rules crown {name}.", { name: nameOf(battle, winner) });
  }
  const text = plural(proposal.leaving.length, "The rules say {names} leaves.", "The rules say {names} leave.", {
    names: names(battle, proposal.leaving),
  });
  return proposal.decided_by === "engagement" ? `${text} ${t("(The tie was decided by engagement.)")}` : text;
}

/** A gain as the hall reads it: +2, 0, -1. */
export function signed(n) {
  return n > 0 ? `+${n}` : String(n);
}

/** Who in the hall sent what is shown (a challenge card, a question): their nickname, unless they sent it anonymously. */
export function fromHall(shown) {
  return shown.nickname ? t("From the hall: {name}", { name: shown.nickname }) : t("From the hall (anonymous)");
}

/** An approved question from a phone that the host put to the speaker (or the debate), as the
 * phone and the screen show it; ``textClass`` sizes its text (the screen's). */
export function questionCard(battle, textClass = "") {
  const question = battle.question;
  if (!question) return null;
  const heading = question.battler ? t("Question for {name}", { name: nameOf(battle, question.battler) }) : t("Question");
  return h(
    "div",
    { class: "question-card", dataset: { submission: question.submission } },
    h("span", { class: "challenge-label" }, heading),
    h("p", { class: `challenge-text${textClass}` }, question.text),
    h("p", { class: "from-hall" }, fromHall(question)),
  );
}
