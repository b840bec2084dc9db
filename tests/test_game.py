"""The game core, rule by rule (docs/rules.md), in the manner of websockets' test_protocol.py.

Every test feeds host commands into ``battles.game`` and asserts the state and the
events that come out. There is no server and no clock: time is a value passed in
with each command. Commands are written as the wire messages of the host socket
and validated through ``commands.Command``, so the wire schema is exercised too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from battles import commands, game, model
from battles.errors import Fault, Refused
from battles.game import Context, Outcome
from battles.model import (
    Battle,
    BattleDraft,
    Battler,
    BattlerDraft,
    LogEntry,
    Proposal,
    Round,
    Rules,
    Shown,
    Submission,
    Timer,
)

T0 = 10_000_000  # an arbitrary "now" on the server's clock, in ms
SECOND = 1000

COMMAND: pydantic.TypeAdapter[commands.Command] = pydantic.TypeAdapter(commands.Command)

Message = str | dict[str, Any]


# --- helpers -------------------------------------------------------------------------


def command(message: Message) -> commands.Command:
    """A wire message (``"next"`` is short for ``{"type": "next"}``) as a validated command."""
    if isinstance(message, str):
        message = {"type": message}
    return COMMAND.validate_python(message)


def new_battle(n: int = 3, *, now: int = T0, **rules: Any) -> Battle:
    """A battle in the lobby with ``n`` battlers (b1..bn) and the given rules."""
    draft = BattleDraft(
        title="Aarhus 2079",
        topic="climate",
        scenario="The sea has risen; how does our region thrive?",
        rules=Rules(**rules),
        battlers=[BattlerDraft(name=f"Battler {i}", vision=f"Vision {i}") for i in range(1, n + 1)],
    )
    return game.create("AB12", draft, now)


def step(battle: Battle, message: Message, *, now: int = T0, **context: Any) -> Outcome:
    """Apply one command and check what every command must do: one log entry, version + 1."""
    outcome = game.apply(battle, command(message), Context(now_ms=now, **context))
    new = outcome.battle
    assert new.version == battle.version + 1
    assert new.log[:-1] == battle.log
    assert outcome.events == [new.log[-1]]
    entry = new.log[-1]
    assert (entry.at_ms, entry.actor, entry.action) == (
        now,
        context.get("actor", "host"),
        command(message).type,
    )
    return outcome


def play(battle: Battle, *messages: Message, now: int = T0, **context: Any) -> Battle:
    """Apply several commands at the same moment; return the final state."""
    for message in messages:
        battle = step(battle, message, now=now, **context).battle
    return battle


def refused(battle: Battle, message: Message, reason: str, *, now: int = T0, **context: Any) -> Refused:
    """Assert that a command is refused with ``reason`` and leaves its input untouched."""
    before = battle.model_dump()
    with pytest.raises(Refused) as info:
        game.apply(battle, command(message), Context(now_ms=now, **context))
    assert info.value.reason == reason
    assert battle.model_dump() == before
    return info.value


def to_vote(battle: Battle, *, now: int = T0, challenge: str | None = None) -> Battle:
    """Start the next round and hear every turn and the debate: the round waits for its vote."""
    battle = play(battle, {"type": "start_round", "challenge": challenge}, now=now)
    while battle.phase != "vote":
        battle = play(battle, "next", now=now)
    return battle


def vote(
    battle: Battle,
    totals: dict[str, int],
    *,
    now: int = T0,
    engagement: dict[str, dict[str, int]] | None = None,
) -> Battle:
    """Open, close and reveal a vote (or the pending runoff) with the store's ``totals``."""
    battle = play(battle, "open_vote", "close_vote", now=now)
    return play(
        battle,
        "reveal_results",
        now=now,
        totals=totals,
        ballots=sum(totals.values()),
        engagement=engagement or {},
    )


def confirm(battle: Battle, *picks: str, now: int = T0) -> Battle:
    return play(
        battle,
        {"type": "confirm_elimination", "battlers": list(picks) or None},
        now=now,
    )


def ids(battle: Battle) -> list[str]:
    return [b.id for b in battle.remaining]


def current(battle: Battle) -> Round:
    assert battle.round is not None
    return battle.round


def proposal_of(battle: Battle) -> Proposal:
    assert battle.round is not None and battle.round.proposal is not None
    return battle.round.proposal


def battler(battle: Battle, battler_id: str) -> Battler:
    found = battle.battler(battler_id)
    assert found is not None
    return found


def timer(battle: Battle) -> Timer:
    assert battle.timer is not None
    return battle.timer


def status(battle: Battle) -> dict[str, str]:
    return {b.id: b.status for b in battle.battlers}


# Builders for a small battle (3 battlers, final of 2) standing in each phase.
def _final_won() -> Battle:
    battle = confirm(vote(to_vote(new_battle()), {"b1": 5, "b2": 1, "b3": 3}))
    return confirm(vote(to_vote(battle), {"b1": 4, "b3": 7}))


PHASES: dict[str, Callable[[], Battle]] = {
    "lobby": lambda: new_battle(),
    "challenge": lambda: play(new_battle(), "start_round"),
    "turn": lambda: play(new_battle(), "start_round", "next"),
    "debate": lambda: play(new_battle(debate_seconds=60), "start_round", "next", "next", "next", "next"),
    "vote": lambda: to_vote(new_battle()),
    "vote_open": lambda: play(to_vote(new_battle()), "open_vote"),
    "vote_closed": lambda: play(to_vote(new_battle()), "open_vote", "close_vote"),
    "reveal": lambda: vote(to_vote(new_battle()), {"b1": 5, "b2": 1, "b3": 3}),
    "elimination": lambda: confirm(vote(to_vote(new_battle()), {"b1": 5, "b2": 1, "b3": 3})),
    "final": _final_won,
    "finished": lambda: play(new_battle(), "end_battle"),
}


def at(name: str) -> Battle:
    battle = PHASES[name]()
    assert battle.phase == name.split("_")[0]
    return battle


# --- creation and the wire schema ----------------------------------------------------


def test_create_opens_the_lobby_with_battlers_numbered_in_roster_order() -> None:
    battle = new_battle(3)
    assert battle.phase == "lobby"
    assert battle.version == 0
    assert [(b.id, b.name, b.status) for b in battle.battlers] == [
        ("b1", "Battler 1", "in"),
        ("b2", "Battler 2", "in"),
        ("b3", "Battler 3", "in"),
    ]
    assert battle.rounds == [] and battle.timer is None and battle.winner is None
    assert [(e.at_ms, e.actor, e.action) for e in battle.log] == [(T0, "host", "create")]


def test_rules_default_to_the_values_docs_rules_md_gives() -> None:
    rules = new_battle().rules
    assert (rules.turn_seconds, rules.debate_seconds, rules.vote_seconds, rules.runoff_seconds) == (90, 0, 45, 30)
    assert (
        rules.order,
        rules.vote_mode,
        rules.eliminations_per_round,
        rules.final_size,
    ) == ("roster", "keep", 1, 2)
    assert rules.ties == "runoff" and rules.live_totals is False
    assert rules.reactions == ["applause", "fire", "idea", "yawn"]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "launch_missiles"},
        {"type": "next", "extra": 1},
        {"type": "override_elimination", "battlers": ["b1"], "reason": "   "},
        {"type": "override_elimination", "battlers": [], "reason": "rude"},
        {"type": "override_elimination", "battlers": ["<script>"], "reason": "rude"},
        {"type": "confirm_elimination", "battlers": ["x1"]},
        {"type": "extend_timer", "seconds": 0},
        {"type": "void_vote"},
    ],
)
def test_the_wire_schema_rejects_malformed_commands(message: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        command(message)


def test_a_battle_round_trips_through_json_mid_game() -> None:
    battle = play(
        vote(to_vote(new_battle(4)), {"b1": 2, "b2": 2, "b3": 5, "b4": 6}),
        "open_vote",
        "pause_timer",
    )
    assert Battle.model_validate_json(battle.model_dump_json()) == battle


# --- phases ----------------------------------------------------------------------------


def test_start_round_opens_round_one_in_the_challenge_phase() -> None:
    outcome = step(new_battle(), {"type": "start_round", "challenge": "Water everywhere"})
    battle = outcome.battle
    assert battle.phase == "challenge"
    assert battle.round is not None
    assert (battle.round.number, battle.round.final, battle.round.order) == (
        1,
        False,
        ["b1", "b2", "b3"],
    )
    assert battle.round.challenge == "Water everywhere"
    assert outcome.events[0].details["round"] == 1
    assert battle.timer is None


def test_reveal_challenge_works_in_challenge_turns_and_debate() -> None:
    for name in ("challenge", "turn", "debate"):
        battle = play(at(name), {"type": "reveal_challenge", "text": "  A twist  "})
        assert battle.round is not None and battle.round.challenge == "A twist"
    for name in ("lobby", "vote", "reveal", "elimination", "finished"):
        refused(at(name), {"type": "reveal_challenge", "text": "A twist"}, "wrong_phase")


def test_next_goes_from_challenge_through_each_turn_in_order_to_the_vote() -> None:
    battle = play(new_battle(), "start_round")
    speakers = []
    for i in range(3):
        battle = play(battle, "next", now=T0 + i * 90 * SECOND)
        assert battle.phase == "turn"
        speakers.append(battle.speaker)
        assert battle.timer is not None and battle.timer.deadline_ms == T0 + (i + 1) * 90 * SECOND
    assert speakers == ["b1", "b2", "b3"]
    battle = play(battle, "next", now=T0 + 270 * SECOND)
    assert (battle.phase, battle.timer, battle.turn_index, battle.speaker) == (
        "vote",
        None,
        None,
        None,
    )
    assert battle.round is not None
    assert [(t.battler, t.started_ms, t.ended_ms, t.skipped) for t in battle.round.turns] == [
        ("b1", T0, T0 + 90 * SECOND, False),
        ("b2", T0 + 90 * SECOND, T0 + 180 * SECOND, False),
        ("b3", T0 + 180 * SECOND, T0 + 270 * SECOND, False),
    ]


def test_each_turn_keeps_the_speakers_reactions_when_it_ends() -> None:
    # The round's counts so far come in with the command that ends the turn (running.Runner, game.needs):
    # the speaker's count then is this turn's, since the debate comes after every turn.
    battle = play(new_battle(debate_seconds=60), "start_round", "next")
    assert current(battle).turns[-1].reactions is None  # still running
    battle = play(battle, "next", engagement={"b1": {"fire": 4, "yawn": 1}})
    battle = play(battle, "skip_turn", engagement={"b1": {"fire": 9}, "b2": {"idea": 2}})
    battle = play(battle, "next", engagement={"b1": {"fire": 9}, "b2": {"idea": 2}, "b3": {"applause": 3}})
    assert [(t.battler, t.reactions) for t in current(battle).turns] == [
        ("b1", {"fire": 4, "yawn": 1}),
        ("b2", {"idea": 2}),
        ("b3", {"applause": 3}),
    ]
    assert battle.phase == "debate"
    last = play(new_battle(), "start_round", "next", "next", "next")
    last = play(last, "open_vote", engagement={"b3": {"idea": 1}})
    assert current(last).turns[-1].reactions == {"idea": 1}
    assert current(play(new_battle(), "start_round", "next", "next")).turns[0].reactions == {}


def test_debate_follows_the_last_turn_only_when_debate_seconds_positive() -> None:
    battle = play(new_battle(debate_seconds=120), "start_round", "next", "next", "next")
    battle = play(battle, "next", now=T0 + 5 * SECOND)
    assert battle.phase == "debate"
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 125 * SECOND
    battle = play(battle, "next")
    assert (battle.phase, battle.timer) == ("vote", None)

    without = play(new_battle(debate_seconds=0), "start_round", "next", "next", "next", "next")
    assert without.phase == "vote"


def test_open_vote_from_the_last_turn_or_the_debate_ends_that_segment() -> None:
    last_turn = play(new_battle(), "start_round", "next", "next", "next")
    battle = play(last_turn, "open_vote", now=T0 + 7 * SECOND)
    assert battle.open_vote is not None and battle.phase == "vote"
    assert battle.round is not None and battle.round.turns[-1].ended_ms == T0 + 7 * SECOND
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 52 * SECOND

    battle = play(at("debate"), "open_vote")
    assert battle.open_vote is not None

    refused(play(new_battle(), "start_round", "next"), "open_vote", "wrong_phase")


def test_open_vote_takes_every_battler_of_the_round_for_vote_seconds() -> None:
    outcome = step(at("vote"), "open_vote", now=T0 + SECOND)
    battle = outcome.battle
    assert battle.open_vote is not None
    assert (battle.open_vote.id, battle.open_vote.choices, battle.open_vote.mode) == (
        "r1v1",
        ["b1", "b2", "b3"],
        "keep",
    )
    assert battle.open_vote.runoff is False
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 46 * SECOND
    assert outcome.events[0].details["seconds"] == 45


def test_a_round_holds_one_vote_at_a_time() -> None:
    refused(at("vote_open"), "open_vote", "vote_exists")
    refused(at("vote_closed"), "open_vote", "vote_exists")


def test_close_vote_closes_the_open_vote_and_stops_its_timer() -> None:
    battle = play(at("vote_open"), "close_vote", now=T0 + 3 * SECOND)
    assert battle.round is not None and battle.round.vote is not None
    assert (battle.round.vote.status, battle.round.vote.closed_ms) == (
        "closed",
        T0 + 3 * SECOND,
    )
    assert battle.phase == "vote" and battle.timer is None and battle.open_vote is None
    refused(battle, "close_vote", "vote_not_open")
    refused(at("vote"), "close_vote", "vote_not_open")


def test_reveal_results_needs_a_closed_vote() -> None:
    refused(at("vote_open"), "reveal_results", "vote_not_closed", totals={})
    refused(at("vote"), "reveal_results", "vote_not_closed", totals={})
    refused(at("reveal"), "reveal_results", "wrong_phase", totals={})


def test_reveal_records_the_totals_of_the_choices_and_proposes_who_leaves() -> None:
    battle = play(
        at("vote_closed"),
        "reveal_results",
        totals={"b1": 5, "b3": 3, "intruder": 99},
        ballots=8,
    )
    assert battle.phase == "reveal"
    assert battle.round is not None and battle.round.vote is not None
    assert battle.round.vote.status == "revealed"
    assert battle.round.vote.totals == {"b1": 5, "b2": 0, "b3": 3}
    assert battle.round.vote.ballots == 8
    assert battle.round.proposal is not None
    assert (battle.round.proposal.leaving, battle.round.proposal.method) == (
        ["b2"],
        "decided",
    )


def test_confirm_elimination_carries_out_the_proposal() -> None:
    outcome = step(at("reveal"), "confirm_elimination")
    battle = outcome.battle
    assert battle.phase == "elimination"
    assert status(battle) == {"b1": "in", "b2": "eliminated", "b3": "in"}
    assert battler(battle, "b2").eliminated_in_round == 1
    assert battle.round is not None and battle.round.eliminated == ["b2"]
    assert outcome.events[0].details["eliminated"] == ["b2"]


def test_confirm_elimination_may_name_the_proposal_but_nobody_else() -> None:
    assert confirm(at("reveal"), "b2").phase == "elimination"
    refused(
        at("reveal"),
        {"type": "confirm_elimination", "battlers": ["b1"]},
        "not_the_proposal",
    )


def test_after_an_elimination_the_next_round_starts_with_those_still_in() -> None:
    battle = play(at("elimination"), "start_round")
    assert battle.round is not None
    assert (battle.round.number, battle.round.order, battle.phase) == (
        2,
        ["b1", "b3"],
        "challenge",
    )


def test_a_round_is_the_final_when_the_remaining_are_at_most_final_size() -> None:
    battle = to_vote(new_battle(4, final_size=3))
    assert battle.round is not None and battle.round.final is False
    battle = to_vote(confirm(vote(battle, {"b1": 4, "b2": 3, "b3": 2, "b4": 1})))
    assert battle.round is not None and battle.round.final is True
    assert battle.round.order == ["b1", "b2", "b3"]


def test_a_roster_no_larger_than_final_size_goes_straight_to_the_final() -> None:
    battle = play(new_battle(2), "start_round")
    assert battle.round is not None and battle.round.final is True


def test_the_final_crowns_a_winner_and_end_battle_completes_it() -> None:
    battle = to_vote(at("elimination"))
    battle = confirm(vote(battle, {"b1": 4, "b3": 7}))
    assert (battle.phase, battle.winner) == ("final", "b3")
    assert status(battle) == {"b1": "eliminated", "b2": "eliminated", "b3": "winner"}
    assert battler(battle, "b1").eliminated_in_round == 2
    battle = play(battle, "end_battle")
    assert (battle.phase, battle.ended_reason, battle.winner) == (
        "finished",
        "completed",
        "b3",
    )


@pytest.mark.parametrize(
    "name",
    [
        "lobby",
        "vote",
        "vote_open",
        "vote_closed",
        "reveal",
        "elimination",
        "final",
        "finished",
    ],
)
def test_next_is_refused_where_it_does_not_fit(name: str) -> None:
    error = refused(at(name), "next", "wrong_phase")
    assert error.params == {"phase": name.split("_")[0]}


@pytest.mark.parametrize("name", ["challenge", "turn", "debate", "vote", "reveal", "final", "finished"])
def test_start_round_is_refused_outside_the_lobby_and_the_elimination(
    name: str,
) -> None:
    refused(at(name), "start_round", "wrong_phase")


def test_start_round_needs_two_battlers() -> None:
    refused(new_battle(1), "start_round", "too_few_battlers")


@pytest.mark.parametrize(
    "message",
    [
        "open_vote",
        "close_vote",
        "reveal_results",
        "confirm_elimination",
        "undo_elimination",
        "skip_turn",
    ],
)
def test_round_commands_are_refused_in_the_lobby(message: str) -> None:
    with pytest.raises(Refused):
        game.apply(new_battle(), command(message), Context(now_ms=T0, totals={}))


# --- presentation order ----------------------------------------------------------------


def test_roster_order_keeps_the_roster_every_round() -> None:
    battle = to_vote(new_battle(4))
    assert battle.round is not None and battle.round.order == ["b1", "b2", "b3", "b4"]
    assert battle.round.seed is None
    battle = to_vote(confirm(vote(battle, {"b1": 3, "b2": 1, "b3": 4, "b4": 5})))
    assert battle.round is not None and battle.round.order == ["b1", "b3", "b4"]


def test_rotating_order_shifts_by_one_each_round() -> None:
    battle = to_vote(new_battle(5, order="rotating"))
    assert battle.round is not None and battle.round.order == [
        "b1",
        "b2",
        "b3",
        "b4",
        "b5",
    ]
    battle = to_vote(confirm(vote(battle, {"b1": 5, "b2": 4, "b3": 3, "b4": 2, "b5": 1})))
    assert battle.round is not None and battle.round.order == ["b2", "b3", "b4", "b1"]
    assert [t.battler for t in battle.round.turns] == ["b2", "b3", "b4", "b1"]


def test_rotating_order_moves_everyone_up_one_place_when_the_opener_leaves() -> None:
    battle = to_vote(new_battle(5, order="rotating"))
    battle = to_vote(confirm(vote(battle, {"b1": 1, "b2": 4, "b3": 3, "b4": 2, "b5": 5})))
    # Round 1 spoke b1 b2 b3 b4 b5; b1 left. Shifted by one, b2 (second last time) opens.
    assert battle.round is not None and battle.round.order == ["b2", "b3", "b4", "b5"]


def test_random_order_is_drawn_from_the_context_seed_and_stored_in_the_round() -> None:
    outcome = step(new_battle(5, order="random"), "start_round", seed=1)
    rnd = outcome.battle.round
    assert rnd is not None and rnd.seed == 1
    assert sorted(rnd.order) == ["b1", "b2", "b3", "b4", "b5"]
    assert outcome.events[0].details["seed"] == 1
    assert outcome.events[0].details["order"] == rnd.order


def test_random_order_replays_the_same_with_the_same_seed() -> None:
    def replay(seed: int) -> list[str]:
        battle = play(new_battle(5, order="random"), "start_round", seed=seed)
        battle = play(battle, "next", "next", "next")
        return [t.battler for t in current(battle).turns]

    assert replay(4) == replay(4)
    assert replay(1) == replay(1)


def test_random_order_differs_with_another_seed() -> None:
    # Seeds 1 and 4 were checked to shuffle five battlers differently.
    orders = [current(play(new_battle(5, order="random"), "start_round", seed=seed)).order for seed in (1, 4)]
    assert orders[0] != orders[1]


# --- vote modes, eliminations per round, final size --------------------------------------


def test_keep_mode_the_fewest_votes_leave() -> None:
    battle = vote(to_vote(new_battle(4, vote_mode="keep")), {"b1": 9, "b2": 2, "b3": 7, "b4": 5})
    assert battle.round is not None and battle.round.vote is not None and battle.round.vote.mode == "keep"
    assert battle.round.proposal is not None and battle.round.proposal.leaving == ["b2"]


def test_out_mode_the_most_votes_leave() -> None:
    battle = vote(to_vote(new_battle(4, vote_mode="out")), {"b1": 9, "b2": 2, "b3": 7, "b4": 5})
    assert battle.round is not None and battle.round.vote is not None and battle.round.vote.mode == "out"
    assert battle.round.proposal is not None and battle.round.proposal.leaving == ["b1"]


def test_two_eliminations_per_round_remove_the_two_lowest() -> None:
    battle = vote(
        to_vote(new_battle(6, eliminations_per_round=2)),
        {"b1": 9, "b2": 2, "b3": 7, "b4": 5, "b5": 1, "b6": 8},
    )
    assert battle.round is not None and battle.round.proposal is not None
    assert sorted(battle.round.proposal.leaving) == ["b2", "b5"]
    battle = confirm(battle)
    assert ids(battle) == ["b1", "b3", "b4", "b6"]


def test_eliminations_never_cut_below_the_final_size() -> None:
    battle = vote(
        to_vote(new_battle(4, eliminations_per_round=2, final_size=3)),
        {"b1": 9, "b2": 2, "b3": 7, "b4": 1},
    )
    assert battle.round is not None and battle.round.proposal is not None
    assert battle.round.proposal.leaving == ["b4"]


def test_a_final_of_three_picks_one_winner_from_three() -> None:
    battle = to_vote(
        confirm(
            vote(
                to_vote(new_battle(5, eliminations_per_round=2, final_size=3)),
                {"b1": 9, "b2": 2, "b3": 7, "b4": 5, "b5": 1},
            )
        )
    )
    assert battle.round is not None and battle.round.final is True
    assert battle.round.order == ["b1", "b3", "b4"]
    battle = confirm(vote(battle, {"b1": 3, "b3": 2, "b4": 8}))
    assert battle.winner == "b4"
    assert status(battle) == {
        "b1": "eliminated",
        "b2": "eliminated",
        "b3": "eliminated",
        "b4": "winner",
        "b5": "eliminated",
    }


def test_the_final_vote_is_always_keep_and_crowns_the_most_votes() -> None:
    battle = to_vote(confirm(vote(to_vote(new_battle(3, vote_mode="out")), {"b1": 1, "b2": 9, "b3": 3})))
    battle = play(battle, "open_vote")
    assert battle.open_vote is not None and battle.open_vote.mode == "keep"
    battle = play(play(battle, "close_vote"), "reveal_results", totals={"b1": 10, "b3": 4})
    assert battle.round is not None and battle.round.proposal is not None
    assert battle.round.proposal.leaving == ["b3"]
    assert confirm(battle).winner == "b1"


# --- ties ---------------------------------------------------------------------------------


def test_tie_runoff_proposes_a_runoff_among_the_tied() -> None:
    battle = vote(to_vote(new_battle(4, ties="runoff")), {"b1": 9, "b2": 2, "b3": 2, "b4": 5})
    assert battle.round is not None and battle.round.proposal is not None
    proposal = battle.round.proposal
    assert (
        proposal.leaving,
        sorted(proposal.tied),
        proposal.need,
        proposal.method,
    ) == ([], ["b2", "b3"], 1, "runoff")
    refused(battle, "confirm_elimination", "runoff_pending")


def test_open_vote_from_the_reveal_opens_the_runoff_for_runoff_seconds() -> None:
    battle = vote(to_vote(new_battle(4, runoff_seconds=20)), {"b1": 9, "b2": 2, "b3": 2, "b4": 5})
    outcome = step(battle, "open_vote", now=T0 + SECOND)
    battle = outcome.battle
    assert battle.phase == "vote" and battle.open_vote is not None
    assert battle.open_vote.id == "r1v2"
    assert battle.open_vote.runoff is True
    assert sorted(battle.open_vote.choices) == ["b2", "b3"]
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 21 * SECOND
    assert outcome.events[0].details["runoff"] is True


def test_the_runoff_reveal_decides_who_leaves() -> None:
    battle = vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 2, "b4": 5})
    battle = vote(battle, {"b2": 6, "b3": 4, "b1": 50})
    assert battle.round is not None and battle.round.vote is not None
    assert battle.round.vote.totals == {"b2": 6, "b3": 4}
    proposal = battle.round.proposal
    assert proposal is not None
    assert (proposal.leaving, proposal.method, proposal.decided_by) == (
        ["b3"],
        "decided",
        "runoff",
    )
    assert ids(confirm(battle)) == ["b1", "b2", "b4"]


