// Who moved minds (docs/rules.md): the persuasion matrix as the results page, the poster and
// the screen's second beat show it. Counts only: the battle's `minds` and the export's
// `persuasion` never name a device.
import { nameOf, signed } from "./client/battle.js";
import { h } from "./client/dom.js";
import { t } from "./client/i18n.js";

/** Who moved the most minds (persuasion.most_minds): the most won, then the fewest lost. */
export function mostMinds(matrix) {
  if (!matrix) return [];
  const moved = matrix.battlers.filter((m) => m.won > 0);
  if (!moved.length) return [];
  const best = moved.reduce((a, b) => (b.won > a.won || (b.won === a.won && b.lost < a.lost) ? b : a));
  return moved.filter((m) => m.won === best.won && m.lost === best.lost);
}

/** "won 5 · lost 1" */
export function wonLost(minds) {
  return t("won {won} · lost {lost}", { won: minds.won, lost: minds.lost });
}

/** The devices counted apart, said so: "11 in both polls; 2 only in the opening, 3 only in the closing." */
export function apartText(matrix) {
  return t("{paired} in both polls; {before} only in the opening, {after} only in the closing.", {
    paired: matrix.paired,
    before: matrix.only_before,
    after: matrix.only_after,
  });
}

function percentOf(minds) {
  return minds.conversion === null || minds.conversion === undefined ? "–" : `${Math.round(minds.conversion * 100)} %`;
}

/** One matrix as a table: each battler's won, lost, held, conversion rate and gain. */
function mindsTable(table, caption, matrix, nameOf) {
  return [
    table(
      caption,
      [t("Battler"), t("Won"), t("Lost"), t("Held"), t("Conversion"), t("Gain")],
      matrix.battlers.map((m) => [nameOf(m.battler), String(m.won), String(m.lost), String(m.held), `${percentOf(m)} (${m.won}/${m.of})`, signed(m.gain)]),
    ),
    h("p", { class: "hint" }, apartText(matrix)),
  ];
}

/** The stance polls' totals: every battler and undecided, at the opening and at the closing. */
function stanceTable(table, battle) {
  const polls = [...battle.stances, ...battle.rounds.flatMap((round) => round.votes)].filter((vote) => vote.stance && vote.totals);
  if (!polls.length) return null;
  const label = (vote) => (vote.stance === "opening" ? t("Opening stance") : t("Closing stance"));
  const choices = polls[polls.length - 1].choices;
  return table(t("Stance polls"), [t("Choice"), ...polls.map(label)], choices.map((id) => [nameOf(battle, id), ...polls.map((vote) => String(vote.totals[id] || 0))]));
}

/** The results page's section: the stance polls, the evening's matrix, then round by round. */
export function mindsSection(table, battle, persuasion) {
  const polls = stanceTable(table, battle);
  if (!polls && !persuasion.length) return null;
  const name = (id) => nameOf(battle, id);
  const evening = persuasion.find((m) => m.round === null);
  const most = mostMinds(evening);
  return h(
    "section",
    { class: "panel", id: "minds" },
    h("h2", {}, t("Who moved minds")),
    most.length ? h("p", { class: "strong" }, t("Moved the most minds: {names}", { names: most.map((m) => `${name(m.battler)} (${wonLost(m)})`).join(", ") })) : null,
    polls,
    evening ? mindsTable(table, t("From the opening to the closing stance"), evening, name) : null,
    persuasion
      .filter((m) => m.round !== null)
      .map((m) => mindsTable(table, t("Round {n}: from the vote before", { n: m.round }), m, name)),
  );
}
