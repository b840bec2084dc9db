"""Running a host command or a timer against the store: load the battle, check the
version the host decided on, read the facts the core asks for, apply the core, and
commit the new version with its announcement in one step (compare-and-set: of two
racing hosts, one wins and the other is refused with ``conflict``).

What a command needs besides the battle is the core's to say (``game.needs``,
``game.applied_first``); this module only reads it from the store.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

from battles import announcements, game
from battles.announcements import Committed
from battles.commands import Command
from battles.errors import Conflict, Refused
from battles.model import Actor, Battle, Submission
from battles.rooms import now_ms
from battles.stores.base import Store


class Runner:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def execute(
        self, code: str, command: Command, seq: int, actor: Actor, cohost_generation: int | None = None
    ) -> tuple[game.Outcome, Committed]:
        """Apply a host command decided on version ``seq``; returns the outcome and its
        announcement. ``cohost_generation``: for a co-host, the generation its socket was
        admitted under; a co-host whose link was revoked since is refused."""
        first = game.applied_first(await self.load(code), command)
        if first is not None:
            seq = (await self.execute(code, first, seq, actor, cohost_generation))[0].battle.version
        battle = await self.load(code)
        if cohost_generation is not None and cohost_generation != battle.cohost_generation:
            raise Refused("link_revoked")
        if battle.version != seq:
            raise Conflict(battle.version)
        context = await self._context(battle, command, actor)
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

    async def _context(self, battle: Battle, command: Command, actor: Actor) -> game.Context:
        """What the caller knows that the core must not find out for itself: the time,
        who acts, a random draw, and what the command needs from the store."""
        context = game.Context(now_ms=now_ms(), actor=actor, seed=secrets.randbits(31))
        needs = game.needs(battle, command)
        if needs.submission is not None:
            context = replace(context, submission=await self.store.submission(battle.code, needs.submission))
        if needs.tally is not None:
            tally = await self.store.tally(battle.code, needs.tally)
            context = replace(context, totals=tally.totals, ballots=tally.ballots)
        if needs.engagement is not None:
            context = replace(context, engagement=await self.store.reactions(battle.code, needs.engagement))
        return context

    async def _commit(self, before: Battle, outcome: game.Outcome, shown: Submission | None = None) -> Committed | None:
        """Commit the new version and announce it to every process, in one step; None
        when another change got there first. ``shown``: the submission a show_submission
        put on the screen, whose phone is told (on whichever process it is connected)."""
        announced = announcements.committed(before, outcome.battle, shown)
        return announced if await self.store.commit(outcome.battle, announcements.encode(announced)) else None