def test_a_runoff_that_ties_again_falls_back_to_the_host() -> None:
    battle = vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 2, "b4": 5})
    battle = vote(battle, {"b2": 5, "b3": 5})
    proposal = proposal_of(battle)
    assert (
        proposal.method,
        sorted(proposal.tied),
        proposal.need,
        proposal.decided_by,
    ) == ("host", ["b2", "b3"], 1, "runoff")
    battle = confirm(battle, "b3")
    assert status(battle) == {"b1": "in", "b2": "in", "b3": "eliminated", "b4": "in"}


def test_the_host_must_pick_the_right_number_from_the_tied() -> None:
    battle = vote(
        vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 2, "b4": 5}),
        {"b2": 5, "b3": 5},
    )
    error = refused(battle, {"type": "confirm_elimination", "battlers": ["b1"]}, "pick_from_tied")
    assert error.params == {"need": 1}
    refused(
        battle,
        {"type": "confirm_elimination", "battlers": ["b2", "b3"]},
        "pick_from_tied",
    )
    refused(battle, "confirm_elimination", "pick_from_tied")


def test_tie_rule_host_asks_the_host_straight_away() -> None:
    battle = vote(to_vote(new_battle(4, ties="host")), {"b1": 9, "b2": 2, "b3": 2, "b4": 5})
    proposal = proposal_of(battle)
    assert (proposal.method, sorted(proposal.tied), proposal.need) == (
        "host",
        ["b2", "b3"],
        1,
    )
    refused(battle, "open_vote", "wrong_phase")
    assert ids(confirm(battle, "b2")) == ["b1", "b3", "b4"]


def test_tie_rule_engagement_the_lower_engagement_leaves() -> None:
    engagement = {
        "b2": {"applause": 10, "yawn": 2},
        "b3": {"applause": 9, "fire": 1, "yawn": 4},
    }
    battle = vote(
        to_vote(new_battle(4, ties="engagement")),
        {"b1": 9, "b2": 2, "b3": 2, "b4": 5},
        engagement=engagement,
    )
    proposal = proposal_of(battle)
    # b2 scores 10 - 2 = 8, b3 scores 9 + 1 - 4 = 6: b3 leaves.
    assert (proposal.leaving, proposal.method, proposal.decided_by) == (
        ["b3"],
        "decided",
        "engagement",
    )
    assert current(battle).engagement["b2"] == {"applause": 10, "yawn": 2}


def test_tie_rule_engagement_applies_in_out_mode_too() -> None:
    engagement = {"b1": {"applause": 1}, "b3": {"applause": 3}}
    battle = vote(
        to_vote(new_battle(4, ties="engagement", vote_mode="out")),
        {"b1": 6, "b2": 2, "b3": 6, "b4": 5},
        engagement=engagement,
    )
    assert proposal_of(battle).leaving == ["b1"]


def test_tie_rule_engagement_with_equal_engagement_falls_back_to_the_host() -> None:
    engagement = {"b2": {"applause": 3}, "b3": {"fire": 3}}
    battle = vote(
        to_vote(new_battle(4, ties="engagement")),
        {"b1": 9, "b2": 2, "b3": 2, "b4": 5},
        engagement=engagement,
    )
    proposal = proposal_of(battle)
    assert (
        proposal.method,
        sorted(proposal.tied),
        proposal.need,
        proposal.leaving,
    ) == ("host", ["b2", "b3"], 1, [])
    assert ids(confirm(battle, "b2")) == ["b1", "b3", "b4"]


def test_a_tie_at_the_cut_with_two_leaving_runs_off_only_the_tied() -> None:
    battle = vote(
        to_vote(new_battle(5, eliminations_per_round=2)),
        {"b1": 9, "b2": 1, "b3": 4, "b4": 4, "b5": 8},
    )
    proposal = proposal_of(battle)
    assert (
        proposal.leaving,
        sorted(proposal.tied),
        proposal.need,
        proposal.method,
    ) == (["b2"], ["b3", "b4"], 1, "runoff")
    battle = play(battle, "open_vote")
    assert battle.open_vote is not None and sorted(battle.open_vote.choices) == [
        "b3",
        "b4",
    ]
    battle = play(play(battle, "close_vote"), "reveal_results", totals={"b3": 7, "b4": 2})
    assert sorted(proposal_of(battle).leaving) == ["b2", "b4"]
    battle = confirm(battle)
    assert sorted(current(battle).eliminated) == ["b2", "b4"]
    assert ids(battle) == ["b1", "b3", "b5"]


def test_a_tie_at_the_cut_with_two_leaving_under_host_rule_asks_for_one_pick() -> None:
    battle = vote(
        to_vote(new_battle(5, eliminations_per_round=2, ties="host")),
        {"b1": 9, "b2": 1, "b3": 4, "b4": 4, "b5": 8},
    )
    refused(
        battle,
        {"type": "confirm_elimination", "battlers": ["b2", "b3"]},
        "pick_from_tied",
    )
    battle = confirm(battle, "b3")
    assert sorted(current(battle).eliminated) == ["b2", "b3"]


def test_two_tied_for_the_two_places_out_is_no_tie() -> None:
    battle = vote(
        to_vote(new_battle(5, eliminations_per_round=2)),
        {"b1": 9, "b2": 3, "b3": 3, "b4": 6, "b5": 8},
    )
    assert proposal_of(battle).method == "decided"
    assert sorted(proposal_of(battle).leaving) == ["b2", "b3"]


def test_a_tied_final_goes_to_a_runoff_and_then_the_host() -> None:
    battle = to_vote(at("elimination"))
    battle = vote(battle, {"b1": 5, "b3": 5})
    proposal = proposal_of(battle)
    assert (proposal.method, proposal.need) == ("runoff", 1)
    battle = vote(battle, {"b1": 8, "b3": 8})
    assert proposal_of(battle).method == "host"
    battle = confirm(battle, "b1")
    assert (battle.phase, battle.winner) == ("final", "b3")


# --- timers ----------------------------------------------------------------------------


def test_a_turn_timer_runs_for_turn_seconds() -> None:
    battle = play(new_battle(turn_seconds=60), "start_round", "next", now=T0)
    assert battle.timer is not None
    assert (
        battle.timer.duration_ms,
        battle.timer.deadline_ms,
        battle.timer.paused,
    ) == (60_000, T0 + 60_000, False)


def test_pause_stores_the_remaining_time_and_clears_the_deadline() -> None:
    outcome = step(at("turn"), "pause_timer", now=T0 + 30 * SECOND)
    paused = timer(outcome.battle)
    assert (paused.deadline_ms, paused.paused_remaining_ms, paused.paused) == (
        None,
        60_000,
        True,
    )
    assert outcome.events[0].details == {"remaining_ms": 60_000}


def test_resume_sets_the_deadline_to_now_plus_the_remaining_time() -> None:
    battle = play(at("turn"), "pause_timer", now=T0 + 30 * SECOND)
    battle = play(battle, "resume_timer", now=T0 + 500 * SECOND)
    assert battle.timer is not None
    assert (battle.timer.deadline_ms, battle.timer.paused_remaining_ms) == (
        T0 + 560 * SECOND,
        None,
    )


def test_extend_a_running_timer_moves_its_deadline() -> None:
    battle = play(at("turn"), {"type": "extend_timer", "seconds": 15}, now=T0 + 10 * SECOND)
    assert battle.timer is not None
    assert (battle.timer.deadline_ms, battle.timer.duration_ms) == (
        T0 + 105 * SECOND,
        90_000,
    )


def test_extend_defaults_to_thirty_seconds() -> None:
    battle = play(at("turn"), "extend_timer")
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 120 * SECOND


def test_extend_a_paused_timer_adds_to_the_remaining_time() -> None:
    battle = play(at("turn"), "pause_timer", now=T0 + 80 * SECOND)
    battle = play(battle, {"type": "extend_timer", "seconds": 20}, now=T0 + 200 * SECOND)
    assert battle.timer is not None
    assert (battle.timer.deadline_ms, battle.timer.paused_remaining_ms) == (
        None,
        30_000,
    )
    battle = play(battle, "resume_timer", now=T0 + 300 * SECOND)
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 330 * SECOND


