"""Who moved minds (docs/rules.md, "Who moved minds"): the persuasion matrix between two
polls, from counts only. Pure: no I/O.

A store counts the devices of two polls by the pair of their choices
(``Ballots.transitions``: ``(choice in the first, choice in the second) -> devices``, None
where a device took no part); this module turns those counts into each battler's figures.
No device, and no one device's choices, ever comes here or goes further.
"""

from __future__ import annotations

from itertools import pairwise

from battles.model import UNDECIDED, Battle, Flow, Minds, Persuasion, Vote

Transitions = dict[tuple[str | None, str | None], int]


def matrix(before: Vote, after: Vote, transitions: Transitions, round: int | None = None) -> Persuasion:
    """The figures of the battlers ``after`` offers between the polls ``before`` and ``after``.

    Of the devices in both polls (``paired``), a battler ``won`` those that chose someone
    else, or ``undecided``, first and them second; ``lost`` those that chose them first and
    someone else (or undecided) second; ``held`` those that chose them both times; ``of`` is
    how many did not choose them first (the conversion rate is ``won / of``). A device in
    only one of the polls is counted apart (``only_before``, ``only_after``), never in a
    battler's figures.
    """
    battlers = [choice for choice in after.choices if choice != UNDECIDED]
    paired = {pair: n for pair, n in transitions.items() if pair[0] is not None and pair[1] is not None and n > 0}
    figures = [_minds(battler, paired) for battler in battlers]
    flows = [Flow(before=str(first), after=str(second), devices=n) for (first, second), n in sorted(paired.items())]
    return Persuasion(
        before=before.id,
        after=after.id,
        round=round,
        battlers=figures,
        flows=flows,
        paired=sum(paired.values()),
        only_before=sum(n for (first, second), n in transitions.items() if first is not None and second is None),
        only_after=sum(n for (first, second), n in transitions.items() if first is None and second is not None),
    )


def _minds(battler: str, paired: dict[tuple[str | None, str | None], int]) -> Minds:
    minds = Minds(battler=battler)
    for (first, second), devices in paired.items():
        minds.won += devices if first != battler and second == battler else 0
        minds.lost += devices if first == battler and second != battler else 0
        minds.held += devices if first == battler and second == battler else 0
        minds.of += devices if first != battler else 0
    return minds


def most_minds(persuasion: Persuasion) -> list[str]:
    """Who moved the most minds: the most won, of them the fewest lost; all who tie on both
    (none when nobody won anyone)."""
    best = max(((m.won, -m.lost) for m in persuasion.battlers if m.won > 0), default=None)
    return [m.battler for m in persuasion.battlers if (m.won, -m.lost) == best]


def gains(persuasion: Persuasion, battlers: list[str]) -> dict[str, int]:
    """Each battler's gain, ``won - lost`` (the ``gain`` rule's figure): the change in how
    many of the devices of both polls chose them."""
    by_id = {m.battler: m.gain for m in persuasion.battlers}
    return {battler: by_id.get(battler, 0) for battler in battlers}


def stance_poll(battle: Battle, stance: str) -> Vote | None:
    """The evening's opening or closing stance poll that counts: the newest not voided,
    opened with open_stance or, under the ``gain`` rule, the final's vote."""
    polls = [*battle.stances, *(vote for rnd in battle.rounds for vote in rnd.votes)]
    counted = [vote for vote in polls if vote.stance == stance and vote.status in ("closed", "revealed")]
    return counted[-1] if counted else None


def stance_choices(battle: Battle) -> list[str]:
    """What a stance poll offers: every battler of the evening, eliminated ones too, and undecided."""
    return [*(b.id for b in battle.battlers), UNDECIDED]


def pairs(battle: Battle) -> list[tuple[Vote, Vote, int | None]]:
    """The pairs of polls that have figures: the opening and the closing stance poll
    (round None), and each round's vote with the vote of the round before it (round N),
    where both were counted "keep" votes (an ``out`` vote says who should leave, not whom
    a person backs). A round's vote here is its first counted, not a runoff."""
    found: list[tuple[Vote, Vote, int | None]] = []
    opening, closing = stance_poll(battle, "opening"), stance_poll(battle, "closing")
    if opening is not None and closing is not None:
        found.append((opening, closing, None))
    deciding = [_deciding(rnd.votes) for rnd in battle.rounds]
    for number, (earlier, later) in enumerate(pairwise(deciding), start=2):
        if earlier is not None and later is not None:
            found.append((earlier, later, number))
    return found


def _deciding(votes: list[Vote]) -> Vote | None:
    counted = [v for v in votes if not v.runoff and v.mode == "keep" and v.status in ("closed", "revealed")]
    return counted[0] if counted else None
