"""The two stores keep one set of rules: a hypothesis state machine drives an
``EmbeddedStore`` and a ``RedisStore`` with the same random operations, at the same
``now_ms``, and compares every answer (return values, and each ``Refused`` with its
reason and params), every announcement, and then what each store holds.

The operations: battles created, moved on by real host commands through the game core
(votes opened, closed by the host or by their deadline, voided), stale commits; ballots
counted, changed, resent (``duplicate``), refused, from the hall and from remote devices
in their vote windows (docs/protocol.md, "Vote windows"), whose delays are set, capped and
locked, each tally with its online part; reactions with cool-downs; phones'
submissions with cool-downs and caps, held by the word filter or not; moderators'
decisions (approve, dismiss, block, unblock); a backup of a battle restored under a new
code, whose counters must go on as the original's would.

Every clock is the ``now_ms`` passed in (docs/protocol.md: ``cooldown``, ``too_soon``),
and the time between two operations is generated, up to minutes, while the whole run
takes a fraction of a second: a store that asked its own clock would answer differently.

CI runs a fixed seed (derandomized): since the remote audience's rules joined, 161 s of the
test process's CPU, and 5 min 12 s of wall time beside a CPU-bound job (hence a timeout of its
own). ``BATTLES_TEST_EXAMPLES=N`` runs N examples instead, from a random seed that a failure prints with the steps that led to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from battles import announcements, game
from battles import commands as c
from battles.errors import Refused
from battles.game import Context
from battles.model import Battle, BattleDraft, BattlerDraft, Moderation, Moderator, Rules, Submission
from battles.stores import EmbeddedStore, RedisStore
from battles.stores.base import Secrets, Store
from tests.servers import RedisServer

EXAMPLES = int(os.environ.get("BATTLES_TEST_EXAMPLES", "0"))
CI_EXAMPLES = 200

T0 = 1_700_000_000_000
CODES = ("AB12", "CD34")
RESTORED = "RS99"  # where a backup is put back
DEVICES = ("d1", "d2", "d3")
DRAFT = BattleDraft(
    title="Aarhus 2079",
    topic="The sea has risen",
    battlers=[BattlerDraft(name="Asha", vision="A harbour"), BattlerDraft(name="Bo", vision="A forest")],
    rules=Rules(remote=True, remote_delay_seconds=10, max_delay_seconds=30),
)
# Commands that move a battle towards, through and past its votes.
COMMANDS: tuple[Any, ...] = (
    c.StartRound(type="start_round"),
    c.Next(type="next"),
    c.OpenVote(type="open_vote"),
    c.CloseVote(type="close_vote"),
    c.VoidVote(type="void_vote", reason="A mistake"),
    c.PauseTimer(type="pause_timer"),
    c.ResumeTimer(type="resume_timer"),
    c.RevealResults(type="reveal_results"),
    # In the lobby: a maximum below the default and some of the delays set (their windows the hall's).
    c.EditBattle.model_validate({"type": "edit_battle", "rules": {"max_delay_seconds": 8}}),
)

Answer = tuple[Any, ...]


def refusal(error: Refused) -> Answer:
    return ("refused", error.reason, error.params)


class StoreRules(RuleBasedStateMachine):
    """See the module docstring. ``redis`` is the tests' own server (set by the test)."""

    redis: ClassVar[RedisServer]

    def __init__(self) -> None:
        super().__init__()
        self.redis.flush()
        self.runner = asyncio.Runner()
        self.now_ms = T0
        self.tokens = Secrets.mint()
        self.codes: list[str] = []
        self.heard: dict[str, list[tuple[str, bytes]]] = {"embedded": [], "redis": []}
        self.stores: dict[str, Store] = {
            "embedded": EmbeddedStore(":memory:"),
            "redis": RedisStore(self.redis.url, socket_timeout_s=5.0),
        }
        for name, store in self.stores.items():
            self.run(store.start(lambda code, message, heard=self.heard[name]: heard.append((code, message))))

    def teardown(self) -> None:
        for store in self.stores.values():
            self.run(store.close())
        self.runner.close()

    def run(self, call: Awaitable[Any]) -> Any:
        async def awaited() -> Any:
            return await call

        return self.runner.run(awaited())

    def both(self, call: Callable[[Store], Awaitable[Any]]) -> Answer:
        """``call`` on each store, in turn; the two answers, which must be the same."""

        async def answer(store: Store) -> Answer:
            try:
                return ("ok", await call(store))
            except Refused as error:
                return refusal(error)

        embedded, redis = (self.run(answer(store)) for store in self.stores.values())
        assert embedded == redis, f"embedded answered {embedded!r}, Redis {redis!r}"
        return embedded

    # --- time -------------------------------------------------------------------------

    @rule(ms=st.sampled_from([0, 1, 400, 799, 800, 3_000, 9_999, 10_000, 46_000, 600_000]))
    def time_passes(self, ms: int) -> None:
        self.now_ms += ms

    # --- battles and versions -----------------------------------------------------------

    @initialize()
    def create(self) -> None:
        for code in CODES:
            battle = game.create(code, DRAFT, self.now_ms)
            assert self.both(lambda store: store.create(battle, self.tokens)) == ("ok", True)
            assert self.both(lambda store: store.create(battle, Secrets.mint())) == ("ok", False)
            self.follow(code)

    def follow(self, code: str) -> None:
        self.codes.append(code)
        self.both(lambda store: store.subscribe(code))

    def battle(self, code: str) -> Battle:
        loaded = self.both(lambda store: store.load(code))[1]
        assert isinstance(loaded, Battle)
        return loaded

    @rule(data=st.data(), command=st.sampled_from(COMMANDS), stale=st.booleans())
    def command(self, data: st.DataObject, command: Any, stale: bool) -> None:
        self.apply(data.draw(st.sampled_from(self.codes)), command, stale)

    def apply(self, code: str, command: Any, stale: bool = False) -> bool:
        """The host's ``command`` committed to both stores; False when the game refuses it."""
        battle = self.battle(code)
        # A reveal waits out the remote windows (docs/protocol.md, "Vote windows"), as the runner reads them.
        delays = (
            self.both(lambda store: store.remote_delays(code))[1] if game.needs(battle, command).remote_delays else ()
        )
        context = Context(now_ms=self.now_ms, totals={}, remote_delays=delays)
        try:
            outcome = game.apply(battle, command, context)
        except Refused:
            return False
        # A stale one was decided on an older version: another change got there first.
        new = outcome.battle.model_copy(update={"version": battle.version}) if stale else outcome.battle
        message = f"{code} v{new.version}".encode()
        assert self.both(lambda store: store.commit(new, message)) == ("ok", not stale)
        return not stale

    @rule(data=st.data())
    def vote_opens(self, data: st.DataObject) -> None:
        """The host's commands up to the next open vote, if the battle has one to come."""
        code = data.draw(st.sampled_from(self.codes))
        if self.battle(code).round is None:
            self.apply(code, c.StartRound(type="start_round"))
        while self.battle(code).phase not in ("vote", "lobby", "ended") and self.apply(code, c.Next(type="next")):
            pass
        self.apply(code, c.OpenVote(type="open_vote"))

    @rule(data=st.data())
    def timer_runs_out(self, data: st.DataObject) -> None:
        """What the timer loop does: the due battles get their tick committed."""
        for code in self.both(lambda store: store.due(self.now_ms))[1]:
            outcome = game.tick(self.battle(code), self.now_ms)
            if outcome is not None:
                message = f"{code} v{outcome.battle.version}".encode()
                assert self.both(lambda store: store.commit(outcome.battle, message)) == ("ok", True)

    @precondition(lambda self: RESTORED not in self.codes)
    @rule(data=st.data())
    def backup_restored(self, data: st.DataObject) -> None:
        """``battles backup`` and ``battles restore``: the record put back under a new code."""
        code = data.draw(st.sampled_from(self.codes))
        record = self.both(lambda store: store.record(code))[1]
        assert record is not None
        restored = dataclasses.replace(record, battle=record.battle.model_copy(update={"code": RESTORED}))
        assert self.both(lambda store: store.put_record(restored)) == ("ok", True)
        self.follow(RESTORED)

    # --- ballots and tallies ----------------------------------------------------------

    @rule(
        data=st.data(),
        ballots=st.lists(
            st.tuples(
                st.sampled_from(DEVICES), st.sampled_from(["b1", "b2", "b9"]), st.sampled_from(["x1", "x2", "x3"])
            ),
            min_size=1,
            max_size=6,
        ),
    )
    def cast_ballots(self, data: st.DataObject, ballots: list[tuple[str, str, str]]) -> None:
        code = data.draw(st.sampled_from(self.codes))
        # A vote of the battle, the open one or an earlier one; now and then none of them.
        votes = [*Store.vote_ids(self.battle(code)), "r9v9"]
        for device, choice, ballot in ballots:
            vote, remote = data.draw(st.sampled_from(votes)), data.draw(st.booleans())
            self.both(
                lambda store: store.cast_ballot(code, vote, device, choice, f"{device}-{ballot}", self.now_ms, remote)
            )

    @rule(
        data=st.data(),
        device=st.sampled_from(DEVICES),
        moment=st.sampled_from(["opened", "closes"]),
        off_by=st.sampled_from([-1, 0]),
    )
    def remote_ballot_at_a_window_edge(self, data: st.DataObject, device: str, moment: str, off_by: int) -> None:
        """A remote ballot a millisecond before, or at, the edge of its device's window: its
        opening, or its close (the hall's deadline or close, shifted by the device's delay)."""
        code = data.draw(st.sampled_from(self.codes))
        battle = self.battle(code)
        gate = game.ballot_gate(battle)
        if gate is None:
            return
        delay_ms = battle.rules.remote_delay_ms(self.both(lambda store: store.watch(code, device))[1])
        edge = gate.opened_ms if moment == "opened" else gate.closed_ms or gate.deadline_ms
        at_ms = edge + delay_ms + off_by
        ballot = f"{device}-edge-{at_ms}"
        self.both(lambda store: store.cast_ballot(code, gate.vote_id, device, "b1", ballot, at_ms, remote=True))

    @rule(data=st.data(), device=st.sampled_from(DEVICES), delay_ms=st.sampled_from([0, 5_000, 30_000, 45_000]))
    def remote_delay(self, data: st.DataObject, device: str, delay_ms: int) -> None:
        """A remote phone joins (``watch``) or sends its delay (``set_delay``)."""
        code = data.draw(st.sampled_from(self.codes))
        if data.draw(st.booleans()):
            self.both(lambda store: store.watch(code, device))
        else:
            self.both(lambda store: store.set_delay(code, device, delay_ms))

    @rule(
        data=st.data(),
        round_number=st.integers(1, 2),
        battler=st.sampled_from(["b1", "b2", "debate"]),
        device=st.sampled_from(DEVICES),
        cooldown_ms=st.sampled_from([0, 800, 10_000]),
    )
    def react(self, data: st.DataObject, round_number: int, battler: str, device: str, cooldown_ms: int) -> None:
        code = data.draw(st.sampled_from(self.codes))
        kind = data.draw(st.sampled_from(["fire", "think"]))
        self.both(lambda store: store.react(code, round_number, battler, kind, device, self.now_ms, cooldown_ms))

    # --- audience submissions and blocks ------------------------------------------------

    @rule(
        data=st.data(),
        device=st.sampled_from(DEVICES),
        held_for=st.sampled_from([None, "", "dumbass"]),
        cooldown_ms=st.sampled_from([0, 800, 10_000]),
        most_per_device=st.integers(1, 4),
        most_waiting=st.integers(2, 8),
    )
    def submit(
        self,
        data: st.DataObject,
        device: str,
        held_for: str | None,
        cooldown_ms: int,
        most_per_device: int,
        most_waiting: int,
    ) -> None:
        code = data.draw(st.sampled_from(self.codes))
        # As the hub makes one (hub.py, _submit): held when the word filter found a word.
        submission = Submission(
            id="s0", kind=data.draw(st.sampled_from(["challenge", "question"])), text="Why the sea?",
            at_ms=self.now_ms, status="held" if held_for else "pending", held_for=held_for, device=device,
        )  # fmt: skip
        self.both(lambda store: store.submit(code, submission, cooldown_ms, most_per_device, most_waiting))

    @rule(
        data=st.data(),
        decisions=st.lists(
            st.tuples(st.sampled_from(["approve", "dismiss", "block", "unblock"]), st.sampled_from(["host", "cohost"])),
            min_size=1,
            max_size=4,
        ),
    )
    def moderate(self, data: st.DataObject, decisions: list[tuple[Moderation, Moderator]]) -> None:
        code = data.draw(st.sampled_from(self.codes))
        for action, by in decisions:
            # One of the battle's submissions, or s0, which none is (unknown_submission).
            number = data.draw(st.integers(0, len(self.both(lambda store: store.submissions(code))[1])))
            self.both(lambda store: store.moderate(code, f"s{number}", action, by, self.now_ms))

    # --- what the stores hold -------------------------------------------------------------

    @invariant()
    def both_hold_the_same(self) -> None:
        for code in self.codes:
            battle = self.battle(code)
            self.both(lambda store: store.secrets(code))
            self.both(lambda store: store.version(code))
            self.both(lambda store: store.submissions(code))
            for device in DEVICES:
                self.both(lambda store: store.submissions_of(code, device))
            self.both(lambda store: store.blocks(code))
            self.both(lambda store: store.all_reactions(battle))
            self.both(lambda store: store.remote_delays(code))
            for vote_id in Store.vote_ids(battle):
                self.both(lambda store: store.tally(code, vote_id))
                self.both(lambda store: store.online_devices(code, vote_id))
                for device in DEVICES:
                    self.both(lambda store: store.ballot_of(code, vote_id, device))
        self.both(lambda store: store.codes())

    @invariant()
    def both_announced_the_same(self) -> None:
        """Every announcement, in order (Redis's come over the network: waited for)."""

        async def delivered() -> None:
            await asyncio.sleep(0)  # the embedded store's: on the loop's next turn
            for _ in range(500):
                if len(self.heard["redis"]) >= len(self.heard["embedded"]):
                    return
                await asyncio.sleep(0.01)

        self.run(delivered())
        embedded, redis = ([(code, decoded(message)) for code, message in self.heard[name]] for name in self.heard)
        assert embedded == redis


def decoded(message: bytes) -> object:
    """A commit's announcement here is its code and version; a submission's, JSON (built by
    Lua from the stored parts on Redis, so its keys may come in another order)."""
    return announcements.decode(message) if message.startswith(b"{") else message


@pytest.mark.timeout(900)
def test_both_stores_answer_every_operation_alike(redis_server: RedisServer) -> None:
    redis_server.start()
    StoreRules.redis = redis_server
    run_state_machine_as_test(
        StoreRules,
        settings=settings(
            max_examples=EXAMPLES or CI_EXAMPLES,
            stateful_step_count=50,
            derandomize=not EXAMPLES,
            deadline=None,
            database=None,
            # Not Phase.explain: it traces every line of both stores, for minutes.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