def test_extend_a_turn_in_overtime_counts_the_extra_time_from_now() -> None:
    battle = play(at("turn"), {"type": "extend_timer", "seconds": 30}, now=T0 + 100 * SECOND)
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 130 * SECOND


def test_pause_a_turn_in_overtime_stores_no_negative_time() -> None:
    battle = play(at("turn"), "pause_timer", now=T0 + 100 * SECOND)
    assert battle.timer is not None and battle.timer.paused_remaining_ms == 0


def test_reset_a_running_timer_restarts_its_full_duration_from_now() -> None:
    battle = play(at("turn"), "reset_timer", now=T0 + 70 * SECOND)
    assert battle.timer is not None
    assert (battle.timer.deadline_ms, battle.timer.paused) == (T0 + 160 * SECOND, False)


def test_reset_a_paused_timer_restores_its_full_duration_and_stays_paused() -> None:
    battle = play(at("turn"), "pause_timer", now=T0 + 70 * SECOND)
    battle = play(battle, "reset_timer", now=T0 + 80 * SECOND)
    assert battle.timer is not None
    assert (battle.timer.deadline_ms, battle.timer.paused_remaining_ms) == (
        None,
        90_000,
    )


def test_reset_after_an_extension_restarts_from_the_rule_length() -> None:
    battle = play(at("turn"), {"type": "extend_timer", "seconds": 60}, now=T0 + 10 * SECOND)
    battle = play(battle, "reset_timer", now=T0 + 20 * SECOND)
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 110 * SECOND


def test_pause_twice_is_refused() -> None:
    refused(play(at("turn"), "pause_timer"), "pause_timer", "timer_paused")


def test_resume_while_running_is_refused() -> None:
    refused(at("turn"), "resume_timer", "timer_running")


@pytest.mark.parametrize("message", ["pause_timer", "resume_timer", "extend_timer", "reset_timer"])
@pytest.mark.parametrize("name", ["lobby", "challenge", "reveal", "elimination", "final", "finished"])
def test_timer_commands_are_refused_where_no_timer_runs(message: str, name: str) -> None:
    refused(at(name), message, "wrong_phase")


@pytest.mark.parametrize("message", ["pause_timer", "resume_timer", "extend_timer", "reset_timer"])
@pytest.mark.parametrize("name", ["vote", "vote_closed"])
def test_timer_commands_are_refused_in_the_vote_phase_without_an_open_vote(message: str, name: str) -> None:
    refused(at(name), message, "vote_not_open")


def test_timer_commands_are_refused_on_a_vote_past_its_deadline() -> None:
    battle = at("vote_open")
    refused(battle, "extend_timer", "vote_not_open", now=T0 + 45 * SECOND)
    refused(battle, "pause_timer", "vote_not_open", now=T0 + 45 * SECOND)


def test_the_debate_and_the_vote_timers_can_be_paused_and_resumed() -> None:
    for name, seconds in (("debate", 60), ("vote_open", 45)):
        battle = play(at(name), "pause_timer", now=T0 + 10 * SECOND)
        assert battle.timer is not None and battle.timer.paused_remaining_ms == (seconds - 10) * SECOND
        battle = play(battle, "resume_timer", now=T0 + 100 * SECOND)
        assert battle.timer is not None and battle.timer.deadline_ms == T0 + (90 + seconds) * SECOND


def test_a_vote_is_due_at_its_deadline_and_tick_closes_it_exactly_once() -> None:
    battle = at("vote_open")
    deadline = T0 + 45 * SECOND
    assert not game.due(battle, deadline - 1)
    assert game.tick(battle, deadline - 1) is None
    assert game.due(battle, deadline)
    outcome = game.tick(battle, deadline)
    assert outcome is not None
    closed = outcome.battle
    assert closed.round is not None and closed.round.vote is not None
    assert (closed.round.vote.status, closed.round.vote.closed_ms) == (
        "closed",
        deadline,
    )
    assert [(e.at_ms, e.actor, e.action) for e in outcome.events] == [(deadline, "timer", "close_vote")]
    assert closed.version == battle.version + 1
    assert not game.due(closed, deadline + 1)
    assert game.tick(closed, deadline + 1) is None


def test_a_late_tick_still_closes_the_vote() -> None:
    outcome = game.tick(at("vote_open"), T0 + 3600 * SECOND)
    assert outcome is not None and outcome.battle.open_vote is None


def test_a_paused_vote_is_never_due() -> None:
    battle = play(at("vote_open"), "pause_timer", now=T0 + 10 * SECOND)
    assert not game.due(battle, T0 + 10_000 * SECOND)
    assert game.tick(battle, T0 + 10_000 * SECOND) is None


@pytest.mark.parametrize("name", ["lobby", "turn", "debate", "vote", "vote_closed", "reveal", "final"])
def test_nothing_but_an_open_vote_is_due(name: str) -> None:
    battle = at(name)
    assert not game.due(battle, T0 + 10_000 * SECOND)
    assert game.next_deadline(battle) is None


def test_next_deadline_follows_pause_resume_and_extend() -> None:
    battle = at("vote_open")
    assert game.next_deadline(battle) == T0 + 45 * SECOND
    battle = play(battle, "pause_timer", now=T0 + 5 * SECOND)
    assert game.next_deadline(battle) is None
    battle = play(battle, "resume_timer", now=T0 + 60 * SECOND)
    assert game.next_deadline(battle) == T0 + 100 * SECOND
    battle = play(battle, {"type": "extend_timer", "seconds": 10}, now=T0 + 61 * SECOND)
    assert game.next_deadline(battle) == T0 + 110 * SECOND
    assert game.next_deadline(play(battle, "close_vote")) is None


# --- void --------------------------------------------------------------------------------


def test_void_an_open_vote_logs_the_reason_and_a_new_vote_can_open() -> None:
    outcome = step(
        at("vote_open"),
        {"type": "void_vote", "reason": "wifi died"},
        now=T0 + 5 * SECOND,
    )
    battle = outcome.battle
    assert outcome.events[0].details == {"vote_id": "r1v1", "reason": "wifi died"}
    assert (battle.phase, battle.timer, battle.open_vote) == ("vote", None, None)
    voided = current(battle).votes[0]
    assert (voided.status, voided.void_reason, voided.closed_ms) == (
        "voided",
        "wifi died",
        T0 + 5 * SECOND,
    )
    assert game.ballot_gate(battle) is None
    battle = play(battle, "open_vote", now=T0 + 6 * SECOND)
    assert battle.open_vote is not None and battle.open_vote.id == "r1v2"
    assert [v.status for v in current(battle).votes] == ["voided", "open"]


def test_void_a_closed_vote_keeps_its_closing_time() -> None:
    battle = play(at("vote_open"), "close_vote", now=T0 + 2 * SECOND)
    battle = play(battle, {"type": "void_vote", "reason": "ballot stuffing"}, now=T0 + 9 * SECOND)
    voided = current(battle).votes[0]
    assert (voided.status, voided.closed_ms, voided.void_reason) == (
        "voided",
        T0 + 2 * SECOND,
        "ballot stuffing",
    )
    assert battle.phase == "vote"
    assert play(battle, "open_vote").open_vote is not None


def test_the_reveal_of_a_voided_vote_is_refused() -> None:
    battle = play(at("vote_closed"), {"type": "void_vote", "reason": "wrong list"})
    refused(battle, "reveal_results", "vote_not_closed", totals={"b1": 1})


def test_void_a_runoff_goes_back_to_the_reveal_with_the_runoff_still_pending() -> None:
    battle = vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 2, "b4": 5})
    battle = play(battle, "open_vote", {"type": "void_vote", "reason": "screen froze"})
    assert (battle.phase, battle.timer) == ("reveal", None)
    assert battle.round is not None and battle.round.proposal is not None
    assert battle.round.proposal.method == "runoff"
    assert [(v.id, v.status) for v in battle.round.votes] == [
        ("r1v1", "revealed"),
        ("r1v2", "voided"),
    ]
    refused(battle, "reveal_results", "wrong_phase", totals={})
    battle = play(battle, "open_vote")
    assert battle.open_vote is not None and battle.open_vote.runoff and battle.open_vote.id == "r1v3"


@pytest.mark.parametrize("name", ["vote", "lobby", "turn", "reveal", "elimination"])
def test_void_is_refused_without_a_vote_to_void(name: str) -> None:
    battle = at(name)
    reason = "no_vote" if name == "vote" else "wrong_phase"
    refused(battle, {"type": "void_vote", "reason": "oops"}, reason)


# --- override and undo ------------------------------------------------------------------


def test_override_eliminates_the_named_battlers_and_logs_the_reason() -> None:
    battle = vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 3, "b4": 5})
    outcome = step(
        battle,
        {
            "type": "override_elimination",
            "battlers": ["b4"],
            "reason": "broke the rules",
        },
    )
    battle = outcome.battle
    assert outcome.events[0].details["reason"] == "broke the rules"
    assert outcome.events[0].details["eliminated"] == ["b4"]
    assert battle.round is not None and battle.round.override_reason == "broke the rules"
    assert battle.round.eliminated == ["b4"]
    assert status(battle) == {"b1": "in", "b2": "in", "b3": "in", "b4": "eliminated"}
    assert battle.phase == "elimination"


def test_override_may_settle_a_pending_runoff() -> None:
    battle = vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 2, "b4": 5})
    battle = play(
        battle,
        {
            "type": "override_elimination",
            "battlers": ["b2"],
            "reason": "no time for a runoff",
        },
    )
    assert ids(battle) == ["b1", "b3", "b4"]


def test_override_of_an_unknown_or_already_eliminated_battler_is_refused() -> None:
    refused(
        at("reveal"),
        {"type": "override_elimination", "battlers": ["b9"], "reason": "x"},
        "unknown_battler",
    )
    battle = vote(
        to_vote(confirm(vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 3, "b4": 5}))),
        {"b1": 9, "b3": 3, "b4": 5},
    )
    refused(
        battle,
        {"type": "override_elimination", "battlers": ["b2"], "reason": "again"},
        "unknown_battler",
    )


def test_override_that_leaves_fewer_than_two_in_a_round_is_refused() -> None:
    battle = vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 3, "b4": 5})
    refused(
        battle,
        {"type": "override_elimination", "battlers": ["b1", "b2", "b3"], "reason": "x"},
        "bad_override",
    )
    assert (
        play(
            battle,
            {"type": "override_elimination", "battlers": ["b1", "b2"], "reason": "x"},
        ).phase
        == "elimination"
    )


def test_override_in_the_final_must_leave_exactly_one_winner() -> None:
    battle = vote(to_vote(new_battle(3, final_size=3)), {"b1": 9, "b2": 2, "b3": 3})
    refused(
        battle,
        {"type": "override_elimination", "battlers": ["b1"], "reason": "x"},
        "bad_override",
    )
    refused(
        battle,
        {"type": "override_elimination", "battlers": ["b1", "b2", "b3"], "reason": "x"},
        "bad_override",
    )
    battle = play(
        battle,
        {
            "type": "override_elimination",
            "battlers": ["b1", "b3"],
            "reason": "jury decision",
        },
    )
    assert (battle.phase, battle.winner) == ("final", "b2")
    assert battle.round is not None and battle.round.override_reason == "jury decision"


@pytest.mark.parametrize("name", ["vote_closed", "elimination", "lobby"])
def test_override_is_refused_outside_the_reveal(name: str) -> None:
    refused(
        at(name),
        {"type": "override_elimination", "battlers": ["b1"], "reason": "x"},
        "wrong_phase",
    )


def test_undo_puts_the_eliminated_back_in_and_returns_to_the_reveal() -> None:
    battle = at("elimination")
    outcome = step(battle, "undo_elimination")
    undone = outcome.battle
    assert undone.phase == "reveal"
    assert status(undone) == {"b1": "in", "b2": "in", "b3": "in"}
    assert battler(undone, "b2").eliminated_in_round is None
    assert undone.round is not None and undone.round.eliminated == []
    assert outcome.events[0].details == {"round": 1, "restored": ["b2"]}
    # The proposal still stands: the host can confirm again, or override.
    assert play(undone, "confirm_elimination").phase == "elimination"


def test_undo_of_an_override_clears_its_reason() -> None:
    battle = play(
        at("reveal"),
        {"type": "override_elimination", "battlers": ["b1"], "reason": "x"},
        "undo_elimination",
    )
    assert battle.round is not None and battle.round.override_reason is None
    assert status(battle) == {"b1": "in", "b2": "in", "b3": "in"}


def test_undo_of_the_final_removes_the_winner() -> None:
    battle = play(at("final"), "undo_elimination")
    assert (battle.phase, battle.winner) == ("reveal", None)
    assert status(battle) == {"b1": "in", "b2": "eliminated", "b3": "in"}


@pytest.mark.parametrize("name", ["lobby", "challenge", "reveal", "finished"])
def test_undo_is_refused_without_an_elimination_to_undo(name: str) -> None:
    refused(at(name), "undo_elimination", "wrong_phase")


def test_undo_is_refused_once_the_next_round_started() -> None:
    refused(play(at("elimination"), "start_round"), "undo_elimination", "wrong_phase")


# --- skip --------------------------------------------------------------------------------


def test_skip_turn_marks_the_turn_skipped_and_brings_up_the_next_speaker() -> None:
    outcome = step(at("turn"), "skip_turn", now=T0 + 4 * SECOND)
    battle = outcome.battle
    assert battle.speaker == "b2"
    assert battle.round is not None
    assert [(t.battler, t.skipped, t.ended_ms) for t in battle.round.turns] == [
        ("b1", True, T0 + 4 * SECOND),
        ("b2", False, None),
    ]
    assert battle.timer is not None and battle.timer.deadline_ms == T0 + 94 * SECOND
    assert outcome.events[0].details == {
        "battler": "b1",
        "skipped": True,
        "next_phase": "turn",
    }


def test_skip_the_last_turn_goes_on_to_the_vote() -> None:
    battle = play(at("turn"), "next", "next", "skip_turn")
    assert battle.phase == "vote"
    assert [t.skipped for t in current(battle).turns] == [False, False, True]


@pytest.mark.parametrize("name", ["lobby", "challenge", "debate", "vote_open"])
def test_skip_turn_is_refused_outside_a_turn(name: str) -> None:
    refused(at(name), "skip_turn", "wrong_phase")


# --- roster edits ------------------------------------------------------------------------


def test_add_battler_in_the_lobby_takes_the_next_number() -> None:
    outcome = step(
        new_battle(2),
        {
            "type": "add_battler",
            "name": " Ida ",
            "vision": "Floating farms",
            "affiliation": "DTU",
        },
    )
    battle = outcome.battle
    assert [(b.id, b.name) for b in battle.battlers] == [
        ("b1", "Battler 1"),
        ("b2", "Battler 2"),
        ("b3", "Ida"),
    ]
    assert outcome.events[0].details["battler"]["vision"] == "Floating farms"


def test_edit_battler_in_the_lobby_changes_only_the_given_fields() -> None:
    outcome = step(new_battle(2), {"type": "edit_battler", "battler": "b2", "vision": "Sponge city"})
    assert battler(outcome.battle, "b2").model_dump() == {
        "id": "b2",
        "name": "Battler 2",
        "vision": "Sponge city",
        "affiliation": "",
        "status": "in",
        "eliminated_in_round": None,
        "versions": [],
        "link_generation": 0,
    }
    assert outcome.events[0].details == {
        "battler": "b2",
        "changes": {"vision": "Sponge city"},
    }


def test_remove_battler_in_the_lobby() -> None:
    battle = play(new_battle(3), {"type": "remove_battler", "battler": "b2"})
    assert [b.id for b in battle.battlers] == ["b1", "b3"]
    battle = play(battle, {"type": "add_battler", "name": "New", "vision": "Newer"})
    assert [b.id for b in battle.battlers] == ["b1", "b3", "b4"]


def test_a_removed_battlers_id_is_never_handed_out_again() -> None:
    battle = play(new_battle(3), {"type": "remove_battler", "battler": "b3"})
    battle = play(battle, {"type": "add_battler", "name": "New", "vision": "Newer"})
    assert [b.id for b in battle.battlers] == ["b1", "b2", "b4"]


def test_edit_or_remove_an_unknown_battler_is_refused() -> None:
    refused(
        new_battle(2),
        {"type": "edit_battler", "battler": "b7", "name": "x"},
        "unknown_battler",
    )
    refused(new_battle(2), {"type": "remove_battler", "battler": "b7"}, "unknown_battler")


