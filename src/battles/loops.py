"""The loops of one server process, over every battle it serves:

- timers: closes votes whose deadline passed, whether or not a host is connected;
  every process tries, the store's compare-and-set lets exactly one succeed;
- live figures: reads the running tally and the reactions from the store and sends
  them when they changed, at most every ``live_tick_ms`` to hosts and screens and
  every ``audience_tick_ms`` to phones (a full hall voting is not one message per
  ballot); on the same tick, a room the store is ahead of catches up
  (docs/architecture.md, "Delivery");
- presence and the store's health: reports this process's connections and sends the
  hall's totals, and tells every socket when the store goes away or comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from battles import anomalies, game, metrics, protocol
from battles.errors import Refused, Unavailable
from battles.fanout import Outgoing
from battles.model import Battle
from battles.protocol import HOST_ROLES
from battles.rooms import Room, now_ms
from battles.running import Runner
from battles.settings import Settings
from battles.stores.base import Tally
from battles.views import engagement_view, tally_view

log = logging.getLogger("battles.hub")

# Votes whose hall (the devices that joined before it opened) a process keeps for the flags.
HALLS_KEPT = 16


class Loops:
    def __init__(self, rooms: dict[str, Room], runner: Runner, settings: Settings, process: str) -> None:
        self.rooms, self.runner, self.store, self.settings = rooms, runner, runner.store, settings
        self.process = process  # this process's name in the presence counts
        self._tasks: list[asyncio.Task[None]] = []
        # The store's health as the presence loop last saw it; every socket hears of a
        # change (a ``service`` message).
        self.store_ok = True
        self._outage_began = 0.0  # time.monotonic() when the store went away
        self._halls: dict[tuple[str, str], dict[str, int]] = {}  # (code, vote id) -> Store.hall

    def start(self) -> None:
        s = self.settings
        self._tasks = [
            asyncio.create_task(self._every(s.timer_poll_ms, self._fire_timers)),
            asyncio.create_task(self._every(s.live_tick_ms, self._send_live_figures)),
            asyncio.create_task(self._every(s.presence_interval_ms, self._share_presence)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _every(self, interval_ms: int, step: Callable[[], Awaitable[None]]) -> None:
        # Every interval from the start of the last step, not after it: a step that
        # sends a tally to thousands of phones takes a good part of a live tick.
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        while True:
            started = loop.time()
            try:
                await step()
            except Unavailable:
                pass  # an outage is logged once, when it starts and when it ends (_store_health_changed)
            except Refused as refusal:
                log.warning("%s: %s", step.__name__, refusal.reason)
            except Exception:
                log.exception("%s failed", step.__name__)
            if task is not None and task.cancelling():
                # stop() cancelled this loop while a step ran, and something below the
                # step lost the CancelledError (seen with the Redis store: shutdown then
                # waited for ever on this task). Stop anyway.
                raise asyncio.CancelledError
            await asyncio.sleep(max(0.0, interval_ms / 1000 - (loop.time() - started)))

    async def _fire_timers(self) -> None:
        now = now_ms()
        codes = set(await self.store.due(now))
        codes |= {room.code for room in self.rooms.values() if game.due(room.battle, now)}
        for code in codes:
            await self.runner.fire_timer(code)

    # --- live figures ------------------------------------------------------------------

    async def _send_live_figures(self) -> None:
        metrics.flush()  # on this tick: a counter write per frame would cost more than the frame
        now = now_ms()
        for room in list(self.rooms.values()):
            await self._catch_up(room)
            battle = room.battle
            figures: dict[str, Any] = {}
            tally = await self.runner.tally(battle)
            if tally is not None:
                figures["tally"] = tally
                if any(connection.role in HOST_ROLES for connection in room.connections):
                    figures["flags"] = await self.flags(battle)
            if battle.phase in ("turn", "debate") and battle.round is not None:
                figures["engagement"] = await self.store.reactions(room.code, battle.round.number)
            audience_due = now - room.audience_sent_ms >= self.settings.audience_tick_ms
            if audience_due:
                room.audience_sent_ms = now
            for group, due_now in (("staff", True), ("audience", audience_due)):
                sent = room.sent.setdefault(group, {})
                for kind, value in figures.items():
                    if not due_now or sent.get(kind) == value:
                        continue
                    sent[kind] = value
                    frames: dict[str, Outgoing | None] = {}
                    for connection in room.connections:
                        if (connection.role == "audience") != (group == "audience"):
                            continue
                        if connection.role not in frames:
                            frame = _live(kind, value, battle, connection.role)
                            frames[connection.role] = Outgoing(frame) if frame else None
                        if (outgoing := frames[connection.role]) is not None:
                            connection.send(outgoing)

    async def flags(self, battle: Battle) -> dict[str, Any] | None:
        """The anomaly flags of the current vote or stance poll while it is open or closed (docs/security.md,
        "Anomaly flags"), for the consoles; None when there is none. The hall as it was when
        the vote opened is read once per vote: it no longer changes."""
        vote = battle.current_vote
        if vote is None or vote.status not in ("open", "closed"):
            return None
        hall = self._halls.get((battle.code, vote.id))
        if hall is None:
            hall = await self.store.hall(battle.code, vote.opened_ms)
            if len(self._halls) >= HALLS_KEPT:
                del self._halls[next(iter(self._halls))]
            self._halls[battle.code, vote.id] = hall
        return {"vote_id": vote.id, **anomalies.flags(await self.store.noted(battle.code, vote.id), hall)}

    async def _catch_up(self, room: Room) -> None:
        """Bring a room to the stored version when an announcement did not (lost while
        the fan-out reconnected, say): the store is checked every live tick, and a room
        still behind on the next one catches up (``Room.catch_up_to``)."""
        stored = await self.store.version(room.code)
        if stored is None or stored <= room.battle.version:
            room.behind = False
        elif not room.behind:
            room.behind = True  # the announcement may be on its way: one tick for it
        elif room.catch_up_to(await self.runner.load(room.code)):
            metrics.catch_ups.inc()

    # --- presence and the store's health ---------------------------------------------------

    async def _share_presence(self) -> None:
        healthy = await self.store.healthy()
        if healthy != self.store_ok:
            await self._store_health_changed(healthy)
        if not healthy:
            return
        now = now_ms()
        for room in list(self.rooms.values()):
            await self.store.report_presence(room.code, self.process, room.counts(), now)
            presence = await self.store.presence(room.code, now)
            if presence != room.presence:
                room.presence = presence
                room.send_all(Outgoing(protocol.presence(presence)))

    async def _store_health_changed(self, healthy: bool) -> None:
        """Tell every socket that the store went away or came back.

        While it is away nothing can be recorded: ballots and commands are refused
        with ``store_unavailable`` (never acknowledged), and the hall should know why.
        When it is back, updates published meanwhile may never have reached this
        process (the fan-out was reconnecting), and a store that lost its newest
        writes may even hold an older version than the one this room sent: each room
        starts again from the stored state, and the ``service`` message asks the
        clients for a ``resync``.
        """
        self.store_ok = healthy
        if healthy:
            outage_s = time.monotonic() - self._outage_began
            metrics.store_outages.inc()
            metrics.store_outage_seconds.inc(outage_s)
            log.warning("the store is reachable again after %.1f s", outage_s)
            for room in list(self.rooms.values()):
                try:
                    battle = await self.runner.load(room.code)
                except Refused:
                    continue
                room.sent.clear()  # the live figures go out again on the next tick
                if not room.catch_up_to(battle) and battle.version < room.battle.version:
                    room.start_again_at(battle)
        else:
            self._outage_began = time.monotonic()
            log.warning("the store cannot be reached; refusing ballots and commands until it is back")
        frame = Outgoing(protocol.service(healthy))
        for room in list(self.rooms.values()):
            room.send_all(frame)


def _live(kind: str, value: Any, battle: Battle, role: str) -> str | None:
    """The frame of one live figure for a role; None for a role that does not get it."""
    if kind == "tally":
        assert isinstance(value, Tally)
        return protocol.tally(tally_view(battle, value, role))
    if kind == "flags":
        return protocol.flags(value) if role in HOST_ROLES and value else None
    return protocol.engagement(battle.round.number if battle.round else 0, engagement_view(value))
