"""Running a host command or a timer against the store: load the battle, check the
version the host decided on, read the facts the core asks for, apply the core, and
commit the new version with its announcement in one step (compare-and-set: of two
racing hosts, one wins and the other is refused with ``conflict``).

What a command needs besides the battle is the core's to say (``game.needs``,
``game.applied_first``); this module only reads it from the store.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import replace

from battles import announcements, game, receipts
from battles.announcements import Committed
from battles.commands import Command
from battles.errors import Conflict, Refused
from battles.model import Actor, Battle, Submission
from battles.rooms import now_ms
from battles.stores.base import Store, Tally

# Closed votes counted from their ballots, kept: their ballots no longer change, and every
# console's live tick and every receipt check asks again (``Runner.counted``).
COUNTED_VOTES = 16


class Runner:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._counted: dict[tuple[str, str], receipts.Count] = {}

    async def execute(
        self, code: str, command: Command, seq: int, actor: Actor,
        revoked: Callable[[Battle], bool] | None = None, battler: str | None = None,
    ) -> tuple[game.Outcome, Committed]:  # fmt: skip
        """Apply a host command decided on version ``seq``; returns the outcome and its
        announcement. ``revoked``: whether the sender's link (a co-host's, a battler's) was
        revoked in the battle as it stands; such a sender is refused. ``battler``: the
        battler whose own link sent it (game.Context)."""
        first = game.applied_first(await self.load(code), command)
        if first is not None:
            seq = (await self.execute(code, first, seq, actor, revoked, battler))[0].battle.version
        battle = await self.load(code)
        if revoked is not None and revoked(battle):
            raise Refused("link_revoked")
        if battle.version != seq:
            raise Conflict(battle.version)
        context = replace(await self._context(battle, command, actor), battler=battler)
        outcome = game.apply(battle, command, context)
        announced = await self._commit(battle, outcome, context.submission)
        if announced is None:
            raise Conflict((await self.load(code)).version)
        return outcome, announced

    async def fire_timer(self, code: str) -> None:
        """Close a vote whose time is up; when another process did it first, do nothing."""
        battle = await self.store.load(code)
        if battle is None:
            return
        outcome = game.tick(battle, now_ms())
        if outcome is not None:
            await self._commit(battle, outcome)

    async def load(self, code: str) -> Battle:
        battle = await self.store.load(code)
        if battle is None:
            raise Refused("no_battle")
        return battle

    async def tally(self, battle: Battle) -> Tally | None:
        """The tally of the vote this phase is on (a stance poll's in its phase): the
        running one while it is open; once closed, counted from its ballots with their
        digest (docs/security.md, "Receipts and digests"). None when no vote is open or
        closed."""
        vote = battle.current_vote
        if vote is None or vote.status not in ("open", "closed"):
            return None
        # A count kept is of a vote whose windows have ended: no store read each tick then.
        kept = (battle.code, vote.id) in self._counted
        if vote.status == "open" or (not kept and await self.windows_run(battle)):
            # docs/protocol.md, "Vote windows": a closed vote takes remote ballots until its
            # remote windows end, so it is not counted for good (nor kept) before then.
            return await self.store.tally(battle.code, vote.id)
        count = await self.counted(battle.code, vote.id)
        return Tally(count.totals, count.ballots, count.digest, count.online)

    async def windows_run(self, battle: Battle) -> bool:
        """Whether a closed vote's remote windows still take ballots: until its close plus
        the longest delay a remote device has (delays are locked from the close on, so
        this only ever ends), as the reveal waits for it (``game.remote_wait_ms``)."""
        if not battle.rules.remote:
            return False
        return game.remote_wait_ms(battle, await self.store.remote_delays(battle.code), now_ms()) > 0

    async def counted(self, code: str, vote_id: str) -> receipts.Count:
        """A vote that takes no more ballots (closed, revealed or voided: the commit that
        closed it moved the store's ballot gate) and whose remote windows have ended
        (``windows_run``), counted from its ballots once and kept."""
        count = self._counted.get((code, vote_id))
        if count is None:
            key, ballots = receipts.receipt_key(await self.store.signing_key()), await self.store.ballots(code, vote_id)
            online = await self.store.online_devices(code, vote_id)
            # An HMAC per ballot: 10,000 take tens of milliseconds, which the event loop
            # should not wait out in one piece (the thread gives it the GIL every 5 ms).
            count = await asyncio.to_thread(receipts.Count.of, key, code, vote_id, ballots, online)
            if len(self._counted) >= COUNTED_VOTES:
                del self._counted[next(iter(self._counted))]
            self._counted[code, vote_id] = count
        return count

    async def _context(self, battle: Battle, command: Command, actor: Actor) -> game.Context:
        """What the caller knows that the core must not find out for itself: the time,
        who acts, a random draw, and what the command needs from the store."""
        context = game.Context(now_ms=now_ms(), actor=actor, seed=secrets.randbits(31))
        needs = game.needs(battle, command)
        if needs.submission is not None:
            context = replace(context, submission=await self.store.submission(battle.code, needs.submission))
        if needs.remote_delays:
            context = replace(context, remote_delays=await self.store.remote_delays(battle.code))
        # While a remote window runs the core refuses the count's command (remote_wait) before
        # it reads the count: none is made for it then.
        if needs.tally is not None and not game.remote_wait_ms(battle, context.remote_delays, context.now_ms):
            count = await self.counted(battle.code, needs.tally)
            context = replace(
                context, totals=count.totals, ballots=count.ballots, digest=count.digest, online=count.online
            )
        if needs.transitions is not None:
            context = replace(context, transitions=await self.store.transitions(battle.code, *needs.transitions))
        if needs.engagement is not None:
            context = replace(context, engagement=await self.store.reactions(battle.code, needs.engagement))
        return context

    async def _commit(self, before: Battle, outcome: game.Outcome, shown: Submission | None = None) -> Committed | None:
        """Commit the new version and announce it to every process, in one step; None
        when another change got there first. ``shown``: the submission a show_submission
        put on the screen, whose phone is told (on whichever process it is connected)."""
        announced = announcements.committed(before, outcome.battle, shown)
        return announced if await self.store.commit(outcome.battle, announcements.encode(announced)) else None