def test_edit_battle_changes_the_texts_and_the_rules_in_the_lobby() -> None:
    rules = {"turn_seconds": 60, "order": "random", "vote_mode": "out", "ties": "host"}
    battle = play(
        new_battle(3),
        {
            "type": "edit_battle",
            "title": "Copenhagen",
            "language": "da",
            "rules": rules,
        },
    )
    assert (battle.title, battle.language, battle.topic) == (
        "Copenhagen",
        "da",
        "climate",
    )
    assert (
        battle.rules.turn_seconds,
        battle.rules.order,
        battle.rules.vote_mode,
        battle.rules.ties,
    ) == (60, "random", "out", "host")
    assert timer(play(battle, "start_round", "next")).deadline_ms == T0 + 60 * SECOND


def test_edit_battle_with_some_rules_keeps_the_others() -> None:
    # docs/protocol.md's own example: the rules not named keep their current values.
    battle = new_battle(3, vote_seconds=120, debate_seconds=30, reactions=["fire"])
    outcome = step(battle, {"type": "edit_battle", "rules": {"turn_seconds": 120, "ties": "host"}})
    expected = battle.rules.model_copy(update={"turn_seconds": 120, "ties": "host"})
    assert outcome.battle.rules == expected
    assert outcome.events[0].details == {"changes": {"rules": {"turn_seconds": 120, "ties": "host"}}}


