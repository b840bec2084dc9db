"""The store contract (battles.stores.base), run against both stores.

Every test that takes ``store`` runs twice: on the embedded store (a SQLite file in
the test's tmp_path) and on the Redis store (the tests' own redis-server, flushed
before each test). Battles are built with the real game core and real commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from battles import announcements, game
from battles import commands as c
from battles.errors import Refused, Unavailable
from battles.game import Context
from battles.model import MAX_DECISIONS, Battle, BattleDraft, BattlerDraft, Block, Decision, Submission
from battles.stores import EmbeddedStore, RedisStore, open_store
from battles.stores.base import BallotReceipt, Secrets, Store, Tally, cooldown_left
from battles.stores.redis import _ORPHAN_HINT_MS, SIGNING_KEY, _Hint, _review_hints, _Stored, parse_sentinel_url
from tests.servers import RedisServer

T0 = 1_700_000_000_000
CODE = "AB12"
DRAFT = BattleDraft(
    title="Aarhus 2079",
    topic="The sea has risen",
    battlers=[
        BattlerDraft(name="Asha", vision="A floating harbour town"),
        BattlerDraft(name="Bo", vision="Every roof a forest"),
        BattlerDraft(name="Camille", vision="A four-day week", affiliation="Folkeuniversitetet"),
    ],
)
CHOICES = ["b1", "b2", "b3"]


# --- building battles with the real game core ----------------------------------------


async def created(store: Store, code: str = CODE, now_ms: int = T0) -> Battle:
    battle = game.create(code, DRAFT, now_ms)
    assert await store.create(battle, Secrets.mint())
    return battle


def applied(battle: Battle, command: Any, now_ms: int = T0) -> Battle:
    return game.apply(battle, command, Context(now_ms=now_ms)).battle


def announced(battle: Battle) -> bytes:
    """What a commit of this version announces, in these tests: its code and version."""
    return f"{battle.code} v{battle.version}".encode()


def submissions_in(message: bytes) -> list[Submission]:
    """The submissions a store announced (both stores write the same schema: on Redis, Lua
    writes it from the stored JSON)."""
    decoded = announcements.decode(message)
    assert isinstance(decoded, announcements.SubmissionsChanged), decoded
    return decoded.items


async def commit(store: Store, battle: Battle) -> bool:
    return await store.commit(battle, announced(battle))


async def announce(store: Store, code: str, message: bytes) -> None:
    """Commit the battle's next version (creating the battle first if need be), announcing ``message``."""
    battle = await store.load(code) or await created(store, code)
    assert await store.commit(battle.model_copy(update={"version": battle.version + 1}), message)


async def committed(store: Store, battle: Battle, command: Any, now_ms: int = T0) -> Battle:
    new = applied(battle, command, now_ms)
    assert await commit(store, new)
    return new


async def voting(store: Store, code: str = CODE, now_ms: int = T0) -> Battle:
    """A battle whose first vote has just opened (deadline: now + 45 s)."""
    battle = await committed(store, await created(store, code, now_ms), c.StartRound(type="start_round"), now_ms)
    while battle.phase != "vote":
        battle = await committed(store, battle, c.Next(type="next"), now_ms)
    battle = await committed(store, battle, c.OpenVote(type="open_vote"), now_ms)
    assert battle.open_vote is not None and battle.open_vote.id == "r1v1"
    assert battle.timer is not None and battle.timer.deadline_ms == now_ms + 45_000
    return battle


def deadline_of(battle: Battle) -> int:
    assert battle.timer is not None and battle.timer.deadline_ms is not None
    return battle.timer.deadline_ms


async def refusal(call: Awaitable[object]) -> str:
    with pytest.raises(Refused) as refused:
        await call
    return refused.value.reason


async def eventually(check: Callable[[], Any], timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"still not true after {timeout_s}s: {check}")
        await asyncio.sleep(0.02)


# --- battles ----------------------------------------------------------------------------


async def test_a_created_battle_loads_as_it_was_stored(store: Store) -> None:
    battle = game.create(CODE, DRAFT, T0)
    tokens = Secrets.mint()
    assert await store.create(battle, tokens)
    assert await store.load(CODE) == battle
    assert await store.secrets(CODE) == tokens
    assert await store.load("NONE") is None
    assert await store.secrets("NONE") is None


async def test_a_code_that_is_taken_is_not_created_again(store: Store) -> None:
    first = await created(store)
    tokens = await store.secrets(CODE)
    other = game.create(CODE, DRAFT.model_copy(update={"title": "Copenhagen 2079"}), T0 + 1)
    assert not await store.create(other, Secrets.mint())
    assert await store.load(CODE) == first
    assert await store.secrets(CODE) == tokens


async def test_commit_replaces_only_the_version_the_change_was_decided_on(store: Store) -> None:
    lobby = await created(store)
    started = applied(lobby, c.StartRound(type="start_round"))
    assert await commit(store, started)
    assert await store.load(CODE) == started
    # Decided on version 0 again: another change got there first.
    assert not await commit(store, applied(lobby, c.StartRound(type="start_round", challenge="Late")))
    # Two versions ahead: never decided on what is stored.
    assert not await commit(store, applied(applied(started, c.Next(type="next")), c.Next(type="next")))
    assert not await commit(store, game.create("NONE", DRAFT, T0).model_copy(update={"version": 1}))
    assert await store.load(CODE) == started


async def test_of_concurrent_commits_from_one_version_exactly_one_wins(store: Store) -> None:
    lobby = await created(store)
    rivals = [applied(lobby, c.StartRound(type="start_round", challenge=f"Twist {n}")) for n in range(10)]
    results = await asyncio.gather(*(commit(store, rival) for rival in rivals))
    assert sorted(results) == [False] * 9 + [True]
    assert await store.load(CODE) == rivals[results.index(True)]


async def test_secrets_belong_to_their_battle(store: Store) -> None:
    tokens = {code: Secrets.mint() for code in ("AB12", "CD34")}
    for code, minted in tokens.items():
        assert await store.create(game.create(code, DRAFT, T0), minted)
    assert {code: await store.secrets(code) for code in tokens} == tokens
    assert tokens["AB12"] != tokens["CD34"]


# --- ballots ------------------------------------------------------------------------------