@pytest.mark.parametrize(
    "rules",
    [{"turn_seconds": None}, {"turn_seconds": 4}, {"ties": "coin"}, {"reactions": ["boo"]}, {"unknown": 1}],
)
def test_edit_battle_with_a_bad_rule_is_refused_by_the_schema(rules: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        command({"type": "edit_battle", "rules": rules})


@pytest.mark.parametrize(
    "message",
    [
        {"type": "add_battler", "name": "Late", "vision": "Too late"},
        {"type": "edit_battler", "battler": "b1", "name": "Renamed"},
        {"type": "remove_battler", "battler": "b1"},
        {"type": "edit_battle", "rules": {"final_size": 3}},
        {"type": "edit_battle", "title": "Renamed"},
    ],
)
@pytest.mark.parametrize("name", ["challenge", "turn", "vote_open", "elimination", "finished"])
def test_roster_and_battle_edits_are_refused_once_round_one_started(message: dict[str, Any], name: str) -> None:
    refused(at(name), message, "wrong_phase")


def test_a_twenty_fifth_battler_is_refused() -> None:
    battle = new_battle(24)
    error = refused(
        battle,
        {"type": "add_battler", "name": "One more", "vision": "Crowded"},
        "too_many_battlers",
    )
    assert error.params == {"most": 24}
    with pytest.raises(pydantic.ValidationError):
        BattleDraft(
            title="x",
            battlers=[BattlerDraft(name=f"n{i}", vision="v") for i in range(25)],
        )


# --- bounds: what one battle can grow to (docs/security.md, "Bounds of one battle") --------


def with_log_of(battle: Battle, entries: int) -> Battle:
    """The battle with its log padded to ``entries`` entries, as a long evening leaves it."""
    padding = [LogEntry(at_ms=T0, actor="cohost", action="pause_timer")] * (entries - len(battle.log))
    return battle.model_copy(update={"log": battle.log + padding})


def test_the_log_takes_commands_up_to_its_bound_and_refuses_the_next() -> None:
    battle = play(with_log_of(at("turn"), game.MAX_LOG_ENTRIES - 1), "pause_timer")
    assert len(battle.log) == game.MAX_LOG_ENTRIES
    error = refused(battle, "resume_timer", "limit_reached")
    assert error.params == {"limit": "log_entries", "most": game.MAX_LOG_ENTRIES}


def test_a_full_log_still_closes_the_vote_and_ends_the_battle() -> None:
    battle = with_log_of(at("vote_open"), game.MAX_LOG_ENTRIES)
    refused(battle, "pause_timer", "limit_reached")
    closed = play(battle, "close_vote")
    refused(closed, "reveal_results", "limit_reached", totals={"b1": 1}, ballots=1)
    ended = play(closed, "end_battle", totals={"b1": 1}, ballots=1)
    assert ended.phase == "finished" and len(ended.log) == game.MAX_LOG_ENTRIES + 2
    # The timer closes a vote whose time is up, however long the log.
    outcome = game.tick(battle, T0 + 3600 * SECOND)
    assert outcome is not None and outcome.battle.phase == "vote"


@pytest.mark.parametrize(
    "edit",
    [
        {"type": "edit_battle", "topic": "water"},
        {"type": "edit_battler", "battler": "b1", "name": "Renamed"},
        {"type": "add_battler", "name": "One more", "vision": "More"},
    ],
)
def test_lobby_edits_stop_at_their_bound(edit: dict[str, Any]) -> None:
    battle = new_battle(2)
    for n in range(game.MAX_LOBBY_EDITS - 1):
        if n % 2:
            battle = play(battle, {"type": "edit_battle", "topic": f"topic {n}"})
        else:
            battle = play(battle, {"type": "edit_battler", "battler": "b1", "vision": f"v{n}"})
    battle = play(battle, edit)  # the last one within the bound
    error = refused(battle, edit, "limit_reached")
    assert error.params == {"limit": "lobby_edits", "most": game.MAX_LOBBY_EDITS}
    refused(battle, {"type": "remove_battler", "battler": "b1"}, "limit_reached")
    assert play(battle, "start_round").phase == "challenge", "the show goes on"


def test_challenge_cards_stop_at_their_bound_per_round() -> None:
    battle = at("challenge")
    for n in range(game.MAX_CHALLENGE_CARDS):
        battle = play(battle, {"type": "reveal_challenge", "text": f"Card {n}"})
    error = refused(battle, {"type": "reveal_challenge", "text": "One more"}, "limit_reached")
    assert error.params == {"limit": "challenge_cards", "most": game.MAX_CHALLENGE_CARDS}
    # The next round has cards of its own.
    battle = confirm(vote(to_vote_from_here(battle), {"b1": 5, "b2": 1, "b3": 3}))
    battle = play(battle, "start_round", {"type": "reveal_challenge", "text": "Round two"})
    assert current(battle).challenge == "Round two"


def to_vote_from_here(battle: Battle) -> Battle:
    while battle.phase != "vote":
        battle = play(battle, "next")
    return battle


def test_votes_stop_at_their_bound_per_round() -> None:
    battle = at("vote")
    for n in range(game.MAX_VOTES_PER_ROUND - 1):
        battle = play(battle, "open_vote", {"type": "void_vote", "reason": f"Void {n}"})
    battle = play(battle, "open_vote")  # the last vote within the bound
    assert len(current(battle).votes) == game.MAX_VOTES_PER_ROUND
    battle = play(battle, {"type": "void_vote", "reason": "Once more"})
    error = refused(battle, "open_vote", "limit_reached")
    assert error.params == {"limit": "votes", "most": game.MAX_VOTES_PER_ROUND}


# --- end ---------------------------------------------------------------------------------


def test_end_battle_in_the_middle_of_a_vote_closes_and_counts_the_open_vote() -> None:
    outcome = step(
        at("vote_open"),
        {"type": "end_battle", "reason": "fire alarm"},
        now=T0 + 8 * SECOND,
        totals={"b1": 2, "b3": 1, "b9": 4},
        ballots=3,
        digest="3f9a-1c02-77be-0d41",
    )
    battle = outcome.battle
    assert (battle.phase, battle.ended_reason, battle.timer, battle.winner) == (
        "finished",
        "fire alarm",
        None,
        None,
    )
    assert battle.round is not None and battle.round.vote is not None
    assert (battle.round.vote.status, battle.round.vote.closed_ms) == (
        "closed",
        T0 + 8 * SECOND,
    )
    # docs/rules.md: an open vote is closed and counted; only the vote's choices count.
    assert (battle.round.vote.totals, battle.round.vote.ballots, battle.round.vote.digest) == (
        {"b1": 2, "b2": 0, "b3": 1},
        3,
        "3f9a-1c02-77be-0d41",
    )
    counted = {"vote_id": "r1v1", "totals": {"b1": 2, "b2": 0, "b3": 1}, "ballots": 3, "digest": "3f9a-1c02-77be-0d41"}
    assert outcome.events[0].details == {"early": True, "reason": "fire alarm", "counted": counted}
    assert game.ballot_gate(battle) == game.BallotGate("r1v1", False, 0, ("b1", "b2", "b3"), T0, 0)
    assert not game.due(battle, T0 + 10_000 * SECOND)


def test_end_battle_after_a_close_counts_the_vote_that_was_never_revealed() -> None:
    battle = play(at("vote_closed"), "end_battle", totals={"b2": 5}, ballots=5)
    assert battle.round is not None and battle.round.vote is not None
    vote = battle.round.vote
    assert (vote.status, vote.closed_ms, vote.totals, vote.ballots) == (
        "closed",
        T0,
        {"b1": 0, "b2": 5, "b3": 0},
        5,
    )


def test_the_reveal_puts_the_digest_of_the_counted_ballots_on_the_record() -> None:
    # docs/security.md, "Receipts and digests": the digest of the same ballots as the totals.
    closed = play(at("vote_open"), "close_vote")
    assert closed.round is not None and closed.round.vote is not None and closed.round.vote.digest is None
    outcome = step(closed, "reveal_results", totals={"b1": 2, "b2": 1}, ballots=3, digest="0a1b-2c3d-4e5f-6a7b")
    assert outcome.battle.round is not None and outcome.battle.round.vote is not None
    assert outcome.battle.round.vote.digest == "0a1b-2c3d-4e5f-6a7b"
    assert outcome.events[0].details["digest"] == "0a1b-2c3d-4e5f-6a7b"
    # A revealed vote keeps its digest when the battle ends.
    ended = play(outcome.battle, "end_battle", totals={"b1": 99}, ballots=99, digest="ffff-ffff-ffff-ffff")
    assert ended.rounds[-1].votes[-1].digest == "0a1b-2c3d-4e5f-6a7b"


def test_end_battle_keeps_a_revealed_vote_as_it_was() -> None:
    before = at("reveal")
    battle = play(before, "end_battle", totals={"b1": 99}, ballots=99)
    assert battle.rounds == before.rounds
    assert "counted" not in battle.log[-1].details


def test_end_battle_with_a_vote_to_count_needs_its_tally() -> None:
    # The hub reads the frozen tally; a caller that forgot would lose the ballots.
    with pytest.raises(Fault):
        game.apply(at("vote_open"), command("end_battle"), Context(now_ms=T0))


def test_end_battle_early_without_a_reason_says_ended_early() -> None:
    battle = play(at("turn"), "end_battle")
    assert (battle.phase, battle.ended_reason, battle.turn_index, battle.timer) == (
        "finished",
        "ended_early",
        None,
        None,
    )


def test_end_battle_at_the_final_is_completed() -> None:
    outcome = step(at("final"), "end_battle")
    assert outcome.battle.ended_reason == "completed"
    assert outcome.events[0].details == {"early": False, "reason": "completed"}


def test_end_battle_is_refused_when_finished() -> None:
    refused(at("finished"), "end_battle", "wrong_phase")


@pytest.mark.parametrize(
    "message",
    [
        "start_round",
        "next",
        "open_vote",
        "confirm_elimination",
        "pause_timer",
        {"type": "add_battler", "name": "n", "vision": "v"},
    ],
)
def test_nothing_moves_a_finished_battle(message: Message) -> None:
    with pytest.raises(Refused):
        game.apply(at("finished"), command(message), Context(now_ms=T0))


# --- ballot gate, reactions, engagement ----------------------------------------------------


def test_the_ballot_gate_is_shut_before_any_vote() -> None:
    assert game.ballot_gate(new_battle()) is None
    assert game.ballot_gate(at("turn")) is None
    assert game.ballot_gate(at("vote")) is None


def test_the_ballot_gate_is_open_with_the_deadline_during_a_vote() -> None:
    assert game.ballot_gate(at("vote_open")) == game.BallotGate(
        "r1v1", True, T0 + 45 * SECOND, ("b1", "b2", "b3"), T0, 0
    )


def test_the_ballot_gate_closes_with_close_vote() -> None:
    assert game.ballot_gate(at("vote_closed")) == game.BallotGate("r1v1", False, 0, ("b1", "b2", "b3"), T0, T0)
    assert game.ballot_gate(at("reveal")) == game.BallotGate("r1v1", False, 0, ("b1", "b2", "b3"), T0, 0)


def test_the_ballot_gate_has_no_deadline_while_the_vote_is_paused() -> None:
    battle = play(at("vote_open"), "pause_timer", now=T0 + SECOND)
    assert game.ballot_gate(battle) == game.BallotGate("r1v1", True, 0, ("b1", "b2", "b3"), T0, 0)
    battle = play(battle, "resume_timer", now=T0 + 10 * SECOND)
    assert game.ballot_gate(battle) == game.BallotGate("r1v1", True, T0 + 54 * SECOND, ("b1", "b2", "b3"), T0, 0)


def test_the_ballot_gate_of_a_runoff_offers_only_the_tied() -> None:
    battle = play(vote(to_vote(new_battle(4)), {"b1": 9, "b2": 2, "b3": 2, "b4": 5}), "open_vote")
    gate = game.ballot_gate(battle)
    assert gate is not None and gate.open and gate.vote_id == "r1v2"
    assert sorted(gate.choices) == ["b2", "b3"]


def test_a_reaction_during_a_turn_counts_for_the_speaker() -> None:
    battle = play(at("turn"), "next")
    assert game.reaction_target(battle, "applause", None) == "b2"
    assert game.reaction_target(battle, "fire", "b2") == "b2"
    with pytest.raises(Refused) as info:
        game.reaction_target(battle, "applause", "b1")
    assert info.value.reason == "not_speaking"


def test_a_reaction_during_the_debate_counts_for_a_named_battler_in_the_race() -> None:
    battle = at("debate")
    assert game.reaction_target(battle, "idea", "b3") == "b3"
    for battler_id in (None, "b9"):
        with pytest.raises(Refused) as info:
            game.reaction_target(battle, "idea", battler_id)
        assert info.value.reason == "unknown_battler"


def test_a_reaction_for_an_eliminated_battler_is_refused_in_the_debate() -> None:
    battle = confirm(vote(to_vote(new_battle(3, debate_seconds=30)), {"b1": 5, "b2": 1, "b3": 3}))
    battle = play(battle, "start_round", "next", "next", "next")
    assert battle.phase == "debate"
    with pytest.raises(Refused) as info:
        game.reaction_target(battle, "applause", "b2")
    assert info.value.reason == "unknown_battler"


def test_a_reaction_that_is_switched_off_is_refused() -> None:
    battle = play(new_battle(3, reactions=["applause"]), "start_round", "next")
    assert game.reaction_target(battle, "applause", None) == "b1"
    with pytest.raises(Refused) as info:
        game.reaction_target(battle, "yawn", None)
    assert info.value.reason == "reaction_off"
    silent = play(new_battle(3, reactions=[]), "start_round", "next")
    with pytest.raises(Refused) as info:
        game.reaction_target(silent, "applause", None)
    assert info.value.reason == "reaction_off"


@pytest.mark.parametrize(
    "name",
    ["lobby", "challenge", "vote_open", "reveal", "elimination", "final", "finished"],
)
def test_reactions_outside_turns_and_debate_are_refused(name: str) -> None:
    with pytest.raises(Refused) as info:
        game.reaction_target(at(name), "applause", "b1")
    assert info.value.reason == "no_reactions_now"


def test_engagement_score_weights_each_reaction_one_and_a_yawn_minus_one() -> None:
    assert game.engagement_score({}) == 0
    assert game.engagement_score({"applause": 4, "fire": 3, "idea": 2}) == 9
    assert game.engagement_score({"applause": 4, "yawn": 6}) == -2
    assert game.engagement_score({"unknown": 50}) == 0


# --- the log, the version, untouched inputs ----------------------------------------------


def test_every_command_logs_its_time_and_actor_and_bumps_the_version() -> None:
    battle = new_battle(3, debate_seconds=30)
    messages: list[tuple[Message, dict[str, Any]]] = [
        ({"type": "add_battler", "name": "Four", "vision": "4"}, {}),
        (
            {"type": "edit_battler", "battler": "b4", "affiliation": "KU"},
            {"actor": "cohost"},
        ),
        ({"type": "remove_battler", "battler": "b4"}, {}),
        ({"type": "edit_battle", "topic": "water"}, {}),
        ({"type": "start_round", "challenge": "Heat"}, {}),
        ({"type": "reveal_challenge", "text": "More heat"}, {}),
        ("next", {}),
        ("pause_timer", {"actor": "cohost"}),
        ("resume_timer", {}),
        ({"type": "extend_timer", "seconds": 5}, {}),
        ("reset_timer", {}),
        ("skip_turn", {}),
        ("next", {}),
        ("next", {}),
        ("next", {}),
        ("open_vote", {}),
        ({"type": "void_vote", "reason": "test"}, {}),
        ("open_vote", {}),
        ("close_vote", {}),
        ("reveal_results", {"totals": {"b1": 3, "b2": 2, "b3": 1}}),
        (
            {
                "type": "override_elimination",
                "battlers": ["b1"],
                "reason": "walked out",
            },
            {},
        ),
        ("undo_elimination", {}),
        ("confirm_elimination", {}),
        ({"type": "end_battle", "reason": "late"}, {"actor": "system"}),
    ]
    for i, (message, context) in enumerate(messages, start=1):
        before = battle
        battle = step(battle, message, now=T0 + i * SECOND, **context).battle
        assert len(battle.log) == len(before.log) + 1
        assert battle.version == i
    assert [e.action for e in battle.log] == ["create"] + [command(m).type for m, _ in messages]
    assert battle.log[2].actor == "cohost" and battle.log[-1].actor == "system"


def test_the_events_are_the_new_log_entries() -> None:
    outcome = step(at("vote_open"), "close_vote", now=T0 + 3 * SECOND)
    assert outcome.events == outcome.battle.log[-1:]
    assert outcome.events[0].details == {"vote_id": "r1v1"}


@pytest.mark.parametrize(
    ("name", "message", "reason"),
    [
        ("lobby", "next", "wrong_phase"),
        ("turn", "resume_timer", "timer_running"),
        ("vote_open", "open_vote", "vote_exists"),
        ("vote_closed", "close_vote", "vote_not_open"),
        (
            "reveal",
            {
                "type": "override_elimination",
                "battlers": ["b1", "b2", "b3"],
                "reason": "x",
            },
            "bad_override",
        ),
        ("final", "start_round", "wrong_phase"),
        ("finished", "end_battle", "wrong_phase"),
    ],
)
def test_a_refused_command_leaves_the_input_battle_as_it_was(name: str, message: Message, reason: str) -> None:
    battle = at(name)
    copy = battle.model_copy(deep=True)
    refused(battle, message, reason)
    assert battle.model_dump() == copy.model_dump()


# --- a whole evening -------------------------------------------------------------------


def test_a_full_evening_with_five_battlers_in_keep_mode() -> None:
    now = T0
    battle = new_battle(5, vote_mode="keep", turn_seconds=60, vote_seconds=30)
    expected = [
        # (order of turns, totals, who leaves)
        (
            ["b1", "b2", "b3", "b4", "b5"],
            {"b1": 40, "b2": 10, "b3": 30, "b4": 25, "b5": 35},
            ["b2"],
        ),
        (["b1", "b3", "b4", "b5"], {"b1": 30, "b3": 45, "b4": 20, "b5": 25}, ["b4"]),
    ]
    for number, (order, totals, leaving) in enumerate(expected, start=1):
        battle = play(battle, {"type": "start_round", "challenge": f"Card {number}"}, now=now)
        for speaker in order:
            battle = play(battle, "next", now=now)
            assert battle.speaker == speaker
            now += 60 * SECOND
        battle = play(battle, "open_vote", now=now)
        # Nobody closes it: the server's timer does.
        now += 30 * SECOND
        ticked = game.tick(battle, now)
        assert ticked is not None
        battle = play(
            ticked.battle,
            "reveal_results",
            now=now,
            totals=totals,
            ballots=sum(totals.values()),
        )
        battle = confirm(battle, now=now)
        assert battle.round is not None and battle.round.eliminated == leaving
        assert battle.phase == "elimination"

    # Round 3: a tie for last place goes to a runoff.
    battle = to_vote(battle, now=now)
    assert (current(battle).number, current(battle).final) == (3, False)
    battle = vote(battle, {"b1": 50, "b3": 20, "b5": 20}, now=now)
    assert proposal_of(battle).method == "runoff"
    battle = confirm(vote(battle, {"b3": 40, "b5": 60}, now=now), now=now)
    assert current(battle).eliminated == ["b3"]

    # Round 4 is the final of two.
    battle = to_vote(battle, now=now)
    assert current(battle).final is True and current(battle).order == ["b1", "b5"]
    battle = confirm(vote(battle, {"b1": 70, "b5": 90}, now=now), now=now)
    assert (battle.phase, battle.winner) == ("final", "b5")
    battle = play(battle, "end_battle", now=now)

    assert battle.phase == "finished" and battle.ended_reason == "completed"
    assert {b.id: (b.status, b.eliminated_in_round) for b in battle.battlers} == {
        "b1": ("eliminated", 4),
        "b2": ("eliminated", 1),
        "b3": ("eliminated", 3),
        "b4": ("eliminated", 2),
        "b5": ("winner", None),
    }
    assert [r.eliminated for r in battle.rounds] == [["b2"], ["b4"], ["b3"], ["b1"]]
    assert [r.challenge for r in battle.rounds] == ["Card 1", "Card 2", None, None]
    assert [len(r.votes) for r in battle.rounds] == [1, 1, 2, 1]
    assert battle.version == len(battle.log) - 1
    assert [e.actor for e in battle.log].count("timer") == 2
    assert Battle.model_validate_json(battle.model_dump_json()) == battle


# --- revoking the co-host link ------------------------------------------------------------


@pytest.mark.parametrize("name", ["lobby", "turn", "vote_open", "reveal", "finished"])
def test_revoke_cohost_moves_to_the_next_generation_and_logs_it(name: str) -> None:
    battle = at(name)
    first = step(battle, "revoke_cohost", now=T0 + SECOND)
    assert first.battle.cohost_generation == battle.cohost_generation + 1
    assert first.events[0].details == {"generation": 1}
    # Nothing else moves: the show goes on as it was.
    untouched = {"cohost_generation", "version", "log"}
    assert first.battle.model_dump(exclude=untouched) == battle.model_dump(exclude=untouched)
    second = step(first.battle, "revoke_cohost", now=T0 + 2 * SECOND)
    assert second.battle.cohost_generation == 2
    assert second.events[0].details == {"generation": 2}


@pytest.mark.parametrize("actor", ["cohost", "timer", "system"])
def test_only_the_host_may_revoke_the_cohost_link(actor: str) -> None:
    refusal = refused(at("turn"), "revoke_cohost", "not_allowed", actor=actor)
    assert refusal.params == {"role": actor}


# --- visions that develop: revisions between rounds (docs/rules.md) ------------------------


def revise(
    battler_id: str = "b2", vision: str = "Vision 2, grid-proof", changed: str = "Batteries in every street"
) -> dict[str, Any]:
    return {"type": "revise_vision", "battler": battler_id, "vision": vision, "changed": changed}


@pytest.mark.parametrize(("name", "first_round"), [("lobby", 1), ("challenge", 1), ("elimination", 2)])
def test_a_vision_is_revised_between_rounds_as_a_new_version(name: str, first_round: int) -> None:
    battle = at(name)
    b2 = "b3" if name == "elimination" else "b2"  # b2 left in the elimination's round
    outcome = step(battle, revise(b2), now=T0 + SECOND)
    revised = battler(outcome.battle, b2)
    assert revised.vision == "Vision 2, grid-proof"
    assert revised.version == 2
    assert [v.model_dump() for v in revised.versions] == [
        {"vision": f"Vision {b2[1]}", "changed": "", "round": 1, "by": None, "at_ms": None},
        {"vision": "Vision 2, grid-proof", "changed": "Batteries in every street", "round": first_round,
         "by": "host", "at_ms": T0 + SECOND},
    ]  # fmt: skip
    assert outcome.events[0].details == {"battler": b2, "version": 2, "vision": "Vision 2, grid-proof",
                                         "changed": "Batteries in every street", "round": first_round}  # fmt: skip
    # Nothing but that battler moves.
    others = [b for b in outcome.battle.battlers if b.id != b2]
    assert others == [b for b in battle.battlers if b.id != b2]
    assert Battle.model_validate_json(outcome.battle.model_dump_json()) == outcome.battle


@pytest.mark.parametrize("name", ["turn", "debate", "vote", "vote_open", "vote_closed", "reveal", "final", "finished"])
def test_a_vision_is_not_revised_during_the_turns_the_debate_a_vote_or_after(name: str) -> None:
    refusal = refused(at(name), revise("b1"), "wrong_phase")
    assert refusal.params == {"phase": name.split("_")[0]}


def test_each_revision_is_the_next_version_logged_with_who_sent_it() -> None:
    battle = step(at("lobby"), revise(changed="one"), actor="battler", battler="b2").battle
    battle = step(battle, revise(vision="Vision 2, third", changed="two"), actor="cohost").battle
    assert [(v.vision, v.changed, v.by) for v in battler(battle, "b2").versions] == [
        ("Vision 2", "", None), ("Vision 2, grid-proof", "one", "battler"), ("Vision 2, third", "two", "cohost")
    ]  # fmt: skip
    assert battler(battle, "b2").version == 3
    assert [(e.actor, e.details["version"]) for e in battle.log[-2:]] == [("battler", 2), ("cohost", 3)]


def test_a_battlers_link_revises_its_own_vision_only() -> None:
    refused(at("lobby"), revise("b1"), "not_your_vision", actor="battler", battler="b2")
    refused(at("lobby"), revise("b1"), "not_your_vision", actor="battler", battler=None)


def test_revisions_can_be_switched_off_per_battle() -> None:
    battle = play(new_battle(), {"type": "edit_battle", "rules": {"vision_revisions": False}})
    assert battle.rules.vision_revisions is False
    refused(battle, revise(), "revisions_off")
    refused(play(battle, "start_round"), revise(), "revisions_off")


def test_an_eliminated_battler_no_longer_revises() -> None:
    battle = at("elimination")
    assert battler(battle, "b2").status == "eliminated"
    refused(battle, revise("b2"), "battler_out")
    refused(battle, revise("b9"), "unknown_battler")


def test_the_versions_of_a_vision_stop_at_their_bound() -> None:
    battle = at("lobby")
    for n in range(2, game.MAX_VISION_VERSIONS + 1):
        battle = play(battle, revise(vision=f"Version {n}"))
    assert battler(battle, "b2").version == game.MAX_VISION_VERSIONS
    refusal = refused(battle, revise(vision="One too many"), "limit_reached")
    assert refusal.params == {"limit": "vision_versions", "most": game.MAX_VISION_VERSIONS}
    # An undo gives one back.
    play(battle, {"type": "undo_revision", "battler": "b2"}, revise(vision="Instead"))


def test_undo_takes_back_the_latest_version() -> None:
    battle = play(at("challenge"), revise(changed="one"), revise(vision="Vision 2, third", changed="two"))
    undone = step(battle, {"type": "undo_revision", "battler": "b2"})
    assert undone.events[0].details == {"battler": "b2", "version": 2, "undone": "Vision 2, third"}
    b2 = battler(undone.battle, "b2")
    assert (b2.vision, b2.version, b2.versions[-1].changed) == ("Vision 2, grid-proof", 2, "one")
    # Back to the roster's vision: never revised again.
    back = battler(play(undone.battle, {"type": "undo_revision", "battler": "b2"}), "b2")
    assert (back.vision, back.version, back.versions) == ("Vision 2", 1, [])


def test_undo_is_refused_without_a_revision_and_once_it_has_stood_in_a_round() -> None:
    refused(at("lobby"), {"type": "undo_revision", "battler": "b2"}, "no_revision")
    refused(at("lobby"), {"type": "undo_revision", "battler": "b7"}, "unknown_battler")
    battle = play(at("lobby"), revise("b3"))
    battle = confirm(vote(to_vote(battle), {"b1": 5, "b2": 1, "b3": 3}))
    refusal = refused(battle, {"type": "undo_revision", "battler": "b3"}, "revision_stood")
    assert battler(battle, "b3").version_in(1) == 2
    # A revision made in the challenge phase stands in that round, from its first turn.
    battle = play(battle, "start_round", revise("b3", vision="Vision 3, later"))
    battle = play(battle, "next")
    refused(battle, {"type": "undo_revision", "battler": "b3"}, "wrong_phase")
    assert refusal.params == {}


@pytest.mark.parametrize("name", ["turn", "debate", "vote_open", "reveal"])
def test_undo_is_refused_outside_the_revision_phases(name: str) -> None:
    refused(at(name), {"type": "undo_revision", "battler": "b1"}, "wrong_phase")


@pytest.mark.parametrize("actor", ["battler", "timer", "system"])
def test_only_the_host_and_the_cohost_undo_a_revision(actor: str) -> None:
    battle = play(at("lobby"), revise())
    refusal = refused(battle, {"type": "undo_revision", "battler": "b2"}, "not_allowed", actor=actor, battler="b2")
    assert refusal.params == {"role": actor}
    step(battle, {"type": "undo_revision", "battler": "b2"}, actor="cohost")


def test_a_lobby_edit_of_a_revised_vision_edits_its_current_version() -> None:
    battle = play(at("lobby"), revise(), {"type": "edit_battler", "battler": "b2", "vision": "Typo mended"})
    b2 = battler(battle, "b2")
    assert (b2.vision, b2.versions[-1].vision, b2.version) == ("Typo mended", "Typo mended", 2)


def test_version_in_names_the_version_that_stood_in_each_round() -> None:
    battle = play(at("lobby"), revise("b3"))
    battle = confirm(vote(to_vote(battle), {"b1": 5, "b2": 1, "b3": 3}))
    battle = play(
        battle, revise("b3", vision="Vision 3, round two"), "start_round", revise("b3", vision="Vision 3, again")
    )
    b3 = battler(battle, "b3")
    assert [v.round for v in b3.versions] == [1, 1, 2, 2]
    assert [b3.version_in(n) for n in (1, 2, 3)] == [2, 4, 4]
    assert battler(battle, "b1").version_in(2) == 1


def test_a_vote_records_the_version_of_each_vision_it_asks_about() -> None:
    battle = play(at("lobby"), revise("b3"), revise("b3", vision="Vision 3, third"))
    battle = play(to_vote(battle), "open_vote")
    assert current(battle).votes[0].versions == {"b1": 1, "b2": 1, "b3": 3}
    battle = confirm(play(battle, "close_vote", "reveal_results", totals={"b1": 5, "b2": 1, "b3": 3}, ballots=9))
    battle = play(battle, revise("b1"), "start_round")
    while battle.phase != "vote":
        battle = play(battle, "next")
    assert current(play(battle, "open_vote")).votes[0].versions == {"b1": 2, "b3": 3}


@pytest.mark.parametrize("name", ["lobby", "turn", "vote_open", "finished"])
def test_revoke_battler_moves_that_battlers_link_to_its_next_generation(name: str) -> None:
    battle = at(name)
    outcome = step(battle, {"type": "revoke_battler", "battler": "b1"})
    assert outcome.events[0].details == {"battler": "b1", "generation": 1}
    assert battler(outcome.battle, "b1").link_generation == 1
    untouched = {"battlers", "version", "log"}
    assert outcome.battle.model_dump(exclude=untouched) == battle.model_dump(exclude=untouched)
    assert outcome.battle.battlers[1:] == battle.battlers[1:]
    refused(battle, {"type": "revoke_battler", "battler": "b9"}, "unknown_battler")


@pytest.mark.parametrize("actor", ["cohost", "battler", "timer"])
def test_only_the_host_may_revoke_a_battler_link(actor: str) -> None:
    refused(at("turn"), {"type": "revoke_battler", "battler": "b1"}, "not_allowed", actor=actor, battler="b1")


# --- the audience takes part: challenges and questions from phones (docs/rules.md) ---------


def approved(kind: str = "question", number: int = 1, **fields: Any) -> Submission:
    values = {"id": f"s{number}", "kind": kind, "text": f"A {kind} from the hall", "nickname": "Ida",
              "at_ms": T0, "status": "approved", "device": "d1"}  # fmt: skip
    return Submission.model_validate(values | fields)


@pytest.mark.parametrize(
    ("phase", "challenges", "questions"),
    [
        ("lobby", True, False),
        ("challenge", True, False),
        ("turn", False, True),
        ("debate", False, True),
        ("vote", False, False),
        ("vote_open", False, False),
        ("reveal", False, False),
        ("elimination", True, False),
        ("final", False, False),
        ("finished", False, False),
    ],
)
def test_phones_send_challenges_between_rounds_and_questions_during_the_turns(
    phase: str, challenges: bool, questions: bool
) -> None:
    battle = at(phase)
    for kind, open_now in (("challenge", challenges), ("question", questions)):
        if open_now:
            game.submission_target(battle, kind, None)  # type: ignore[arg-type]
        else:
            with pytest.raises(Refused) as info:
                game.submission_target(battle, kind, None)  # type: ignore[arg-type]
            assert info.value.reason == "submissions_closed"


def test_challenges_close_once_the_rounds_card_is_up_and_rules_switch_either_off() -> None:
    battle = play(at("challenge"), {"type": "reveal_challenge", "text": "Use no cars"})
    with pytest.raises(Refused, match="submissions_closed"):
        game.submission_target(battle, "challenge", None)
    for rules, kind, phase in (
        ({"audience_challenges": False}, "challenge", "lobby"),
        ({"audience_questions": False}, "question", "turn"),
    ):
        battle = new_battle(**rules)
        battle = play(battle, "start_round", "next") if phase == "turn" else battle
        with pytest.raises(Refused, match="submissions_off"):
            game.submission_target(battle, kind, None)  # type: ignore[arg-type]


def test_a_question_is_for_the_speaker_unless_it_names_a_battler_still_in() -> None:
    turn = at("turn")
    assert game.submission_target(turn, "question", None) == "b1"
    assert game.submission_target(turn, "question", "b3") == "b3"
    with pytest.raises(Refused, match="unknown_battler"):
        game.submission_target(turn, "question", "b9")
    assert game.submission_target(at("debate"), "question", None) is None


def test_an_approved_challenge_becomes_the_rounds_card_with_its_nickname() -> None:
    battle = at("challenge")
    outcome = step(battle, {"type": "show_submission", "submission": "s1"}, submission=approved("challenge"))
    rnd = current(outcome.battle)
    assert rnd.challenge == "A challenge from the hall"
    assert rnd.challenge_from == Shown(
        submission="s1", kind="challenge", text="A challenge from the hall", nickname="Ida"
    )
    assert outcome.events[0].details == {
        "submission": "s1", "show_as": "challenge", "kind": "challenge", "text": "A challenge from the hall", "nickname": "Ida"
    }  # fmt: skip
    # The host's own card replaces it, and with it the credit.
    battle = play(outcome.battle, {"type": "reveal_challenge", "text": "The host's card"})
    assert current(battle).challenge_from is None


def test_only_an_approved_submission_that_the_store_has_goes_on_the_screen() -> None:
    battle = at("turn")
    message = {"type": "show_submission", "submission": "s1"}
    refused(battle, message, "unknown_submission")
    refused(battle, message, "unknown_submission", submission=approved(number=2))
    for status in ("pending", "held", "dismissed", "blocked"):
        refused(battle, message, "not_approved", submission=approved(status=status))
    refused(at("vote"), message, "wrong_phase", submission=approved())
    refused(at("lobby"), {**message, "show_as": "challenge"}, "wrong_phase", submission=approved())


def test_a_question_goes_to_the_speaker_and_leaves_with_the_turn() -> None:
    battle = play(at("turn"), {"type": "show_submission", "submission": "s1"}, submission=approved())
    assert battle.question == Shown(
        submission="s1", kind="question", text="A question from the hall", nickname="Ida", battler="b1", turn=0
    )
    paused = play(battle, "pause_timer")
    assert paused.question == battle.question  # the same turn: it stays
    assert play(paused, "next").question is None
    assert play(battle, "skip_turn").question is None


def test_a_debate_question_stays_through_the_debate_and_goes_with_the_vote() -> None:
    battle = play(
        at("debate"), {"type": "show_submission", "submission": "s4"}, submission=approved(number=4, battler="b2")
    )
    assert battle.question is not None and (battle.question.battler, battle.question.turn) == ("b2", None)
    assert play(battle, "extend_timer").question == battle.question
    assert play(battle, "open_vote").question is None


def test_hide_submission_takes_the_question_or_the_card_off_the_screen() -> None:
    battle = play(at("turn"), {"type": "show_submission", "submission": "s1"}, submission=approved())
    refused(battle, {"type": "hide_submission", "submission": "s2"}, "not_shown")
    hidden = step(battle, {"type": "hide_submission", "submission": "s1"})
    assert hidden.battle.question is None and hidden.events[0].details == {"submission": "s1", "show_as": "question"}
    carded = play(at("challenge"), {"type": "show_submission", "submission": "s2"}, submission=approved("challenge", 2))
    carded = play(carded, {"type": "hide_submission", "submission": "s2"})
    assert current(carded).challenge is None and current(carded).challenge_from is None
    # A question can go up as the round's card too (show_as).
    as_card = play(
        at("turn"), {"type": "show_submission", "submission": "s1", "show_as": "challenge"}, submission=approved()
    )
    assert current(as_card).challenge_from is not None and as_card.question is None
    carded = play(at("challenge"), {"type": "show_submission", "submission": "s2"}, submission=approved("challenge", 2))
    unshown = step(carded, {"type": "hide_submission", "submission": "s2"})
    assert unshown.events[0].details == {"submission": "s2", "show_as": "challenge"}  # the export's record


# --- what a phone types: the text of a challenge or a question, a nickname ---------------------


def test_plain_text_keeps_what_a_person_sees_and_drops_what_no_one_can() -> None:
    # Zero-width, direction marks and control characters go; any run of white space is one space.
    assert model.plain_text(" a\u200b\u202eb\t\n\n c\x07 <b>d</b>  ") == "ab c <b>d</b>"
    assert model.plain_text("\u200b\x00") == ""


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("x" * 200, "x" * 200),
        ("\u200b" * 200 + "x" * 200, "x" * 200),  # 400 as sent, 200 once cleaned
        ("  é  ", "é"),
        ("x" * 201, None),
        ("\u200b" * 201 + "x" * 200, None),  # over the first, cheap bound of 400
        ("\u200b\n", None),  # nothing left to show
    ],
)
def test_a_submission_is_1_to_200_characters_once_cleaned(text: str, kept: str | None) -> None:
    adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(model.SubmissionText)
    if kept is None:
        with pytest.raises(pydantic.ValidationError):
            adapter.validate_python(text)
    else:
        assert adapter.validate_python(text) == kept


@pytest.mark.parametrize(
    ("nickname", "kept"),
    [
        ("x" * 30, "x" * 30),
        ("\u200b" * 30 + "x" * 30, "x" * 30),
        ("", ""),
        ("x" * 31, None),
        ("\u200b" * 31 + "x" * 30, None),  # over the first bound of 60
    ],
)
def test_a_nickname_is_at_most_30_characters_once_cleaned(nickname: str, kept: str | None) -> None:
    adapter: pydantic.TypeAdapter[str] = pydantic.TypeAdapter(model.Nickname)
    if kept is None:
        with pytest.raises(pydantic.ValidationError):
            adapter.validate_python(nickname)
    else:
        assert adapter.validate_python(nickname) == kept


def test_audience_cards_count_towards_the_rounds_challenge_cards() -> None:
    battle = at("challenge")
    for n in range(game.MAX_CHALLENGE_CARDS):
        battle = play(
            battle, {"type": "show_submission", "submission": f"s{n + 1}"}, submission=approved("challenge", n + 1)
        )
    refused(battle, {"type": "reveal_challenge", "text": "One more"}, "limit_reached")
    # Questions are not cards.
    battle = play(battle, "next", {"type": "show_submission", "submission": "s99"}, submission=approved(number=99))
    assert battle.question is not None


def test_audience_rules_change_at_any_time_before_the_end_and_log_the_lists_length() -> None:
    for phase in ("lobby", "turn", "vote_open", "reveal", "final"):
        battle = at(phase)
        outcome = step(
            battle, {"type": "set_audience_rules", "audience_questions": False, "banned_words": ["Brexit*", "brexit*"]}
        )
        rules = outcome.battle.rules
        assert (rules.audience_questions, rules.audience_challenges, rules.banned_words) == (False, True, ["brexit*"])
        assert rules.turn_seconds == battle.rules.turn_seconds  # the other rules as they were
        assert outcome.events[0].details == {"changes": {"audience_questions": False, "banned_words": 1}}
    refused(at("finished"), {"type": "set_audience_rules", "audience_challenges": False}, "wrong_phase")
    assert step(at("turn"), "set_audience_rules").events[0].details == {"changes": {}}


def test_audience_rule_edits_stop_at_their_bound() -> None:
    battle = at("turn")
    for n in range(game.MAX_AUDIENCE_RULE_EDITS):
        battle = play(battle, {"type": "set_audience_rules", "audience_questions": n % 2 == 0})
    error = refused(battle, {"type": "set_audience_rules", "audience_questions": True}, "limit_reached")
    assert error.params == {"limit": "audience_rule_edits", "most": game.MAX_AUDIENCE_RULE_EDITS}


# --- edges the rules leave to the core ----------------------------------------------------


def test_open_vote_from_the_last_turn_skips_the_debate_and_ends_the_turn_as_heard() -> None:
    last_turn = play(new_battle(debate_seconds=60), "start_round", "next", "next", "next")
    outcome = step(last_turn, "open_vote", now=T0 + 7 * SECOND)
    battle = outcome.battle
    assert (battle.phase, battle.turn_index) == ("vote", None)
    assert battle.open_vote is not None and battle.open_vote.id == "r1v1"
    # The vote's own length, not the debate's.
    assert timer(battle).deadline_ms == T0 + 52 * SECOND
    assert [(t.battler, t.ended_ms, t.skipped) for t in current(battle).turns] == [
        ("b1", T0, False),
        ("b2", T0, False),
        ("b3", T0 + 7 * SECOND, False),
    ]
    assert outcome.events[0].details == {
        "vote_id": "r1v1",
        "choices": ["b1", "b2", "b3"],
        "runoff": False,
        "mode": "keep",
        "seconds": 45,
    }


def test_open_vote_from_a_turn_before_the_last_is_refused() -> None:
    battle = play(new_battle(debate_seconds=60), "start_round", "next", "next")
    refused(battle, "open_vote", "wrong_phase")


@pytest.mark.parametrize(
    ("leaving", "openers"),
    [
        # After b4 opened round 3, the roster goes on to b5 and wraps to b1 (both out) and b2.
        (("b5", "b3", "b1"), ["b1", "b2", "b4", "b2"]),
        # After b4 opened round 3, b5, b1 and b2 are out: the wrap goes round to b3, just before b4.
        (("b2", "b1", "b5"), ["b1", "b3", "b4", "b3"]),
    ],
)
def test_rotating_order_wraps_past_the_eliminated_to_the_next_one_still_in(
    leaving: tuple[str, ...], openers: list[str]
) -> None:
    battle = new_battle(5, order="rotating")
    for leaver in leaving:
        battle = to_vote(battle)
        totals = {bid: 1 if bid == leaver else 5 for bid in current(battle).order}
        battle = confirm(vote(battle, totals))
        assert current(battle).eliminated == [leaver]
    battle = to_vote(battle)
    assert current(battle).final
    assert [r.order[0] for r in battle.rounds] == openers
    # Each round goes on in roster order from its opener, wrapping.
    roster = [b.id for b in battle.battlers]
    for rnd in battle.rounds:
        start = roster.index(rnd.order[0])
        assert rnd.order == [bid for bid in roster[start:] + roster[:start] if bid in rnd.order]


def test_a_debate_of_one_second_is_a_debate() -> None:
    battle = play(new_battle(debate_seconds=1), "start_round", "next", "next", "next")
    outcome = step(battle, "next", now=T0 + 2 * SECOND)
    assert outcome.battle.phase == "debate"
    assert (timer(outcome.battle).duration_ms, timer(outcome.battle).deadline_ms) == (SECOND, T0 + 3 * SECOND)
    assert outcome.events[0].details == {"battler": "b3", "skipped": False, "next_phase": "debate"}


def test_tie_rule_host_leaves_the_pick_to_the_host_whatever_the_engagement() -> None:
    engagement = {"b2": {"applause": 10}, "b3": {"yawn": 10}}
    battle = vote(
        to_vote(new_battle(4, ties="host")),
        {"b1": 9, "b2": 2, "b3": 2, "b4": 5},
        engagement=engagement,
    )
    proposal = proposal_of(battle)
    assert (proposal.leaving, sorted(proposal.tied), proposal.need, proposal.method, proposal.decided_by) == (
        [],
        ["b2", "b3"],
        1,
        "host",
        "votes",
    )
    # The engagement is still recorded for the export.
    assert current(battle).engagement == {"b1": {}, "b2": {"applause": 10}, "b3": {"yawn": 10}, "b4": {}}


# --- the clock's edges ----------------------------------------------------------------------


def test_a_turn_paused_in_overtime_resumes_already_due() -> None:
    battle = play(at("turn"), "pause_timer", now=T0 + 100 * SECOND)
    outcome = step(battle, "resume_timer", now=T0 + 200 * SECOND)
    resumed = timer(outcome.battle)
    assert (resumed.deadline_ms, resumed.paused_remaining_ms) == (T0 + 200 * SECOND, None)
    assert resumed.remaining_ms(T0 + 200 * SECOND) == 0 and resumed.expired(T0 + 200 * SECOND)
    assert outcome.events[0].details == {"deadline_ms": T0 + 200 * SECOND}


def test_extending_a_timer_paused_in_overtime_gives_exactly_the_extra_seconds() -> None:
    battle = play(at("turn"), "pause_timer", now=T0 + 100 * SECOND)
    outcome = step(battle, {"type": "extend_timer", "seconds": 20}, now=T0 + 150 * SECOND)
    assert (timer(outcome.battle).deadline_ms, timer(outcome.battle).paused_remaining_ms) == (None, 20 * SECOND)
    assert outcome.events[0].details == {"seconds": 20, "remaining_ms": 20 * SECOND}


def test_a_paused_timer_reports_its_remaining_time_whatever_the_hour() -> None:
    paused = Timer(duration_ms=90 * SECOND, deadline_ms=None, paused_remaining_ms=4 * SECOND)
    assert [paused.remaining_ms(now) for now in (0, T0, T0 * 10)] == [4 * SECOND] * 3
    assert not paused.expired(T0 * 10)
    # Paused with nothing left (in overtime): 0, never a negative figure or a deadline.
    for left in (0, None):
        empty = Timer(duration_ms=90 * SECOND, deadline_ms=None, paused_remaining_ms=left)
        assert (empty.paused, empty.remaining_ms(T0), empty.expired(T0)) == (True, 0, False)


def test_a_running_timer_counts_down_to_its_deadline_and_is_due_on_it() -> None:
    running = Timer(duration_ms=90 * SECOND, deadline_ms=T0)
    assert not running.paused
    assert [running.remaining_ms(now) for now in (T0 - 1, T0, T0 + 1)] == [1, 0, -1]
    assert [running.expired(now) for now in (T0 - 1, T0, T0 + 1)] == [False, True, True]


# --- what the log says of each command (the export carries it) -----------------------------


def details(battle: Battle, message: Message, *, now: int = T0, **context: Any) -> dict[str, Any]:
    return step(battle, message, now=now, **context).events[0].details


def test_the_log_of_next_names_where_the_round_went() -> None:
    challenge = at("challenge")
    assert details(challenge, "next") == {"next_phase": "turn"}
    assert details(at("turn"), "next") == {"battler": "b1", "skipped": False, "next_phase": "turn"}
    last = play(at("turn"), "next", "next")
    assert details(last, "next") == {"battler": "b3", "skipped": False, "next_phase": "vote"}
    assert details(at("debate"), "next") == {"next_phase": "vote"}


def test_the_log_of_the_timer_commands_gives_the_clock_they_left() -> None:
    paused = play(at("turn"), "pause_timer", now=T0 + 30 * SECOND)
    assert details(paused, "resume_timer", now=T0 + 40 * SECOND) == {"deadline_ms": T0 + 100 * SECOND}
    assert details(at("turn"), {"type": "extend_timer", "seconds": 15}, now=T0 + 10 * SECOND) == {
        "seconds": 15,
        "remaining_ms": 95 * SECOND,
    }
    assert details(at("turn"), "reset_timer", now=T0 + 70 * SECOND) == {"remaining_ms": 90 * SECOND}
    assert details(paused, "reset_timer", now=T0 + 40 * SECOND) == {"remaining_ms": 90 * SECOND}


def test_the_log_of_a_reveal_holds_the_totals_and_the_proposal() -> None:
    entry = details(
        at("vote_closed"), "reveal_results", totals={"b1": 5, "b2": 1, "b3": 3}, ballots=9, digest="0a1b-2c3d-4e5f-6a7b"
    )
    assert entry == {
        "vote_id": "r1v1",
        "totals": {"b1": 5, "b2": 1, "b3": 3},
        "ballots": 9,
        "digest": "0a1b-2c3d-4e5f-6a7b",
        "proposal": {"leaving": ["b2"], "tied": [], "need": 0, "method": "decided", "decided_by": "votes"},
    }