async def test_ballots_are_refused_outside_the_open_vote(store: Store) -> None:
    await created(store, "LOBY")
    battle = await voting(store)
    deadline = deadline_of(battle)

    assert await refusal(store.cast_ballot("LOBY", "r1v1", "d1", "b1", "x1", T0)) == "wrong_vote"
    assert await refusal(store.cast_ballot("NONE", "r1v1", "d1", "b1", "x1", T0)) == "wrong_vote"
    assert await refusal(store.cast_ballot(CODE, "r1v2", "d1", "b1", "x1", T0)) == "wrong_vote"
    assert await refusal(store.cast_ballot(CODE, "", "d1", "b1", "x1", T0)) == "wrong_vote"
    assert await refusal(store.cast_ballot(CODE, "r1v1", "d1", "b9", "x1", T0)) == "bad_choice"
    assert await refusal(store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", deadline)) == "vote_closed"
    assert await refusal(store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", deadline + 60_000)) == "vote_closed"
    # A refused ballot records nothing, not even its id.
    assert await store.tally(CODE, "r1v1") == Tally()
    assert await store.ballot_of(CODE, "r1v1", "d1") is None
    assert await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", deadline - 1) == BallotReceipt("counted", "b1")


async def test_a_device_records_ballot_ids_up_to_its_bound_per_vote(store: Store) -> None:
    """docs/security.md, bounds: each new ballot id is kept (to count a resend once), so
    one phone sending new ids without end would grow the vote without end."""
    await voting(store)
    most = game.MAX_BALLOTS_PER_DEVICE
    receipts = [await store.cast_ballot(CODE, "r1v1", "d1", CHOICES[n % 2], f"id-{n}", T0) for n in range(most)]
    assert receipts[-1] == BallotReceipt("changed", CHOICES[(most - 1) % 2])
    with pytest.raises(Refused) as refused:
        await store.cast_ballot(CODE, "r1v1", "d1", CHOICES[2], "one-more", T0)
    assert (refused.value.reason, refused.value.params) == ("limit_reached", {"limit": "ballots", "most": most})
    # Nothing moved; a resend of a recorded ballot is still acknowledged; others vote on.
    assert await store.ballot_of(CODE, "r1v1", "d1") == CHOICES[(most - 1) % 2]
    assert await store.cast_ballot(CODE, "r1v1", "d1", CHOICES[0], "id-0", T0) == BallotReceipt(
        "duplicate", CHOICES[(most - 1) % 2]
    )
    assert await store.cast_ballot(CODE, "r1v1", "d2", CHOICES[2], "d2-1", T0) == BallotReceipt("counted", CHOICES[2])
    assert await store.tally(CODE, "r1v1") == Tally({CHOICES[(most - 1) % 2]: 1, CHOICES[2]: 1}, 2)


async def test_a_paused_vote_has_no_deadline(store: Store) -> None:
    battle = await voting(store)
    deadline = deadline_of(battle)
    paused = await committed(store, battle, c.PauseTimer(type="pause_timer"), T0 + 1000)
    assert game.ballot_gate(paused) == game.BallotGate("r1v1", True, 0, tuple(CHOICES), T0, 0)
    receipt = await store.cast_ballot(CODE, "r1v1", "d1", "b2", "x1", deadline + 3_600_000)
    assert receipt == BallotReceipt("counted", "b2")
    assert await store.due(deadline + 3_600_000) == []


async def test_a_device_has_one_ballot_that_it_may_change(store: Store) -> None:
    await voting(store)
    cast = store.cast_ballot
    assert await cast(CODE, "r1v1", "d1", "b1", "x1", T0) == BallotReceipt("counted", "b1")
    assert await cast(CODE, "r1v1", "d1", "b1", "x2", T0) == BallotReceipt("unchanged", "b1")
    assert await cast(CODE, "r1v1", "d1", "b3", "x3", T0) == BallotReceipt("changed", "b3")
    # A late retry of an earlier ballot moves nothing and reports the current choice.
    assert await cast(CODE, "r1v1", "d1", "b1", "x1", T0) == BallotReceipt("duplicate", "b3")
    assert await cast(CODE, "r1v1", "d1", "b3", "x3", T0) == BallotReceipt("duplicate", "b3")
    # Ballot ids are per device: another device may use the same one.
    assert await cast(CODE, "r1v1", "d2", "b3", "x1", T0) == BallotReceipt("counted", "b3")
    assert await store.ballot_of(CODE, "r1v1", "d1") == "b3"
    assert await store.ballot_of(CODE, "r1v1", "d3") is None
    assert await store.ballot_of(CODE, "r1v2", "d1") is None
    assert await store.tally(CODE, "r1v1") == Tally(totals={"b3": 2}, ballots=2)
    assert await store.ballots(CODE, "r1v1") == {"d1": "b3", "d2": "b3"}
    assert await store.ballots(CODE, "r1v2") == {}


async def test_500_devices_voting_at_once_are_counted_exactly(store: Store) -> None:
    await voting(store)
    rng = random.Random(2079)
    # Each device casts one to four ballots in turn, changing its mind or not, and
    # sends each ballot one to three times at once (a phone retrying on a bad network).
    plans = {
        f"device-{n}": [(f"ballot-{n}-{k}", rng.choice(CHOICES), rng.randint(1, 3)) for k in range(rng.randint(1, 4))]
        for n in range(500)
    }

    async def vote(device: str) -> list[list[BallotReceipt]]:
        receipts = []
        for ballot_id, choice, sends in plans[device]:
            receipts.append(
                list(
                    await asyncio.gather(
                        *(store.cast_ballot(CODE, "r1v1", device, choice, ballot_id, T0) for _ in range(sends))
                    )
                )
            )
        return receipts

    results = dict(zip(plans, await asyncio.gather(*(vote(device) for device in plans))))

    final = {device: plan[-1][1] for device, plan in plans.items()}
    assert await store.tally(CODE, "r1v1") == Tally(totals=dict(Counter(final.values())), ballots=500)
    assert await store.ballots(CODE, "r1v1") == final
    for device, plan in plans.items():
        assert await store.ballot_of(CODE, "r1v1", device) == final[device]
        previous = None
        for (ballot_id, choice, sends), receipts in zip(plan, results[device]):
            expected = "counted" if previous is None else "unchanged" if choice == previous else "changed"
            assert sorted(r.status for r in receipts) == sorted([expected] + ["duplicate"] * (sends - 1)), ballot_id
            assert {r.choice for r in receipts} == {choice}
            previous = choice


async def test_transitions_count_devices_by_their_two_choices_and_name_none(store: Store) -> None:
    # docs/rules.md, "Who moved minds": counts only leave the store.
    draft = DRAFT.model_copy(update={"rules": DRAFT.rules.model_copy(update={"stance_polls": True})})
    battle = game.create(CODE, draft, T0)
    assert await store.create(battle, Secrets.mint())
    battle = await committed(store, battle, c.OpenStance(type="open_stance", stance="opening"))
    for device, choice in (("d1", "b1"), ("d2", "undecided"), ("d3", "b2"), ("d4", "b2"), ("gone", "b3")):
        await store.cast_ballot(CODE, "opening1", device, choice, f"{device}-1", T0)
    await store.cast_ballot(CODE, "opening1", "d1", "b2", "d1-2", T0)  # a change of mind: the newest counts
    battle = await committed(store, battle, c.CloseVote(type="close_vote"))
    battle = game.apply(battle, c.RevealResults(type="reveal_results"), Context(now_ms=T0, totals={})).battle
    assert await commit(store, battle)
    battle = await committed(store, battle, c.StartRound(type="start_round"))
    while battle.phase != "vote":
        battle = await committed(store, battle, c.Next(type="next"))
    battle = await committed(store, battle, c.OpenVote(type="open_vote"))
    for device, choice in (("d1", "b2"), ("d2", "b1"), ("d3", "b2"), ("d4", "b1"), ("late", "b1")):
        await store.cast_ballot(CODE, "r1v1", device, choice, f"{device}-3", T0)
    assert await store.transitions(CODE, "opening1", "r1v1") == {
        ("b2", "b2"): 2, ("undecided", "b1"): 1, ("b2", "b1"): 1, ("b3", None): 1, (None, "b1"): 1,
    }  # fmt: skip
    assert await store.transitions(CODE, "opening1", "r9v9") == {
        ("b2", None): 3,
        ("undecided", None): 1,
        ("b3", None): 1,
    }
    assert await store.transitions(CODE, "r9v9", "r9v8") == {}


async def test_a_closed_vote_refuses_ballots_and_its_tally_stays(store: Store) -> None:
    battle = await voting(store)
    for device, choice in (("d1", "b1"), ("d2", "b2"), ("d3", "b2")):
        await store.cast_ballot(CODE, "r1v1", device, choice, "x1", T0 + 1000)
    before = await store.tally(CODE, "r1v1")
    assert before == Tally(totals={"b1": 1, "b2": 2}, ballots=3)

    await committed(store, battle, c.CloseVote(type="close_vote"), T0 + 2000)
    assert await refusal(store.cast_ballot(CODE, "r1v1", "d4", "b1", "x1", T0 + 2001)) == "vote_closed"
    assert await refusal(store.cast_ballot(CODE, "r1v1", "d1", "b3", "x2", T0 + 2001)) == "vote_closed"
    # A phone resending its acknowledged ballot after the close hears that it counted.
    assert await store.cast_ballot(CODE, "r1v1", "d2", "b2", "x1", T0 + 2001) == BallotReceipt("duplicate", "b2")
    assert await store.tally(CODE, "r1v1") == before
    assert await store.ballot_of(CODE, "r1v1", "d1") == "b1"


# --- reactions ----------------------------------------------------------------------------

DEVICES = itertools.count()  # a new device per reaction, where the cooldown is not the point


async def test_a_device_reacts_once_per_cooldown_whatever_its_sockets(store: Store) -> None:
    await store.react(CODE, 1, "b1", "applause", "d1", T0, 800)
    # The same device again, from another socket or process: refused, with the wait.
    assert (await refusal(store.react(CODE, 1, "b2", "fire", "d1", T0 + 300, 800))) == "cooldown"
    with pytest.raises(Refused) as refused:
        await store.react(CODE, 1, "b2", "fire", "d1", T0 + 300, 800)
    assert 0 < refused.value.params["wait_ms"] <= 800
    await store.react(CODE, 1, "b1", "applause", "d2", T0 + 300, 800)  # another device
    await store.react("CD34", 1, "b1", "applause", "d1", T0 + 300, 800)  # another battle
    assert await store.reactions(CODE, 1) == {"b1": {"applause": 2}}


async def test_a_reaction_cooldown_runs_on_the_time_passed_in(store: Store) -> None:
    """docs/protocol.md, ``react``: the device's last reaction is at the ``now_ms`` it came
    with, whatever the store's own clock says, and whatever cool-down it was counted under."""
    await store.react(CODE, 1, "b1", "fire", "d1", T0, 0)
    with pytest.raises(Refused) as refused:
        await store.react(CODE, 1, "b1", "fire", "d1", T0 + 300, 800)
    assert refused.value.params == {"wait_ms": 500}
    await store.react(CODE, 1, "b1", "fire", "d1", T0 + 800, 800)  # at once, not 800 ms of wall clock later
    with pytest.raises(Refused) as refused:
        await store.react(CODE, 1, "b1", "fire", "d1", T0 + 1000, 800)
    assert refused.value.params == {"wait_ms": 600}
    assert await store.reactions(CODE, 1) == {"b1": {"fire": 2}}


async def test_reactions_are_counted_per_battle_round_battler_and_kind(store: Store) -> None:
    for _ in range(3):
        await store.react(CODE, 1, "b1", "applause", f"d{next(DEVICES)}", T0, 1)
    await store.react(CODE, 1, "b1", "yawn", f"d{next(DEVICES)}", T0, 1)
    await store.react(CODE, 1, "b2", "fire", f"d{next(DEVICES)}", T0, 1)
    await store.react(CODE, 2, "b2", "idea", f"d{next(DEVICES)}", T0, 1)
    await store.react("CD34", 1, "b1", "applause", f"d{next(DEVICES)}", T0, 1)
    await asyncio.gather(*(store.react(CODE, 1, "b3", "idea", f"d{next(DEVICES)}", T0, 1) for _ in range(50)))
    assert await store.reactions(CODE, 1) == {
        "b1": {"applause": 3, "yawn": 1},
        "b2": {"fire": 1},
        "b3": {"idea": 50},
    }
    assert await store.reactions(CODE, 2) == {"b2": {"idea": 1}}
    assert await store.reactions(CODE, 3) == {}


async def test_a_turn_keeps_the_reactions_the_store_counted_for_it(store: Store) -> None:
    # What the hub does when a command ends a turn: the round's counts go in with it, and
    # the turn keeps its speaker's (model.Turn.reactions; the charts draw them).
    started = await committed(store, await created(store), c.StartRound(type="start_round"))
    speaking = await committed(store, started, c.Next(type="next"))
    for kind in ("applause", "applause", "fire"):
        await store.react(CODE, 1, "b1", kind, f"d{next(DEVICES)}", T0, 1)
    counts = await store.reactions(CODE, 1)
    ended = game.apply(speaking, c.Next(type="next"), Context(now_ms=T0 + 90_000, engagement=counts)).battle
    assert await commit(store, ended)
    loaded = await store.load(CODE)
    assert loaded is not None and loaded.rounds[0].turns[0].reactions == {"applause": 2, "fire": 1}
    assert loaded.rounds[0].turns[1].reactions is None  # Bo speaks now


# --- the timer index ----------------------------------------------------------------------


# --- challenges and questions from phones -------------------------------------------------


def sent(device: str, text: str = "What about the harbour?", at_ms: int = T0, **fields: Any) -> Submission:
    return Submission.model_validate(
        {"id": "s0", "kind": "question", "text": text, "device": device, "at_ms": at_ms} | fields
    )


async def submitted(store: Store, device: str, at_ms: int = T0, code: str = CODE, **fields: Any) -> Submission:
    return await store.submit(code, sent(device, at_ms=at_ms, **fields), 0, 3, 10)


async def test_submissions_are_numbered_in_order_and_kept_with_their_battle(store: Store) -> None:
    first = await store.submit(CODE, sent("d1", nickname="Ida"), 0, 3, 10)
    second = await store.submit(CODE, sent("d2", kind="challenge", text="Only 3 words"), 0, 3, 10)
    held = await store.submit(CODE, sent("d3", status="held", held_for="lort*"), 0, 3, 10)
    assert [first.id, second.id, held.id] == ["s1", "s2", "s3"]
    assert first.rev < second.rev < held.rev
    assert await store.submissions(CODE) == [first, second, held]
    assert await store.submission(CODE, "s3") == held and held.held_for == "lort*" and held.status == "held"
    assert await store.submission(CODE, "s9") is None
    assert (await store.submit("CD34", sent("d1"), 0, 3, 10)).id == "s1"  # another battle counts its own


async def test_a_device_submits_once_per_cooldown_whatever_its_sockets(store: Store) -> None:
    await store.submit(CODE, sent("d1"), 10_000, 3, 10)
    with pytest.raises(Refused) as refused:
        await store.submit(CODE, sent("d1", at_ms=T0 + 300), 10_000, 3, 10)
    assert refused.value.reason == "too_soon" and 0 < refused.value.params["wait_ms"] <= 10_000
    await store.submit(CODE, sent("d2", at_ms=T0 + 300), 10_000, 3, 10)  # another device
    assert len(await store.submissions(CODE)) == 2


async def test_a_submission_cooldown_runs_on_the_time_passed_in(store: Store) -> None:
    """docs/protocol.md, ``submit``: the cool-down counts from the last submission's
    ``at_ms``, whatever the store's own clock says and whatever cool-down it came under."""
    await store.submit(CODE, sent("d1"), 0, 3, 10)
    with pytest.raises(Refused) as refused:
        await store.submit(CODE, sent("d1", at_ms=T0 + 300), 10_000, 3, 10)
    assert (refused.value.reason, refused.value.params) == ("too_soon", {"wait_ms": 9_700})
    await store.submit(CODE, sent("d1", at_ms=T0 + 10_000), 10_000, 3, 10)  # not 10 s of wall clock later
    assert len(await store.submissions(CODE)) == 2


async def test_waiting_submissions_are_capped_per_device_and_per_battle(store: Store) -> None:
    for _ in range(3):
        await submitted(store, "d1")
    with pytest.raises(Refused) as refused:
        await submitted(store, "d1")
    assert (refused.value.reason, refused.value.params) == ("limit_reached", {"limit": "waiting_per_device", "most": 3})
    # A moderated one no longer waits: the device may send again.
    await store.moderate(CODE, "s1", "dismiss", "host", T0)
    await store.moderate(CODE, "s2", "approve", "host", T0)
    await submitted(store, "d1")
    for device in ("d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9"):
        if len([s for s in await store.submissions(CODE) if s.status in ("pending", "held")]) < 10:
            await submitted(store, device)
    with pytest.raises(Refused) as refused:
        await submitted(store, "d10")
    assert refused.value.params == {"limit": "waiting", "most": 10}
    assert len(await store.submissions(CODE)) == 12


async def test_moderation_changes_one_submission_and_announces_it(
    store: Store, published: list[tuple[str, bytes]]
) -> None:
    await store.subscribe(CODE)
    item = await submitted(store, "d1", nickname="Ida")
    approved = await store.moderate(CODE, item.id, "approve", "host", T0)
    assert approved.status == "approved" and approved.rev > item.rev and approved.text == item.text
    dismissed = await store.moderate(CODE, item.id, "dismiss", "host", T0)
    assert dismissed.status == "dismissed" and dismissed.rev > approved.rev
    assert await refusal(store.moderate(CODE, "s7", "approve", "host", T0)) == "unknown_submission"
    await eventually(lambda: len(published) >= 3)
    notices = [submissions_in(message) for _, message in published]
    assert [[(i.id, i.status, i.rev) for i in n] for n in notices] == [
        [("s1", "pending", item.rev)],
        [("s1", "approved", approved.rev)],
        [("s1", "dismissed", dismissed.rev)],
    ]
    assert Submission.model_validate(notices[1][0]) == approved


async def test_a_blocked_device_is_refused_and_its_waiting_submissions_go(store: Store) -> None:
    first = await submitted(store, "d1")
    kept = await store.moderate(CODE, (await submitted(store, "d1")).id, "approve", "host", T0)
    third = await submitted(store, "d1", status="held", held_for="shit")
    other = await submitted(store, "d2")
    blocked = await store.moderate(CODE, third.id, "block", "host", T0)
    assert blocked.status == "blocked"
    statuses = {s.id: s.status for s in await store.submissions(CODE)}
    # The approved one stays as the moderator left it; another device is untouched.
    assert statuses == {first.id: "blocked", kept.id: "approved", third.id: "blocked", other.id: "pending"}
    assert await refusal(submitted(store, "d1")) == "device_blocked"
    assert await refusal(store.moderate(CODE, first.id, "approve", "host", T0)) == "device_blocked"
    assert [block.device for block in await store.blocks(CODE)] == ["d1"]
    assert await store.blocks("CD34") == []
    await submitted(store, "d1", code="CD34")  # blocked for this battle's evening only
    # The device's waiting submissions no longer count against the battle's cap.
    for device in ("d3", "d4"):
        await submitted(store, device)


async def test_every_decision_is_recorded_with_who_and_when(store: Store, published: list[tuple[str, bytes]]) -> None:
    await store.subscribe(CODE)
    item = await submitted(store, "d1")
    await store.moderate(CODE, item.id, "dismiss", "cohost", T0 + 10)
    await store.moderate(CODE, item.id, "dismiss", "host", T0 + 20)  # changes nothing: not recorded
    approved = await store.moderate(CODE, item.id, "approve", "host", T0 + 30)
    assert approved.decisions == [
        Decision(action="dismiss", by="cohost", at_ms=T0 + 10),
        Decision(action="approve", by="host", at_ms=T0 + 30),
    ]
    assert await store.submissions(CODE) == [approved]
    await eventually(lambda: len(published) >= 3)
    assert submissions_in(published[-1][1]) == [approved]


async def test_a_block_can_be_undone_and_its_submissions_wait_again(store: Store) -> None:
    first = await submitted(store, "d1")
    held = await submitted(store, "d1", status="held", held_for="shit")
    approved = await store.moderate(CODE, (await submitted(store, "d1")).id, "approve", "host", T0)
    other = await submitted(store, "d2")
    assert await refusal(store.moderate(CODE, first.id, "unblock", "host", T0)) == "not_blocked"
    await store.moderate(CODE, held.id, "block", "cohost", T0 + 5)
    # Blocking again on another of its submissions keeps the first block's record.
    await store.moderate(CODE, approved.id, "block", "host", T0 + 6)
    assert await store.blocks(CODE) == [Block(device="d1", submission=held.id, by="cohost", at_ms=T0 + 5)]
    assert {s.id: s.status for s in await store.submissions(CODE)} == {
        first.id: "blocked",
        held.id: "blocked",
        approved.id: "blocked",
        other.id: "pending",
    }
    # Any submission of the device names it; each one the block took waits again, the
    # held one apart, and the device may send again.
    back = await store.moderate(CODE, first.id, "unblock", "host", T0 + 9)
    assert back.status == "pending" and back.decisions[-1] == Decision(action="unblock", by="host", at_ms=T0 + 9)
    after = {s.id: s for s in await store.submissions(CODE)}
    assert {key: s.status for key, s in after.items()} == {
        first.id: "pending",
        held.id: "held",
        approved.id: "pending",
        other.id: "pending",
    }
    assert [d.action for d in after[approved.id].decisions] == ["approve", "block", "unblock"]
    assert after[other.id].decisions == []
    assert await store.blocks(CODE) == []
    assert await refusal(store.moderate(CODE, first.id, "unblock", "host", T0)) == "not_blocked"
    await store.moderate(CODE, first.id, "approve", "host", T0)  # no longer refused
    await store.moderate(CODE, held.id, "dismiss", "host", T0)
    await submitted(store, "d1")
    # The restored ones count as waiting again: d1 has approved.id and the new one.
    with pytest.raises(Refused) as refused:
        await submitted(store, "d1")
        await submitted(store, "d1")
    assert refused.value.params == {"limit": "waiting_per_device", "most": 3}


async def test_an_unblocked_submission_is_held_again_only_when_the_filter_named_a_word(store: Store) -> None:
    """docs/protocol.md, ``moderate``: an unblock puts one back to ``held`` when the word
    filter held it (``held_for`` names the word it found), else to ``pending``."""
    clean = await submitted(store, "d1", held_for="")
    held = await submitted(store, "d1", status="held", held_for="shit")
    await store.moderate(CODE, clean.id, "block", "host", T0)
    await store.moderate(CODE, clean.id, "unblock", "host", T0 + 1)
    assert [item.status for item in await store.submissions(CODE)] == ["pending", "held"]
    assert held.held_for == "shit"


async def test_a_submission_keeps_a_bounded_record_of_decisions(store: Store) -> None:
    item = await submitted(store, "d1")
    for turn in range(MAX_DECISIONS):
        await store.moderate(CODE, item.id, "approve" if turn % 2 else "dismiss", "host", T0 + turn)
    with pytest.raises(Refused) as refused:
        await store.moderate(CODE, item.id, "dismiss", "host", T0 + 99)
    assert (refused.value.reason, refused.value.params) == (
        "limit_reached",
        {"limit": "decisions", "most": MAX_DECISIONS},
    )
    stored = await store.submission(CODE, item.id)
    assert stored is not None and stored.status == "approved" and len(stored.decisions) == MAX_DECISIONS
    # A decision that changes nothing is no decision, and is not refused.
    assert await store.moderate(CODE, item.id, "approve", "host", T0 + 99) == stored


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_submissions_and_moderation_racing_keep_the_queue_consistent(store: Store, seed: int) -> None:
    """Many phones submitting while moderators approve, dismiss, block and unblock, in a
    seeded random order: the caps hold for what phones sent (an unblock may put a device's
    submissions back over them), ids and revisions are unique, a blocked device keeps
    nothing waiting, and the store's own counts agree with its rows afterwards."""
    rng = random.Random(seed)
    devices = [f"d{n}" for n in range(12)]

    async def phone(device: str) -> None:
        for _ in range(4):
            await asyncio.sleep(rng.random() / 200)
            with contextlib.suppress(Refused):
                await store.submit(CODE, sent(device), 0, 2, 15)

    async def moderator() -> None:
        for _ in range(25):
            await asyncio.sleep(rng.random() / 200)
            known = await store.submissions(CODE)
            if known:
                with contextlib.suppress(Refused):
                    await store.moderate(
                        CODE,
                        rng.choice(known).id,
                        rng.choice(["approve", "dismiss", "dismiss", "block", "unblock"]),
                        "cohost",
                        T0,
                    )

    await asyncio.gather(*(phone(device) for device in devices), moderator(), moderator())
    items = await store.submissions(CODE)
    assert [item.id for item in items] == [f"s{n}" for n in range(1, len(items) + 1)], f"seed {seed}"
    waiting = [item for item in items if item.status in ("pending", "held")]
    sent_since = [item for item in waiting if not item.decisions]
    assert len(sent_since) <= 15 and all(Counter(i.device for i in sent_since)[d] <= 2 for d in devices), f"seed {seed}"
    assert all(item.decisions[-1].action == "unblock" for item in waiting if item.decisions), f"seed {seed}"
    blocked = {block.device for block in await store.blocks(CODE)}
    assert not any(item.device in blocked for item in waiting), f"seed {seed}"
    # The store's counts agree with its rows: exactly the free places are taken.
    free = [d for d in devices if d not in blocked and not any(item.device == d for item in waiting)]
    room = max(0, 15 - len(waiting))
    taken = 0
    for device in free:
        try:
            await store.submit(CODE, sent(device), 0, 2, 15)
            taken += 1
        except Refused as refused:
            assert refused.params.get("limit") == "waiting", f"seed {seed}"
    assert taken == min(room, len(free)), f"seed {seed}"


async def test_due_names_a_battle_once_its_vote_deadline_has_passed(store: Store) -> None:
    await created(store, "LOBY")
    battle = await voting(store)
    deadline = deadline_of(battle)
    assert await store.due(deadline - 1) == []
    assert await store.due(deadline) == [CODE]
    assert await store.due(deadline + 60_000) == [CODE]
    await committed(store, battle, c.CloseVote(type="close_vote"), deadline + 100)
    assert await store.due(deadline + 200) == []
    assert await store.due(deadline + 86_400_000) == []


async def test_due_names_the_battles_sorted_by_code(store: Store) -> None:
    """Whichever deadline passed first: both stores answer alike (tests/test_store_rules.py)."""
    await voting(store, "ZZ99", T0)
    await voting(store, "AA11", T0 + 1_000)
    assert await store.due(T0 + 60_000) == ["AA11", "ZZ99"]


async def test_due_follows_a_timer_that_moves(store: Store) -> None:
    battle = await voting(store)
    first = deadline_of(battle)
    extended = await committed(store, battle, c.ExtendTimer(type="extend_timer", seconds=30), T0 + 1000)
    later = deadline_of(extended)
    assert later == first + 30_000
    assert await store.due(first) == []
    assert await store.due(later - 1) == []
    assert await store.due(later) == [CODE]
    # And one that moves earlier: back to the full vote length, from a second in.
    reset = await committed(store, extended, c.ResetTimer(type="reset_timer"), T0 + 2000)
    sooner = deadline_of(reset)
    assert sooner < later
    assert await store.due(sooner - 1) == []
    assert await store.due(sooner) == [CODE]


@pytest.mark.parametrize("winner", ["extend", "pause"])
async def test_a_losing_commit_leaves_the_timer_index_alone(store: Store, winner: str) -> None:
    battle = await voting(store)
    extended = applied(battle, c.ExtendTimer(type="extend_timer", seconds=30), T0 + 1000)
    paused = applied(battle, c.PauseTimer(type="pause_timer"), T0 + 1000)
    first, second = (extended, paused) if winner == "extend" else (paused, extended)
    assert await commit(store, first)
    assert not await commit(store, second)
    later = deadline_of(extended)
    if winner == "extend":
        assert await store.due(later - 1) == []
        assert await store.due(later) == [CODE]
    else:
        assert await store.due(later) == []
        assert await store.due(later + 86_400_000) == []


def test_the_redis_timer_index_is_judged_against_the_stored_states() -> None:
    """RedisStore.due's judgement of its index entries, with no Redis: every case of it."""
    now = 10_000_000

    def hint(code: str, version: int, deadline_ms: int) -> _Hint:
        return _Hint(f"{code}|{version}".encode(), code, version, deadline_ms)

    hints = [
        hint("GONE", 3, now - 5),  # the battle was deleted
        hint("OLD", 1, now - 5),  # a replaced version: its battle is due on its own deadline
        hint("STILL", 4, now - 5),  # the current version, its timer paused since
        hint("MOVED", 2, now - 5),  # the current version, its deadline moved on
        hint("SAME", 2, now - 5),  # the current version, due now
        hint("AHEAD", 5, now - 5),  # a commit in flight: its entry is written first
        hint("ORPHAN", 5, now - _ORPHAN_HINT_MS - 1),  # a commit that never came
    ]
    stored: dict[str, _Stored | None] = {
        "GONE": None,
        "OLD": _Stored(2, now - 1),
        "STILL": _Stored(4, None),
        "MOVED": _Stored(2, now + 60_000),
        "SAME": _Stored(2, now - 5),
        "AHEAD": _Stored(4, None),
        "ORPHAN": _Stored(4, None),
    }
    review = _review_hints(hints, stored, now)
    assert review.due == ["OLD", "SAME"]
    assert review.drop == [b"GONE|3", b"OLD|1", b"STILL|4", b"ORPHAN|5"]
    assert review.reset == {b"MOVED|2": now + 60_000}


# --- fan-out and presence -----------------------------------------------------------------


async def test_a_commit_announces_its_version_in_order_and_a_losing_one_nothing(
    store: Store, published: list[tuple[str, bytes]]
) -> None:
    await store.subscribe(CODE)
    battle = await voting(store)  # start_round, next x3, open_vote: committed one by one
    rival = applied(battle, c.PauseTimer(type="pause_timer"))
    winner = applied(battle, c.ExtendTimer(type="extend_timer", seconds=30))
    assert await commit(store, winner)
    assert not await commit(store, rival)
    await eventually(lambda: len(published) >= winner.version)
    assert published == [(CODE, f"{CODE} v{v}".encode()) for v in range(1, winner.version + 1)]
    assert await store.version(CODE) == winner.version
    assert await store.version("NONE") is None


async def test_announcements_reach_the_listener_for_subscribed_battles_only(
    store: Store, published: list[tuple[str, bytes]]
) -> None:
    await store.subscribe("AB12")
    await store.subscribe("CD34")
    await store.subscribe("CD34")  # a set: subscribing twice is subscribing once
    await announce(store, "EF56", b"not subscribed")
    await announce(store, "AB12", b'{"seq": 1}')
    await announce(store, "CD34", b"\x00binary\xff")
    await eventually(lambda: len(published) >= 2)

    await store.unsubscribe("AB12")
    await announce(store, "AB12", b"after unsubscribe")
    await announce(store, "CD34", b"sentinel")
    # Messages of one publisher arrive in order: once the sentinel is in, the
    # message to the unsubscribed battle would have been too.
    await eventually(lambda: ("CD34", b"sentinel") in published)
    assert published == [("AB12", b'{"seq": 1}'), ("CD34", b"\x00binary\xff"), ("CD34", b"sentinel")]


async def test_presence_sums_the_processes_that_reported_lately(store: Store) -> None:
    ttl = 10_000  # open_store's default, which the fixture uses
    await store.report_presence(CODE, "one", {"audience": 120, "screen": 1, "host": 1}, T0)
    await store.report_presence(CODE, "two", {"audience": 80, "cohost": 1}, T0 + 4000)
    await store.report_presence("CD34", "one", {"audience": 7}, T0)
    assert await store.presence(CODE, T0 + 5000) == {"audience": 200, "screen": 1, "host": 1, "cohost": 1}
    # A newer report replaces the process's older one.
    await store.report_presence(CODE, "one", {"audience": 100, "screen": 1, "host": 1}, T0 + 5000)
    assert await store.presence(CODE, T0 + 5000) == {"audience": 180, "screen": 1, "host": 1, "cohost": 1}
    # Process two stops reporting: it is gone once its report is older than the TTL.
    assert await store.presence(CODE, T0 + 4000 + ttl) == {"audience": 180, "screen": 1, "host": 1, "cohost": 1}
    assert await store.presence(CODE, T0 + 4001 + ttl) == {"audience": 100, "screen": 1, "host": 1}
    assert await store.presence(CODE, T0 + 5001 + ttl) == {}
    assert await store.presence("NONE", T0) == {}


# --- shared and lasting data --------------------------------------------------------------


async def test_the_signing_key_is_made_once_and_shared(store: Store, store_url: str) -> None:
    key = await store.signing_key()
    assert isinstance(key, bytes) and len(key) >= 32
    assert await store.signing_key() == key
    other = open_store(store_url)
    await other.start(lambda code, message: None)
    try:
        assert await other.signing_key() == key
    finally:
        await other.close()


async def test_everything_is_still_there_after_close_and_reopen(store: Store, store_url: str) -> None:
    battle = await voting(store)
    await created(store, "LOBY")
    tokens = await store.secrets(CODE)
    key = await store.signing_key()
    await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
    await store.cast_ballot(CODE, "r1v1", "d2", "b2", "x1", T0)
    await store.cast_ballot(CODE, "r1v1", "d2", "b3", "x2", T0)
    await store.react(CODE, 1, "b1", "applause", f"d{next(DEVICES)}", T0, 1)
    await store.close()

    reopened = open_store(store_url)
    await reopened.start(lambda code, message: None)
    try:
        assert await reopened.load(CODE) == battle
        assert await reopened.secrets(CODE) == tokens
        assert await reopened.signing_key() == key
        assert await reopened.tally(CODE, "r1v1") == Tally(totals={"b1": 1, "b3": 1}, ballots=2)
        assert await reopened.ballot_of(CODE, "r1v1", "d2") == "b3"
        # The seen ballot ids too: a phone retrying after the restart is not counted twice.
        assert await reopened.cast_ballot(CODE, "r1v1", "d2", "b2", "x1", T0) == BallotReceipt("duplicate", "b3")
        assert await reopened.reactions(CODE, 1) == {"b1": {"applause": 1}}
        assert await reopened.due(deadline_of(battle)) == [CODE]
        # And the evening goes on.
        closed = await committed(reopened, battle, c.CloseVote(type="close_vote"), T0 + 1000)
        assert await reopened.load(CODE) == closed
        assert not await reopened.create(game.create("LOBY", DRAFT, T0), Secrets.mint())
    finally:
        await reopened.close()


def wipe(store_url: str) -> None:
    """Lose every battle of the (closed) store at ``store_url``: the disk died."""
    if store_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(store_url[len("sqlite:///") :] + suffix).unlink(missing_ok=True)
    else:
        with redis.Redis.from_url(store_url) as client:
            client.flushall()


async def test_a_battle_record_restores_into_an_empty_store_exactly(store: Store, store_url: str) -> None:
    battle = await voting(store)
    await created(store, "LOBY")
    await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
    await store.cast_ballot(CODE, "r1v1", "d2", "b2", "x1", T0)
    await store.cast_ballot(CODE, "r1v1", "d2", "b3", "x2", T0)
    await store.react(CODE, 1, "b1", "applause", f"d{next(DEVICES)}", T0, 1)
    await store.react(CODE, 1, "b1", "applause", f"d{next(DEVICES)}", T0, 1)
    await submitted(store, "d1", nickname="Ida")
    await store.moderate(CODE, (await submitted(store, "d2", kind="challenge")).id, "approve", "host", T0)
    await store.moderate(CODE, (await submitted(store, "d3")).id, "block", "host", T0)
    await store.moderate(CODE, "s2", "dismiss", "cohost", T0 + 1)
    await store.moderate(CODE, "s2", "approve", "host", T0 + 2)
    assert await store.codes() == [CODE, "LOBY"]
    record = await store.record(CODE)
    assert record is not None and record.battle == battle
    assert record.ballots == {"r1v1": {"d1": "b1", "d2": "b3"}}
    assert record.seen == {"r1v1": [("d1", "x1"), ("d2", "x1"), ("d2", "x2")]}
    assert record.reactions == {1: {"b1": {"applause": 2}}}
    assert [(s.id, s.status) for s in record.submissions] == [("s1", "pending"), ("s2", "approved"), ("s3", "blocked")]
    assert [(d.action, d.by) for d in record.submissions[1].decisions] == [
        ("approve", "host"),
        ("dismiss", "cohost"),
        ("approve", "host"),
    ]
    assert record.blocked == [Block(device="d3", submission="s3", by="host", at_ms=T0)]
    assert await store.record("NONE") is None
    # A taken code is refused, and nothing moves.
    assert not await store.put_record(record)
    assert await store.tally(CODE, "r1v1") == Tally(totals={"b1": 1, "b3": 1}, ballots=2)
    await store.close()

    wipe(store_url)
    fresh = open_store(store_url)
    await fresh.start(lambda code, message: None)
    try:
        assert await fresh.codes() == []
        assert await fresh.put_record(record)
        assert await fresh.codes() == [CODE]
        assert await fresh.record(CODE) == record
        assert await fresh.secrets(CODE) == record.secrets
        assert await fresh.tally(CODE, "r1v1") == Tally(totals={"b1": 1, "b3": 1}, ballots=2)
        assert await fresh.cast_ballot(CODE, "r1v1", "d2", "b2", "x1", T0) == BallotReceipt("duplicate", "b3")
        assert await fresh.due(deadline_of(battle)) == [CODE]
        assert await fresh.cast_ballot(CODE, "r1v1", "d3", "b2", "x1", T0) == BallotReceipt("counted", "b2")
        # The queue goes on where it was: numbering, revisions, caps and blocks.
        assert await refusal(submitted(fresh, "d3")) == "device_blocked"
        assert await refusal(fresh.submit(CODE, sent("d4"), 0, 3, 1)) == "limit_reached"
        after = await submitted(fresh, "d4")
        assert after.id == "s4" and after.rev > max(s.rev for s in record.submissions)
        closed = await committed(fresh, battle, c.CloseVote(type="close_vote"), T0 + 1000)
        assert await fresh.load(CODE) == closed
        await fresh.set_signing_key(b"k" * 32)
        assert await fresh.signing_key() == b"k" * 32
    finally:
        await fresh.close()


async def test_a_store_is_healthy_while_it_runs(store: Store) -> None:
    assert await store.healthy()


# --- choosing a store ---------------------------------------------------------------------


def test_open_store_picks_the_store_a_url_names() -> None:
    memory = open_store("sqlite://:memory:")
    assert isinstance(memory, EmbeddedStore) and memory.path == ":memory:"
    relative = open_store("sqlite:///battles.sqlite3", presence_ttl_ms=3000)
    assert isinstance(relative, EmbeddedStore) and relative.path == "battles.sqlite3"
    assert relative.presence_ttl_ms == 3000
    absolute = open_store("sqlite:////var/lib/battles/battles.sqlite3")
    assert isinstance(absolute, EmbeddedStore) and absolute.path == "/var/lib/battles/battles.sqlite3"
    assert isinstance(open_store("redis://127.0.0.1:1/0"), RedisStore)
    assert isinstance(open_store("rediss://redis.example.org:6380/2"), RedisStore)
    for url in ("postgres://db/battles", "sqlite://", "sqlite:///", "battles.sqlite3", "", "memory"):
        with pytest.raises(ValueError, match="unsupported store URL"):
            open_store(url)
    sentinel = open_store("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/battles/2", wait_replicas=1)
    assert isinstance(sentinel, RedisStore) and sentinel.wait_replicas == 1
    # The embedded store has no replicas to wait for: refused, not ignored.
    with pytest.raises(ValueError, match="wait_replicas needs the Redis store"):
        open_store("sqlite://:memory:", wait_replicas=1)


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    assert parse_sentinel_url("redis+sentinel://h1:26379,h2:26380/mymaster/0") == (
        [("h1", 26379), ("h2", 26380)],
        "mymaster",
        0,
        None,
    )
    assert parse_sentinel_url("redis+sentinel://:s3cret@[::1]:26379/battles") == (
        [("::1", 26379)],
        "battles",
        0,
        "s3cret",
    )
    for url in (
        "redis+sentinel://h1:26379",  # no service
        "redis+sentinel:///battles/0",  # no Sentinel
        "redis+sentinel://h1/battles/0",  # no port
        "redis+sentinel://h1:26379,h2:x/battles/0",
        "redis+sentinel://h1:26379/battles/zero",
    ):
        with pytest.raises(ValueError, match="redis\\+sentinel://"):
            parse_sentinel_url(url)


async def test_an_in_memory_store_works_until_closed() -> None:
    store = open_store("sqlite://:memory:")
    await store.start(lambda code, message: None)
    try:
        battle = await created(store)
        assert await store.load(CODE) == battle
    finally:
        await store.close()
    assert not await store.healthy()


# --- the embedded store's fsync ----------------------------------------------------------


async def test_an_embedded_write_whose_fsync_fails_is_not_acknowledged(tmp_path: Any) -> None:
    # The ballot is committed to the WAL first and made durable by an fsync of it by name
    # (EmbeddedStore._durable); with the WAL's name gone, that fsync fails, and the ballot
    # must be refused as "cannot be recorded now", never acknowledged.
    store = EmbeddedStore(str(tmp_path / "battles.sqlite3"))
    await store.start(lambda code, message: None)
    try:
        await voting(store)
        wal = tmp_path / "battles.sqlite3-wal"
        wal.rename(tmp_path / "elsewhere")
        with pytest.raises(Unavailable):
            await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
        (tmp_path / "elsewhere").rename(wal)
        # After a failed fsync the kernel may have dropped what it could not write, and a
        # later fsync succeed: nothing is acknowledged any more until a restart.
        assert not await store.healthy()
        with pytest.raises(Unavailable):
            await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
    finally:
        await store.close()
    restarted = EmbeddedStore(str(tmp_path / "battles.sqlite3"))
    await restarted.start(lambda code, message: None)
    try:
        # The phone resends the same ballot: it was recorded, and is durable now.
        assert await restarted.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0) == BallotReceipt("duplicate", "b1")
        assert await restarted.healthy()
    finally:
        await restarted.close()


# --- Redis going away ---------------------------------------------------------------------


async def test_redis_going_away_is_unavailable_and_coming_back_is_recovered(redis_server: Any) -> None:
    redis_server.start()
    redis_server.flush()
    published: list[tuple[str, bytes]] = []
    store = RedisStore(redis_server.url, socket_timeout_s=1.0)
    await store.start(lambda code, message: published.append((code, message)))
    try:
        await voting(store)
        await store.subscribe(CODE)
        await announce(store, CODE, b"before")
        await eventually(lambda: (CODE, b"before") in published)

        redis_server.stop()
        try:
            with pytest.raises(Unavailable) as unavailable:
                await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
            assert unavailable.value.reason == "store_unavailable"
            assert unavailable.value.__cause__ is not None
            assert not await store.healthy()
            with pytest.raises(Unavailable):
                await store.load(CODE)
            with pytest.raises(Unavailable):
                await announce(store, CODE, b"lost")
            with pytest.raises(Unavailable):
                await store.subscribe("CD34")
            # Down for a while: the reader keeps trying, and does not give up.
            await asyncio.sleep(2)
            assert not await store.healthy()
        finally:
            redis_server.start()

        await eventually(store.healthy, timeout_s=10)
        # Redis came back empty (it keeps nothing on disk).
        assert await store.load(CODE) is None

        # The subscription made before the outage works again without a word from
        # the caller: the reader subscribed it again when it reconnected.
        async def delivered_after_restart() -> bool:
            await announce(store, CODE, b"after")
            await asyncio.sleep(0.05)
            return (CODE, b"after") in published

        await eventually(delivered_after_restart)
        await store.subscribe("CD34")
        await announce(store, "CD34", b"new")
        await eventually(lambda: ("CD34", b"new") in published)
        # The store works on the empty Redis.
        await voting(store, "GH78")
        receipt = await store.cast_ballot("GH78", "r1v1", "d1", "b1", "x1", T0)
        assert receipt == BallotReceipt("counted", "b1")
    finally:
        redis_server.start()
        await store.close()


async def test_a_failing_listener_does_not_stop_the_fan_out(redis_server: Any) -> None:
    redis_server.start()
    received: list[bytes] = []

    def listener(code: str, message: bytes) -> None:
        if message == b"boom":
            raise RuntimeError("a bug in the listener")
        received.append(message)

    store = RedisStore(redis_server.url)
    await store.start(listener)
    try:
        await store.subscribe(CODE)
        await announce(store, CODE, b"boom")
        await announce(store, CODE, b"still here")
        await eventually(lambda: received == [b"still here"])
        assert await store.healthy()
    finally:
        await store.close()


async def test_a_redis_that_hangs_is_noticed_within_seconds(
    redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.start()
    redis_server.flush()
    published: list[tuple[str, bytes]] = []
    store = RedisStore(redis_server.url, socket_timeout_s=1.0)
    await store.start(lambda code, message: published.append((code, message)))
    loop = asyncio.get_running_loop()
    try:
        await voting(store)
        await store.subscribe(CODE)
        redis_server.freeze()
        try:
            began = loop.time()
            with pytest.raises(Unavailable):
                await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
            assert loop.time() - began < 2.5
            assert not await store.healthy()
            # The fan-out connection is open but silent: the reader's pings go
            # unanswered, and it gives the connection up.
            await eventually(lambda: "fan-out lost Redis" in caplog.text, timeout_s=5)
        finally:
            redis_server.thaw()

        await eventually(store.healthy, timeout_s=10)

        async def delivered() -> bool:
            await announce(store, CODE, b"after")
            await asyncio.sleep(0.05)
            return (CODE, b"after") in published

        await eventually(delivered)
        # The ballot that timed out may or may not have reached Redis before it froze;
        # the phone's retry with the same ballot id makes it count exactly once.
        retry = await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
        assert retry.status in ("counted", "duplicate") and retry.choice == "b1"
        assert await store.tally(CODE, "r1v1") == Tally(totals={"b1": 1}, ballots=1)
    finally:
        redis_server.thaw()
        await store.close()


# --- Redis replication: wait_replicas (docs/operations.md, "Acknowledged means replicated") ---


def wait_until_replicating(replica: RedisServer) -> None:
    with redis.Redis(port=replica.port) as client:
        deadline = time.monotonic() + 10
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not catch up with its primary"
            time.sleep(0.05)


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    (tmp_path / "primary").mkdir()
    (tmp_path / "replica").mkdir()
    # No 5 s wait before it sends a replica its first copy (Redis's default).
    primary = RedisServer(tmp_path / "primary", options=("--repl-diskless-sync-delay", "0"))
    primary.start()
    replica = RedisServer(tmp_path / "replica", options=("--replicaof", "127.0.0.1", str(primary.port)))
    replica.start()
    wait_until_replicating(replica)
    yield primary, replica
    replica.stop()
    primary.stop()


async def test_with_wait_replicas_nothing_is_acknowledged_that_no_replica_has(
    primary_and_replica: tuple[RedisServer, RedisServer],
) -> None:
    primary, replica = primary_and_replica
    # Long enough for a loaded machine's replica to confirm; the refusals below wait it out.
    store = RedisStore(primary.url, wait_replicas=1, wait_timeout_ms=1500)
    await store.start(lambda code, message: None)
    try:
        battle = await voting(store)
        assert await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0) == BallotReceipt("counted", "b1")
        with redis.Redis(port=replica.port) as on_replica:
            assert on_replica.hget(f"battle:{{{CODE}}}:ballots:r1v1", "d1") == b"b1"

        replica.stop()
        started = time.perf_counter()
        with pytest.raises(Unavailable):
            await store.cast_ballot(CODE, "r1v1", "d2", "b2", "x2", T0)
        waited = time.perf_counter() - started
        assert 1.45 < waited < 5, waited  # WAIT's timeout, then the refusal
        closed = applied(battle, c.CloseVote(type="close_vote"))
        with pytest.raises(Unavailable):
            await commit(store, closed)  # applied on the primary, but never acknowledged
        # A resend of the refused ballot (same id) is a duplicate on the primary; it is
        # not acknowledged either while no replica can confirm it.
        with pytest.raises(Unavailable):
            await store.cast_ballot(CODE, "r1v1", "d2", "b2", "x2", T0)
        # Nor is a new signing key: device ids signed with a key that a failover loses
        # would all be new devices afterwards.
        with redis.Redis(port=primary.port) as client:
            client.delete(SIGNING_KEY)
        with pytest.raises(Unavailable):
            await store.signing_key()

        replica.start()  # empty: it copies everything from the primary again
        wait_until_replicating(replica)
        assert await store.cast_ballot(CODE, "r1v1", "d2", "b2", "x2", T0) == BallotReceipt("duplicate", "b2")
        with redis.Redis(port=replica.port) as on_replica:
            assert on_replica.hget(f"battle:{{{CODE}}}:ballots:r1v1", "d2") == b"b2"
    finally:
        await store.close()


async def test_a_primary_that_refuses_writes_without_replicas_is_unavailable(
    primary_and_replica: tuple[RedisServer, RedisServer],
) -> None:
    primary, replica = primary_and_replica
    with redis.Redis(port=primary.port) as client:
        client.config_set("min-replicas-to-write", 1)
        client.config_set("min-replicas-max-lag", 10)  # a replica answers once a second
        # The primary counts its good replicas once a second (seen in a full run: the first
        # write came before the count and was refused): it takes writes once it has one.
        deadline = time.monotonic() + 10
        while client.info("replication").get("min_slaves_good_slaves", 0) < 1:
            assert time.monotonic() < deadline, "the primary never counted its replica"
            time.sleep(0.05)
    store = RedisStore(primary.url)
    await store.start(lambda code, message: None)
    try:
        battle = await voting(store)
        replica.stop()
        with redis.Redis(port=primary.port) as client:
            deadline = time.monotonic() + 10
            while client.info("replication")["connected_slaves"] != 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        # NOREPLICAS: a clear store_unavailable, as for any other outage, not a crash.
        with pytest.raises(Unavailable):
            await store.cast_ballot(CODE, "r1v1", "d1", "b1", "x1", T0)
        with pytest.raises(Unavailable):
            await commit(store, applied(battle, c.CloseVote(type="close_vote")))
        assert await store.load(CODE) == battle  # reads go on
    finally:
        await store.close()


def test_a_cooldown_never_asks_for_more_than_itself() -> None:
    # A last action stamped by a process whose clock ran ahead (now before it) costs the
    # cool-down, not the clocks' difference besides (the Lua in redis._COOLDOWN does the same).
    assert cooldown_left(10_000, 9_000, 800) == 800
    assert cooldown_left(10_000, 10_300, 800) == 500
    assert cooldown_left(10_000, 10_800, 800) == 0
    assert cooldown_left(None, 10_000, 800) == 0


# --- what the anomaly flags read (battles.anomalies) ---------------------------------------


async def test_a_device_is_first_seen_once_and_the_hall_counts_who_joined_before(store: Store) -> None:
    await created(store)
    assert await store.first_seen(CODE, "d1", "10.0.0.1", T0) == T0
    assert await store.first_seen(CODE, "d2", "10.0.0.1", T0 + 10) == T0 + 10
    # Seen again, from elsewhere and later: it keeps its first time and address.
    assert await store.first_seen(CODE, "d1", "10.0.0.9", T0 + 50) == T0
    assert await store.first_seen(CODE, "d3", "10.0.0.2", T0 + 100) == T0 + 100
    assert await store.first_seen("OTHER1", "d1", "10.0.0.3", T0 + 200) == T0 + 200
    assert await store.hall(CODE, T0 + 100) == {"10.0.0.1": 2}
    assert await store.hall(CODE, T0 + 101) == {"10.0.0.1": 2, "10.0.0.2": 1}
    assert await store.hall(CODE, T0) == {}


async def test_a_votes_marks_are_counted_per_vote(store: Store) -> None:
    await created(store)
    await store.note(CODE, "r1v1", ["ballots", "address:10.0.0.1", "late"])
    await store.note(CODE, "r1v1", ["ballots", "address:10.0.0.1", "fast"])
    await store.note(CODE, "r1v1", [])
    await store.note(CODE, "r1v2", ["fast"])
    assert await store.noted(CODE, "r1v1") == {"ballots": 2, "address:10.0.0.1": 2, "late": 1, "fast": 1}
    assert await store.noted(CODE, "r1v2") == {"fast": 1}
    assert await store.noted(CODE, "r2v1") == {}