def test_the_log_of_the_lobby_edits_names_what_changed() -> None:
    assert details(new_battle(3), {"type": "remove_battler", "battler": "b2"}) == {"battler": "b2", "name": "Battler 2"}
    edit = {"type": "edit_battle", "title": " Copenhagen ", "language": "da", "rules": {"ties": "host"}}
    assert details(new_battle(3), edit) == {
        "changes": {"title": "Copenhagen", "language": "da", "rules": {"ties": "host"}}
    }
    added = details(new_battle(2), {"type": "add_battler", "name": "Ida", "vision": "Floating farms"})
    assert added == {
        "battler": {
            "name": "Ida",
            "vision": "Floating farms",
            "affiliation": "",
            "id": "b3",
            "status": "in",
            "eliminated_in_round": None,
            "versions": [],
            "link_generation": 0,
        }
    }


def test_the_log_of_create_start_round_and_reveal_challenge() -> None:
    assert new_battle().log[0].details == {"title": "Aarhus 2079"}
    entry = details(new_battle(), {"type": "start_round", "challenge": "Heat"})
    assert entry == {"round": 1, "final": False, "order": ["b1", "b2", "b3"], "seed": None, "challenge": "Heat"}
    assert details(at("turn"), {"type": "reveal_challenge", "text": "Twist"}) == {"text": "Twist"}


# --- the context's defaults, and what never changes ----------------------------------------


def test_a_random_order_without_a_seed_is_the_order_of_seed_zero() -> None:
    battle = new_battle(5, order="random")
    unseeded = step(battle, "start_round").battle
    assert current(unseeded).seed == 0
    assert current(unseeded).order == current(play(battle, "start_round", seed=0)).order


def test_a_reveal_without_a_ballot_count_records_none_cast() -> None:
    battle = play(at("vote_closed"), "reveal_results", totals={"b1": 2})
    assert (current(battle).votes[0].ballots, current(battle).votes[0].totals) == (0, {"b1": 2, "b2": 0, "b3": 0})


def test_the_context_the_outcome_and_the_ballot_gate_cannot_be_changed() -> None:
    outcome = step(at("vote_open"), "pause_timer")
    gate = game.ballot_gate(outcome.battle)
    for frozen, name in ((Context(now_ms=T0), "now_ms"), (outcome, "battle"), (gate, "open")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frozen, name, None)


def test_a_state_in_a_round_phase_without_a_round_is_a_fault() -> None:
    # Only a corrupt stored document can look like this; the core says so instead of guessing.
    broken = new_battle().model_copy(update={"phase": "challenge"})
    with pytest.raises(Fault):
        game.apply(broken, command("next"), Context(now_ms=T0))


# Written out, not read from game.LOBBY_EDITS: the test is of that set.
@pytest.mark.parametrize("action", ["add_battler", "edit_battler", "remove_battler", "edit_battle"])
def test_every_kind_of_lobby_edit_counts_towards_the_bound(action: str) -> None:
    padding = [LogEntry(at_ms=T0, actor="host", action=action)] * game.MAX_LOBBY_EDITS
    battle = new_battle(2).model_copy(update={"log": [*new_battle(2).log, *padding]})
    refused(battle, {"type": "edit_battle", "topic": "one more"}, "limit_reached")


def test_the_bounds_of_one_battle_are_the_documented_ones() -> None:
    # docs/security.md, "Bounds of one battle" (tests/test_docs.py holds the page to the code).
    bounds = (
        game.MAX_BATTLERS,
        game.MAX_LOG_ENTRIES,
        game.MAX_LOBBY_EDITS,
        game.MAX_CHALLENGE_CARDS,
        game.MAX_VOTES_PER_ROUND,
        game.MAX_BALLOTS_PER_DEVICE,
        game.MAX_AUDIENCE_RULE_EDITS,
        model.MAX_DECISIONS,
        game.MAX_VISION_VERSIONS,
    )
    assert bounds == (24, 3000, 100, 10, 10, 200, 100, 20, 20)


@pytest.mark.parametrize("name", sorted(PHASES))
def test_a_battle_round_trips_through_json_in_every_phase(name: str) -> None:
    # The stores keep the battle as one JSON document and every process rebuilds it from there.
    battle = at(name)
    assert Battle.model_validate_json(battle.model_dump_json()) == battle


def test_a_battle_needs_only_a_title() -> None:
    # POST /api/battles with a title alone: everything else has its documented default.
    battle = game.create("AB12", BattleDraft(title="Aarhus 2079"), T0)
    assert (battle.topic, battle.scenario, battle.language, battle.battlers) == ("", "", "en", [])
    assert (battle.rules, battle.battlers_added, battle.phase, battle.cohost_generation) == (Rules(), 0, "lobby", 0)


def test_the_log_of_an_elimination_names_the_round_the_leavers_and_the_winner() -> None:
    assert details(at("reveal"), "confirm_elimination") == {
        "round": 1,
        "eliminated": ["b2"],
        "winner": None,
        "picked": [],
    }
    final = vote(to_vote(at("elimination")), {"b1": 4, "b3": 7})
    assert details(final, "confirm_elimination") == {"round": 2, "eliminated": ["b1"], "winner": "b3", "picked": []}


def test_edit_battle_ignores_a_text_sent_as_null() -> None:
    outcome = step(new_battle(3), {"type": "edit_battle", "title": None, "topic": None, "scenario": "Dry"})
    assert (outcome.battle.title, outcome.battle.topic, outcome.battle.scenario) == ("Aarhus 2079", "climate", "Dry")
    assert outcome.events[0].details == {"changes": {"scenario": "Dry"}}


def test_a_timer_command_on_a_turn_without_a_clock_is_refused() -> None:
    # Only a damaged stored state has a turn without a clock; the command says so, it does not crash.
    clockless = at("turn").model_copy(update={"timer": None})
    for message in ("pause_timer", "resume_timer", "extend_timer", "reset_timer"):
        refused(clockless, message, "no_timer")


def test_a_reveal_without_the_stores_tally_is_a_fault() -> None:
    # The hub reads the frozen tally first; a caller that forgot would reveal an empty vote.
    with pytest.raises(Fault):
        game.apply(at("vote_closed"), command("reveal_results"), Context(now_ms=T0))


def test_a_state_that_names_a_battler_it_does_not_have_is_a_fault() -> None:
    battle = at("reveal")
    broken = battle.model_copy(update={"battlers": [b for b in battle.battlers if b.id != "b2"]})
    with pytest.raises(Fault):
        game.apply(broken, command("confirm_elimination"), Context(now_ms=T0))


# --- what a command needs from the store, and what goes first (running.Runner reads them) ---


def test_a_command_needs_the_submission_it_shows_and_the_speakers_reactions_in_a_turn() -> None:
    turn = at("turn")
    assert game.needs(turn, command({"type": "show_submission", "submission": "s3"})) == game.Needs(
        submission="s3", engagement=1
    )
    assert game.needs(turn, command("next")) == game.Needs(engagement=1)
    assert game.needs(new_battle(), command("start_round")) == game.Needs()
    assert game.needs(at("challenge"), command({"type": "show_submission", "submission": "s1"})) == game.Needs("s1")


def test_the_reveal_and_the_end_need_the_closed_votes_tally_and_the_rounds_reactions() -> None:
    voting = play(to_vote(new_battle()), "open_vote", "close_vote")
    vote = current(voting).vote
    assert vote is not None
    for kind in ("reveal_results", "end_battle"):
        assert game.needs(voting, command(kind)) == game.Needs(tally=vote.id, engagement=1)
    assert game.needs(new_battle(), command("end_battle")) == game.Needs()


def test_ending_the_battle_closes_an_open_vote_first() -> None:
    voting = play(to_vote(new_battle()), "open_vote")
    assert game.applied_first(voting, command("end_battle")) == command("close_vote")
    assert game.applied_first(play(voting, "close_vote"), command("end_battle")) is None
    assert game.applied_first(voting, command("close_vote")) is None


def test_a_submission_is_held_when_its_text_or_its_nickname_has_a_banned_word() -> None:
    lobby = new_battle(banned_words=["boring*"])
    clean = game.submission(lobby, "challenge", "No cars", "Ida", None, "d1", T0)
    assert (clean.status, clean.held_for, clean.round, clean.battler, clean.device) == ("pending", None, 0, None, "d1")
    assert game.submission(lobby, "challenge", "So boringly green", "", None, "d1", T0).held_for == "boring*"
    held = game.submission(lobby, "challenge", "No cars", "Boring Bob", None, "d1", T0)
    assert (held.status, held.held_for) == ("held", "boring*")
    question = game.submission(at("turn"), "question", "Why?", "", None, "d2", T0 + 5)
    assert (question.battler, question.round, question.at_ms) == ("b1", 1, T0 + 5)
    with pytest.raises(Refused):
        game.submission(at("turn"), "challenge", "No cars", "", None, "d1", T0)


# --- who moved minds: the stance polls and the gain rule (docs/rules.md) ----------------

# A hand-counted evening (docs/rules.md, "Who moved minds", the worked example): devices by
# their choice in the opening and the closing poll, None where a device took no part.
EVENING: dict[tuple[str | None, str | None], int] = {
    ("b1", "b1"): 4,
    ("b1", "b2"): 2,
    ("undecided", "b2"): 3,
    ("b2", "undecided"): 1,
    ("b3", "b1"): 1,
    ("b1", None): 2,
    (None, "b3"): 3,
}


def stance(battle: Battle, which: str, totals: dict[str, int], *, now: int = T0, **context: Any) -> Battle:
    """Open, close and reveal a stance poll with the store's ``totals``."""
    battle = play(battle, {"type": "open_stance", "stance": which}, "close_vote", now=now)
    return play(battle, "reveal_results", now=now, totals=totals, ballots=sum(totals.values()), **context)


def test_stance_polls_are_refused_unless_the_rules_take_them() -> None:
    refused(new_battle(), {"type": "open_stance", "stance": "opening"}, "stance_off")
    assert new_battle(winner="gain").rules.takes_stances


def test_the_opening_stance_poll_asks_every_battler_and_undecided_on_the_vote_clock() -> None:
    battle = play(new_battle(stance_polls=True, vote_seconds=40), {"type": "open_stance", "stance": "opening"})
    assert battle.phase == "stance"
    (poll,) = battle.stances
    assert (poll.id, poll.stance, poll.status) == ("opening1", "opening", "open")
    assert poll.choices == ["b1", "b2", "b3", "undecided"]
    assert battle.open_vote == poll and battle.current_vote == poll
    assert timer(battle).deadline_ms == T0 + 40 * SECOND
    assert game.ballot_gate(battle) == game.BallotGate("opening1", True, T0 + 40 * SECOND, tuple(poll.choices), T0, 0)
    assert battle.log[-1].details["stance"] == "opening"


def test_a_stance_poll_closes_on_its_deadline_and_eliminates_no_one_at_its_reveal() -> None:
    battle = play(new_battle(stance_polls=True), {"type": "open_stance", "stance": "opening"})
    assert not game.due(battle, T0 + 44 * SECOND)
    closed = game.tick(battle, T0 + 45 * SECOND)
    assert closed is not None and closed.battle.stances[0].status == "closed"
    assert game.needs(closed.battle, command("reveal_results")) == game.Needs(tally="opening1")
    battle = play(closed.battle, "reveal_results", totals={"b1": 2, "undecided": 3}, ballots=5)
    assert battle.phase == "lobby" and battle.timer is None
    assert battle.stances[0].totals == {"b1": 2, "b2": 0, "b3": 0, "undecided": 3}
    assert battle.stances[0].ballots == 5
    assert status(battle) == {"b1": "in", "b2": "in", "b3": "in"}
    # Ballots are checked against it still: a late one is refused, not sent to another vote.
    assert game.ballot_gate(battle) == game.BallotGate("opening1", False, 0, ("b1", "b2", "b3", "undecided"), T0, 0)
    assert battle.minds is None


def test_each_stance_poll_is_taken_once_and_a_voided_one_may_be_taken_again() -> None:
    battle = stance(new_battle(stance_polls=True), "opening", {"b1": 1})
    refused(battle, {"type": "open_stance", "stance": "opening"}, "stance_taken")
    voided = play(
        new_battle(stance_polls=True),
        {"type": "open_stance", "stance": "opening"},
        {"type": "void_vote", "reason": "x"},
    )
    assert voided.phase == "lobby" and voided.stances[0].status == "voided"
    again = play(voided, {"type": "open_stance", "stance": "opening"})
    assert again.stances[-1].id == "opening2"


def test_the_opening_poll_is_in_the_lobby_and_the_closing_poll_once_the_final_has_a_winner() -> None:
    battle = new_battle(stance_polls=True)
    refused(battle, {"type": "open_stance", "stance": "closing"}, "wrong_phase")
    battle = stance(battle, "opening", {"b1": 1})
    battle = to_vote(battle)
    refused(battle, {"type": "open_stance", "stance": "opening"}, "wrong_phase")
    refused(battle, {"type": "open_stance", "stance": "closing"}, "wrong_phase")


def _with_a_winner(**rules: Any) -> Battle:
    battle = stance(new_battle(stance_polls=True, **rules), "opening", {"b1": 7, "undecided": 3})
    battle = confirm(vote(to_vote(battle), {"b1": 5, "b2": 1, "b3": 3}))
    return confirm(vote(to_vote(battle), {"b1": 4, "b3": 7}))


def test_revealing_the_closing_poll_keeps_the_matrix_and_returns_to_the_final() -> None:
    battle = _with_a_winner()
    assert battle.phase == "final" and battle.winner == "b3"
    battle = play(battle, {"type": "open_stance", "stance": "closing"}, "close_vote")
    poll = battle.stances[-1]
    assert poll.choices == ["b1", "b2", "b3", "undecided"]  # the eliminated b2 too
    assert game.needs(battle, command("reveal_results")) == game.Needs(tally=poll.id, transitions=("opening1", poll.id))
    battle = play(battle, "reveal_results", totals={"b1": 5}, ballots=5, transitions=EVENING)
    assert battle.phase == "final" and battle.winner == "b3"
    assert battle.minds is not None
    assert [(m.battler, m.won, m.lost, m.held, m.of) for m in battle.minds.battlers] == [
        ("b1", 1, 2, 4, 5),
        ("b2", 5, 1, 0, 10),
        ("b3", 0, 1, 0, 10),
    ]
    assert battle.log[-1].details["minds"] == {"paired": 11, "most": ["b2"]}
    refused(battle, {"type": "open_stance", "stance": "closing"}, "stance_taken")


def test_ending_the_battle_during_a_stance_poll_counts_it() -> None:
    battle = play(new_battle(stance_polls=True), {"type": "open_stance", "stance": "opening"}, "close_vote")
    battle = play(battle, "end_battle", totals={"b2": 3}, ballots=3)
    assert battle.phase == "finished"
    assert (battle.stances[0].status, battle.stances[0].totals) == (
        "closed",
        {"b1": 0, "b2": 3, "b3": 0, "undecided": 0},
    )


def test_timer_commands_run_the_stance_polls_clock() -> None:
    battle = play(new_battle(stance_polls=True), {"type": "open_stance", "stance": "opening"}, "pause_timer")
    assert timer(battle).paused
    assert game.ballot_gate(battle) == game.BallotGate("opening1", True, 0, ("b1", "b2", "b3", "undecided"), T0, 0)


def test_under_the_gain_rule_the_finals_vote_is_the_closing_poll_and_the_largest_gain_wins() -> None:
    battle = stance(new_battle(winner="gain"), "opening", {"b1": 7, "undecided": 3})
    battle = confirm(vote(to_vote(battle), {"b1": 5, "b2": 1, "b3": 3}))
    battle = play(to_vote(battle), "open_vote", "close_vote")
    final = current(battle).vote
    assert final is not None and final.stance == "closing" and not final.runoff
    assert final.choices == ["b1", "b2", "b3", "undecided"]
    assert game.needs(battle, command("reveal_results")).transitions == ("opening1", final.id)
    # b1 has the most closing votes, b3 the larger gain of the two finalists: b3 wins.
    moved = {**EVENING, ("b1", "b3"): 3}
    battle = play(battle, "reveal_results", totals={"b1": 8, "b3": 3}, ballots=11, transitions=moved)
    assert proposal_of(battle) == Proposal(leaving=["b1"])
    battle = confirm(battle)
    assert battle.winner == "b3"
    refused(battle, {"type": "open_stance", "stance": "closing"}, "stance_taken")


def test_under_the_gain_rule_equal_gains_go_to_the_tie_rule() -> None:
    battle = stance(new_battle(winner="gain", ties="host"), "opening", {"b1": 1})
    battle = confirm(vote(to_vote(battle), {"b1": 5, "b2": 1, "b3": 3}))
    battle = play(to_vote(battle), "open_vote", "close_vote")
    battle = play(battle, "reveal_results", totals={"b1": 9}, ballots=9, transitions={("b1", "b1"): 9})
    assert proposal_of(battle) == Proposal(leaving=[], tied=["b1", "b3"], need=1, method="host")


def test_the_stance_polls_of_an_evening_are_bounded_voided_ones_included() -> None:
    battle = new_battle(stance_polls=True)
    for _ in range(game.MAX_VOTES_PER_ROUND):
        battle = play(battle, {"type": "open_stance", "stance": "opening"}, {"type": "void_vote", "reason": "Again"})
    refused(battle, {"type": "open_stance", "stance": "opening"}, "limit_reached")


def test_a_voided_closing_poll_goes_back_to_the_final_and_its_ballots_gate_stays_closed() -> None:
    battle = play(_with_a_winner(), {"type": "open_stance", "stance": "closing"}, {"type": "void_vote", "reason": "x"})
    assert battle.phase == "final" and battle.winner == "b3" and battle.minds is None
    poll = battle.stances[-1]
    assert game.ballot_gate(battle) == game.BallotGate(poll.id, False, 0, tuple(poll.choices), T0, 0)


# --- the remote audience (docs/protocol.md, "The remote audience", "Vote windows") -------


def test_a_sync_cue_counts_up_on_the_servers_clock_and_needs_the_remote_link() -> None:
    battle = new_battle(remote=True)
    first = step(battle, "sync_cue", now=T0 + 5).battle
    assert first.sync_cue == model.SyncCue(n=1, at_ms=T0 + 5)
    second = step(first, "sync_cue", now=T0 + 9).battle
    assert second.sync_cue == model.SyncCue(n=2, at_ms=T0 + 9)
    assert second.log[-1].details == {"n": 2}
    refused(new_battle(), "sync_cue", "remote_off")
    ended = play(battle, "end_battle")
    refused(ended, "sync_cue", "wrong_phase")


def test_a_remote_delay_is_its_own_else_the_default_and_over_the_maximum_the_halls() -> None:
    rules = Rules(remote=True, remote_delay_seconds=10, max_delay_seconds=30)
    assert rules.remote_delay_ms(None) == 10_000
    assert rules.remote_delay_ms(20_000) == 20_000
    assert rules.remote_delay_ms(30_000) == 30_000
    assert rules.remote_delay_ms(30_001) == 0
    assert rules.remote_delay_ms(0) == 0
    assert Rules(remote=True, remote_delay_seconds=40, max_delay_seconds=30).remote_delay_ms(None) == 0
    # The remote link off: every window is the hall's.
    assert Rules(remote_delay_seconds=10).remote_delay_ms(20_000) == 0
    assert Rules(remote_delay_seconds=10).max_delay_ms == 0
    assert rules.max_delay_ms == 30_000


def _gate(battle: Battle) -> game.BallotGate:
    gate = game.ballot_gate(battle)
    assert gate is not None
    return gate


def test_a_remote_window_is_the_halls_shifted_by_its_delay() -> None:
    battle = to_vote(new_battle(remote=True, vote_seconds=45))
    opened = play(battle, "open_vote", now=T0)
    gate = _gate(opened)
    assert (gate.opened_ms, gate.closed_ms, gate.deadline_ms) == (T0, 0, T0 + 45 * SECOND)
    delay = 20 * SECOND
    assert game.window_refusal(gate, 0, T0) is None
    assert game.window_refusal(gate, delay, T0 + delay - 1) == "vote_not_open"
    assert game.window_refusal(gate, delay, T0 + delay) is None
    # The hall's deadline passed, the timer has not closed it yet: the hall is out, the stream not.
    assert game.window_refusal(gate, 0, T0 + 45 * SECOND) == "vote_closed"
    assert game.window_refusal(gate, delay, T0 + 45 * SECOND) is None
    assert game.window_refusal(gate, delay, T0 + 65 * SECOND - 1) is None
    assert game.window_refusal(gate, delay, T0 + 65 * SECOND) == "vote_closed"
    # Closed by the host at T0 + 30 s: the stream shows the close at T0 + 50 s.
    closed = play(opened, "close_vote", now=T0 + 30 * SECOND)
    gate = _gate(closed)
    assert (gate.open, gate.closed_ms) == (False, T0 + 30 * SECOND)
    assert game.window_refusal(gate, 0, T0 + 30 * SECOND) == "vote_closed"
    assert game.window_refusal(gate, delay, T0 + 45 * SECOND) is None
    assert game.window_refusal(gate, delay, T0 + 50 * SECOND - 1) is None
    assert game.window_refusal(gate, delay, T0 + 50 * SECOND) == "vote_closed"


def test_a_paused_vote_keeps_a_remote_window_open_once_it_opened() -> None:
    paused = play(to_vote(new_battle(remote=True)), "open_vote", "pause_timer", now=T0)
    gate = _gate(paused)
    assert gate.deadline_ms == 0
    assert game.window_refusal(gate, 5 * SECOND, T0 + 4 * SECOND) == "vote_not_open"
    assert game.window_refusal(gate, 5 * SECOND, T0 + 3600 * SECOND) is None


@pytest.mark.parametrize("end", ["reveal", "void", "end"])
def test_no_remote_window_runs_once_the_vote_is_counted_voided_or_ended(end: str) -> None:
    closed = play(to_vote(new_battle(remote=True)), "open_vote", "close_vote", now=T0)
    assert _gate(closed).closed_ms == T0
    later = T0 + 120 * SECOND
    if end == "reveal":
        after = play(closed, "reveal_results", now=later, totals={"b1": 1}, ballots=1)
    elif end == "void":
        after = play(closed, {"type": "void_vote", "reason": "a fault"}, now=later)
    else:
        after = play(closed, "end_battle", now=later, totals={"b1": 1}, ballots=1)
    gate = game.ballot_gate(after)
    assert gate is None or gate.closed_ms == 0
    assert gate is None or game.window_refusal(gate, 5 * SECOND, T0 + 6 * SECOND) == "vote_closed"


def test_the_reveal_waits_for_the_longest_remote_delay_and_says_how_long() -> None:
    closed = play(
        to_vote(new_battle(remote=True, remote_delay_seconds=5, max_delay_seconds=30)),
        "open_vote",
        "close_vote",
        now=T0,
    )
    assert game.needs(closed, command("reveal_results")).remote_delays
    assert not game.needs(
        play(to_vote(new_battle()), "open_vote", "close_vote"), command("reveal_results")
    ).remote_delays
    assert not game.needs(closed, command("sync_cue")).remote_delays
    # 25 s is the longest delay kept; 40 s is over the maximum (the hall's window).
    delays = (None, 12_000, 25_000, 40_000)
    refusal = refused(closed, "reveal_results", "remote_wait", now=T0 + 10_000, remote_delays=delays, totals={})
    assert refusal.params == {"wait_ms": 15_000, "seconds": 15}
    refusal = refused(closed, "reveal_results", "remote_wait", now=T0 + 24_001, remote_delays=delays, totals={})
    assert refusal.params == {"wait_ms": 999, "seconds": 1}
    refused(closed, "end_battle", "remote_wait", now=T0 + 24_999, remote_delays=delays, totals={})
    step(closed, "reveal_results", now=T0 + 25_000, remote_delays=delays, totals={"b1": 2}, ballots=2)
    # No device with its own delay: the default is waited for (a new phone would have it).
    refused(closed, "reveal_results", "remote_wait", now=T0 + 4_999, totals={})
    step(closed, "reveal_results", now=T0 + 5_000, totals={"b1": 2}, ballots=2)


def test_without_the_remote_link_the_reveal_never_waits() -> None:
    closed = play(to_vote(new_battle(remote_delay_seconds=5)), "open_vote", "close_vote", now=T0)
    assert game.remote_wait_ms(closed, (20_000,), T0) == 0
    step(closed, "reveal_results", now=T0, remote_delays=(20_000,), totals={"b1": 1}, ballots=1)


def test_with_every_remote_delay_at_zero_the_reveal_never_waits_even_on_an_earlier_clock() -> None:
    closed = play(to_vote(new_battle(remote=True)), "open_vote", "close_vote", now=T0)
    assert game.remote_wait_ms(closed, (0, None), T0 - 5 * SECOND) == 0
    assert game.remote_wait_ms(closed, (1,), T0 - 5 * SECOND) == 5 * SECOND + 1


# --- hall and online (docs/rules.md, "Hall and online") --------------------------------------


def round_of(battle: Battle) -> Round:
    assert battle.round is not None
    return battle.round


def vote_of(battle: Battle) -> model.Vote:
    vote = round_of(battle).vote
    assert vote is not None
    return vote


def reveal_split(combine: str, totals: dict[str, int], online: dict[str, int], **rules: Any) -> Battle:
    """A battle of three whose first vote is revealed with ``totals`` of which ``online`` came from the stream."""
    closed = play(to_vote(new_battle(remote=True, combine=combine, **rules)), "open_vote", "close_vote", now=T0)
    return play(closed, "reveal_results", now=T0, totals=totals, online=online, ballots=sum(totals.values()))


def test_the_reveal_keeps_the_online_part_and_the_rule_that_decided() -> None:
    battle = reveal_split("combined", {"b1": 5, "b2": 3, "b3": 4}, {"b1": 4, "b3": 1})
    vote = vote_of(battle)
    assert (vote.totals, vote.online) == ({"b1": 5, "b2": 3, "b3": 4}, {"b1": 4, "b2": 0, "b3": 1})
    assert (vote.combine, vote.online_share) == ("combined", 50)
    details = battle.log[-1].details
    assert (details["online"], details["combine"], details["online_share"]) == (vote.online, "combined", 50)
    assert "scores" not in details
    assert round_of(battle).proposal == Proposal(leaving=["b2"])
    # Without the remote link there is no online part on the record.
    plain = vote_of(play(to_vote(new_battle()), "open_vote", "close_vote", "reveal_results", totals={"b1": 1}))
    assert (plain.online, plain.combine, plain.online_share) == (None, None, None)


def test_under_the_hall_rule_the_online_ballots_are_shown_and_count_for_nothing() -> None:
    # The totals would send b2 (3) home; the hall alone has b1 at 1, b2 at 3, b3 at 3.
    battle = reveal_split("hall", {"b1": 5, "b2": 3, "b3": 4}, {"b1": 4, "b3": 1})
    assert round_of(battle).proposal == Proposal(leaving=["b1"])
    assert battle.log[-1].details["scores"] == {"b1": 1, "b2": 3, "b3": 3}


def test_weighted_figures_are_the_shares_scaled_to_whole_numbers() -> None:
    # docs/rules.md's example: 60 in the hall, 40 online, a share of 50.
    vote = model.Vote(
        id="r1v1", choices=["b1", "b2"], mode="keep", opened_ms=T0,
        totals={"b1": 40, "b2": 60}, online={"b1": 10, "b2": 30}, combine="weighted", online_share=50,
    )  # fmt: skip
    assert game.decisive(vote) == {"b1": 90_000, "b2": 150_000}
    # A share of 100 is the online part alone, scaled; 0 the hall's alone.
    assert game.decisive(vote.model_copy(update={"online_share": 100})) == {"b1": 10 * 60 * 100, "b2": 30 * 60 * 100}
    assert game.decisive(vote.model_copy(update={"online_share": 0})) == {"b1": 30 * 40 * 100, "b2": 30 * 40 * 100}
    # One part without ballots: the other's counts decide.
    no_stream = vote.model_copy(update={"online": {"b1": 0, "b2": 0}})
    assert game.decisive(no_stream) == {"b1": 40, "b2": 60}
    no_hall = vote.model_copy(update={"totals": {"b1": 10, "b2": 30}})
    assert game.decisive(no_hall) == {"b1": 10, "b2": 30}
    assert game.decisive(vote.model_copy(update={"combine": "combined"})) == {"b1": 40, "b2": 60}
    assert game.decisive(vote.model_copy(update={"combine": "hall"})) == {"b1": 30, "b2": 30}
    assert game.decisive(vote.model_copy(update={"online": None})) == {"b1": 40, "b2": 60}


def test_a_weighted_vote_where_the_stream_outweighs_a_bigger_hall() -> None:
    # Hall: b1 8, b2 6, b3 6 (20); online: b1 0, b2 1, b3 3 (4); 75 % online.
    battle = reveal_split("weighted", {"b1": 8, "b2": 7, "b3": 9}, {"b2": 1, "b3": 3}, online_share=75, ties="host")
    scores = battle.log[-1].details["scores"]
    assert scores == {"b1": 25 * 8 * 4, "b2": 25 * 6 * 4 + 75 * 1 * 20, "b3": 25 * 6 * 4 + 75 * 3 * 20}
    # b1 leads the hall and leaves: no online ballot for it weighs more than its lead.
    assert round_of(battle).proposal == Proposal(leaving=["b1"])


def test_equal_weighted_figures_tie_and_go_to_the_tie_rule() -> None:
    # b1 and b2 at 2 of 6 in the hall and 1 of 2 online each (500), b3 at 2 and none (200): b3 leaves.
    battle = reveal_split("weighted", {"b1": 3, "b2": 3, "b3": 2}, {"b1": 1, "b2": 1})
    assert round_of(battle).proposal == Proposal(leaving=["b3"])
    # b3 now has 2 of 4 online (1000): b1 and b2 tie at 700 for the one place out.
    tied = reveal_split("weighted", {"b1": 3, "b2": 3, "b3": 4}, {"b1": 1, "b2": 1, "b3": 2}, ties="host")
    assert round_of(tied).proposal == Proposal(leaving=[], tied=["b1", "b2"], need=1, method="host")


def test_no_remote_wait_before_a_vote_or_while_it_is_open() -> None:
    lobby = new_battle(remote=True, remote_delay_seconds=5)
    assert game.remote_wait_ms(lobby, (20_000,), T0) == 0
    opened = play(to_vote(lobby), "open_vote", now=T0)
    assert game.remote_wait_ms(opened, (20_000,), T0 + 1) == 0
    assert game.needs(opened, command("end_battle")).remote_delays
    assert not game.needs(play(to_vote(new_battle()), "open_vote"), command("end_battle")).remote_delays


def test_a_closed_stance_poll_keeps_its_remote_windows_until_its_reveal() -> None:
    opened = play(new_battle(remote=True, stance_polls=True), {"type": "open_stance", "stance": "opening"}, now=T0)
    closed = play(opened, "close_vote", now=T0 + 10 * SECOND)
    gate = _gate(closed)
    assert (gate.vote_id, gate.open, gate.opened_ms, gate.closed_ms) == ("opening1", False, T0, T0 + 10 * SECOND)
    assert game.window_refusal(gate, 3 * SECOND, T0 + 13 * SECOND - 1) is None
    assert game.window_refusal(gate, 3 * SECOND, T0 + 13 * SECOND) == "vote_closed"
    refused(closed, "reveal_results", "remote_wait", now=T0 + 10 * SECOND, remote_delays=(3 * SECOND,), totals={})
    back = play(closed, "reveal_results", now=T0 + 13 * SECOND, remote_delays=(3 * SECOND,), totals={"b1": 1})
    assert back.phase == "lobby" and _gate(back).closed_ms == 0
    assert back.stances[0].online == {"b1": 0, "b2": 0, "b3": 0, "undecided": 0}


def test_a_weighted_vote_without_a_recorded_share_weighs_half_and_half() -> None:
    vote = model.Vote(
        id="r1v1", choices=["b1", "b2"], mode="keep", opened_ms=T0,
        totals={"b1": 40, "b2": 60}, online={"b1": 10, "b2": 30}, combine="weighted",
    )  # fmt: skip
    assert game.decisive(vote) == {"b1": 90_000, "b2": 150_000}


def test_a_runoff_is_decided_by_the_same_rule_on_its_own_two_parts() -> None:
    tied = reveal_split("hall", {"b1": 2, "b2": 2, "b3": 5}, {"b3": 1})
    assert round_of(tied).proposal == Proposal(leaving=[], tied=["b1", "b2"], need=1, method="runoff")
    runoff = play(tied, "open_vote", "close_vote", now=T0)
    # The runoff's totals favour b2; its hall part alone, b1: under `hall`, b2 leaves.
    decided = play(runoff, "reveal_results", now=T0, totals={"b1": 3, "b2": 4}, online={"b2": 3}, ballots=7)
    assert round_of(decided).proposal == Proposal(leaving=["b2"], decided_by="runoff")
    assert vote_of(decided).online == {"b1": 0, "b2": 3}
