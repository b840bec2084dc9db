"""One server process's side of every battle it serves: its sockets, and what they send.

The hub takes a socket into its battle's room (``battles.rooms``) with a welcome and a
snapshot, answers every frame a client sends (a ballot, a reaction, a submission, a
moderator's decision, a host command run by ``battles.running``), and passes the store's
announcements on to the rooms. Its loops (``battles.loops``) fire timers, send the live
figures and presence, and watch the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from battles import announcements, anomalies, game, metrics, protocol, receipts
from battles.commands import Command, RevokeBattler, RevokeCohost
from battles.errors import Refused, Unavailable
from battles.fanout import Connection
from battles.i18n import refusal_text
from battles.loops import Loops
from battles.model import SUBMISSION_MAX_CHARS, Actor, Battle, Language, Moderator
from battles.protocol import HOST_ROLES
from battles.rooms import CLOSE_REPLACED, CLOSE_RESTART, CLOSE_REVOKED, Room, now_ms, update, view_of
from battles.running import Runner
from battles.settings import Settings
from battles.stores.base import Secrets, Store
from battles.views import (
    battle_view,
    block_view,
    engagement_view,
    my_submissions_view,
    queue_view,
    staff_links,
    submission_view,
    tally_view,
)

log = logging.getLogger("battles.hub")


class Hub:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.rooms: dict[str, Room] = {}
        self._entering: dict[str, asyncio.Lock] = {}
        self.runner = Runner(store)
        self.loops = Loops(self.rooms, self.runner, settings, process)

    async def start(self) -> None:
        await self.store.start(self._on_published)
        self.loops.start()

    async def stop(self) -> None:
        await self.loops.stop()
        await self.store.close()

    # --- sockets ----------------------------------------------------------------------

    async def enter(self, connection: Connection, base_url: str) -> None:
        """Add a socket to its battle's room and send it the welcome and a snapshot."""
        code = connection.code
        async with self._entering.setdefault(code, asyncio.Lock()):
            room = self.rooms.get(code)
            if room is None:
                # Subscribe before loading, so no change can fall between the two.
                await self.store.subscribe(code)
                room = self.rooms[code] = Room.at(code, await self.runner.load(code))
            entry = room.enter(connection)
            metrics.connections.labels(connection.role).inc()
        if connection.trail is not None and connection.device is not None:
            trail = connection.trail  # when its device first joined the battle (anomaly flags)
            trail.first_seen_ms = await self.store.first_seen(code, connection.device, trail.address, trail.entered_ms)
        if entry is not None:
            assert connection.device is not None
            entered = announcements.Entered(device=connection.device, entry=entry)
            with contextlib.suppress(Unavailable):  # while the store is away, one socket per process
                await self.store.announce(code, announcements.encode(entered))
        connection.send(welcome(connection, room.battle.language, self.settings))
        await self.send_snapshot(connection, base_url)

    async def leave(self, connection: Connection) -> None:
        await connection.stop()
        room = self.rooms.get(connection.code)
        if room is None:
            return
        if room.leave(connection):
            metrics.connections.labels(connection.role).dec()
        if not room.connections:
            del self.rooms[connection.code]
            with contextlib.suppress(Refused):
                await self.store.unsubscribe(connection.code)
                await self.store.report_presence(connection.code, self.loops.process, room.counts(), now_ms())

    async def send_snapshot(self, connection: Connection, base_url: str, request_id: str | None = None) -> None:
        """Send a socket the whole battle, then the updates that arrived while it was read."""
        connection.hold()
        snapshot = None
        queue = None
        try:
            snapshot = await self._snapshot(connection, base_url, request_id)
            if connection.role in HOST_ROLES:
                # The moderation queue follows the snapshot; submissions stored or changed
                # meanwhile come as `submission` messages too, and a console keeps the
                # newest `rev` of each (docs/protocol.md, `submissions`).
                items = await self.store.submissions(connection.code)
                blocks = await self.store.blocks(connection.code)
                queue = protocol.submissions(queue_view(items, blocks), len(blocks), [block_view(b) for b in blocks])
        finally:
            connection.release(snapshot)
        if queue is not None:
            connection.send(queue)

    async def _snapshot(self, connection: Connection, base_url: str, request_id: str | None) -> tuple[int, str]:
        battle = await self.runner.load(connection.code)
        counted = await self.runner.tally(battle)
        tally = tally_view(battle, counted, connection.role) if counted else None
        engagement = (
            engagement_view(await self.store.reactions(battle.code, battle.round.number)) if battle.round else None
        )
        for_role: dict[str, Any] = {}
        if connection.role == "audience":
            for_role = await phone_view(self.store, battle, connection)
        if connection.revoked(battle):
            # Revoked between its handshake and now: it gets no links, and goes.
            connection.close(CLOSE_REVOKED)
        elif connection.role == "battler":
            for_role["battler"] = connection.battler  # whose link this is
        elif connection.role in HOST_ROLES:
            for_role["flags"] = await self.loops.flags(battle)
            for_role |= staff_links(base_url, battle, await self._secrets(battle.code), connection.role)
        presence = await self.store.presence(connection.code, now_ms())
        frame = protocol.snapshot(
            request_id,
            battle.version,
            now_ms(),
            battle_view(battle, connection.role),
            tally,
            engagement,
            presence,
            **for_role,
        )
        return battle.version, frame

    async def handle(self, connection: Connection, raw: str | bytes, base_url: str) -> None:
        """One frame from a client: answered by a reply or an error, never a traceback."""
        request_id = None
        try:
            envelope, message = protocol.decode(raw, connection.role)
            request_id = envelope.id
            reply = await self._dispatch(connection, envelope, message, base_url)
        except Refused as refusal:
            request_id = refusal.params.pop("request_id", request_id)
            reply = self.error(connection.language, refusal, request_id)
        except Exception:
            log.exception("message from a %s socket of %s failed", connection.role, connection.code)
            reply = self.error(connection.language, Refused("internal"), request_id)
        if reply is not None:
            connection.send(reply)

    @staticmethod
    def error(language: Language, refusal: Refused, request_id: str | None = None) -> str:
        message = refusal_text(language, refusal.reason, refusal.params)
        return protocol.error(request_id, refusal.reason, message, refusal.params)

    async def _dispatch(
        self, connection: Connection, envelope: protocol.Envelope, message: Any, base_url: str
    ) -> str | None:
        code, request_id = connection.code, envelope.id
        if isinstance(message, protocol.Ping):
            return protocol.pong(request_id, message.t, now_ms())
        if isinstance(message, protocol.Resync):
            await self.send_snapshot(connection, base_url, request_id)
            return None
        if isinstance(message, protocol.SetLanguage):
            connection.language = message.language
            return protocol.ack(request_id)
        if isinstance(message, protocol.SetNickname):
            connection.nickname = message.nickname
            return protocol.ack(request_id, nickname=message.nickname)
        # A phone's own messages (the functions below the class).
        if isinstance(message, protocol.SetDelay):
            return await set_delay(self.store, connection, message, request_id, self.rooms[code].battle)
        if isinstance(message, protocol.CastVote):
            await cast(self.store, connection, message, request_id, self.rooms[code].battle)
            return None
        if isinstance(message, protocol.React):
            await react(self.store, self.settings, connection, message, self.rooms[code].battle)
            return None  # the engagement meter is the answer
        if isinstance(message, protocol.Submit):
            return await submit(self.store, self.settings, connection, message, request_id, self.rooms[code].battle)
        if isinstance(message, protocol.Moderate):
            return await self._moderate(connection, message, request_id)
        assert envelope.seq is not None
        battle, announced, reply = await self.command(
            code, connection.role, message, envelope.seq, request_id, base_url, connection.revoked, connection.battler
        )
        if connection.seq == envelope.seq == battle.version - 1:
            # The console sees its own change with its ack, not a fan-out round trip
            # later; the announcement then finds this socket there already. (A socket
            # that decided on a version it was never sent, or a command that made two
            # versions, end_battle closing the vote first, waits for the announcements,
            # so that it misses none of them.)
            connection.deliver(battle.version, update(announced, view_of(connection.role)))
        return reply

    async def command(
        self, code: str, role: protocol.Role, message: Command, seq: protocol.Seq, request_id: str | None,
        base_url: str, revoked: Callable[[Battle], bool], battler: str | None = None,
    ) -> tuple[Battle, announcements.Committed, str]:  # fmt: skip
        """A host command from a console's socket or a cue (``battles.cues``): run, logged as
        its sender's and announced to every socket; the battle after it, the announcement,
        the ``ack``. A cue's ``seq`` "current" is the version read here, committed at by
        compare-and-set (docs/protocol.md, "Cues from the crew's desk")."""
        assert role in (*HOST_ROLES, "battler")
        decided_on = seq if isinstance(seq, int) else (await self.runner.load(code)).version  # "current"
        actor: Actor = "battler" if role == "battler" else "host" if role == "host" else "cohost"
        outcome, announced = await self.runner.execute(code, message, decided_on, actor, revoked, battler)
        battle = outcome.battle
        if isinstance(message, (RevokeCohost, RevokeBattler)):
            # The new link goes to the host who asked, and to no log or update.
            staff = staff_links(base_url, battle, await self._secrets(code), role)
            return battle, announced, protocol.ack(request_id, seq=battle.version, **staff)
        return battle, announced, protocol.ack(request_id, seq=battle.version)

    async def _moderate(self, connection: Connection, message: protocol.Moderate, request_id: str | None) -> str:
        """A moderator's decision, on the record with who made it and when (docs/rules.md)."""
        if connection.revoked(await self.runner.load(connection.code)):
            raise Refused("link_revoked")
        by: Moderator = "host" if connection.role == "host" else "cohost"
        item = await self.store.moderate(connection.code, message.submission, message.action, by, now_ms())
        return protocol.ack(request_id, item=submission_view(item))

    async def _secrets(self, code: str) -> Secrets:
        tokens = await self.store.secrets(code)
        if tokens is None:
            raise Refused("no_battle")
        return tokens

    def _on_published(self, code: str, payload: bytes) -> None:
        room = self.rooms.get(code)
        if room is None:
            return
        message = announcements.decode(payload)
        if isinstance(message, announcements.Entered):
            room.entered(message.device, message.entry)
            return
        if isinstance(message, announcements.SubmissionsChanged):
            room.to_moderators(message.items)
            # Only changes are announced: an approved or dismissed one was just decided.
            room.tell_senders(
                [(item, item.status) for item in message.items if item.status in ("approved", "dismissed")]
            )
            return
        if room.take(message):
            metrics.broadcast_lag.observe(max(0.0, time.time() - message.published_s))
        if message.shown is not None:
            room.tell_senders([(message.shown, "shown")])


async def cast(
    store: Store, connection: Connection, message: protocol.CastVote, request_id: str | None, battle: Battle
) -> None:
    """A phone's ballot, recorded and answered with its receipt, the same for every change of
    mind in the vote (docs/security.md, "Receipts and digests"); then its marks for the
    anomaly flags, after the answer (they only inform, and may be lost with the store)."""
    assert connection.device is not None and connection.trail is not None
    at_ms = now_ms()
    try:
        recorded = await store.cast_ballot(
            connection.code, message.vote_id, connection.device, message.choice, message.ballot_id, at_ms,
            remote=connection.remote,
        )  # fmt: skip
    except Refused as refusal:
        metrics.ballots.labels(refusal.reason).inc()
        raise
    metrics.ballots.labels(recorded.status).inc()
    receipt = receipt_of(connection, message.vote_id)
    connection.send(
        protocol.ballot(request_id, message.vote_id, message.ballot_id, recorded.choice, recorded.status, receipt)
    )
    vote = battle.current_vote if battle.current_vote and battle.current_vote.id == message.vote_id else None
    marks = anomalies.marks(connection.trail, recorded.status, vote.opened_ms, at_ms) if vote else []
    if marks:
        with contextlib.suppress(Unavailable):
            await store.note(connection.code, message.vote_id, marks)


async def react(
    store: Store, settings: Settings, connection: Connection, message: protocol.React, battle: Battle
) -> None:
    """A reaction to the speaker, or to a named battler in the debate."""
    target = game.reaction_target(battle, message.kind, message.battler)
    assert battle.round is not None and connection.device is not None
    # The cooldown is the device's, on every socket and process (docs/protocol.md).
    await store.react(
        connection.code, battle.round.number, target, message.kind,
        connection.device, now_ms(), settings.reaction_cooldown_ms,
    )  # fmt: skip
    metrics.reactions.inc()


async def set_delay(
    store: Store, connection: Connection, message: protocol.SetDelay, request_id: str | None, battle: Battle
) -> str:
    """A remote phone's stream delay, kept for its device (docs/protocol.md, "The remote audience");
    not while the host has the remote link off (the cap is 0 then, and would be kept)."""
    if not connection.remote:
        raise Refused("not_remote")
    if not battle.rules.remote:
        raise Refused("remote_off")
    assert connection.device is not None
    held = await store.set_delay(connection.code, connection.device, message.delay_ms)
    return protocol.ack(request_id, delay_ms=held)


async def submit(
    store: Store,
    settings: Settings,
    connection: Connection,
    message: protocol.Submit,
    request_id: str | None,
    battle: Battle,
) -> str:
    """Store a phone's challenge or question for the moderators (docs/rules.md)."""
    assert connection.device is not None
    nickname = "" if message.anonymous else connection.nickname
    submission = game.submission(
        battle, message.kind, message.text, nickname, message.battler, connection.device, now_ms()
    )
    try:
        stored = await store.submit(
            connection.code,
            submission,
            settings.submission_cooldown_ms,
            settings.submissions_waiting_per_device,
            settings.submissions_waiting,
        )
    except Refused as refusal:
        metrics.submissions.labels(refusal.reason).inc()
        raise
    metrics.submissions.labels(stored.status).inc()
    # The same answer, held or not: "sent for review" (docs/protocol.md, `submit`).
    return protocol.ack(request_id, submission=stored.id)


async def phone_view(store: Store, battle: Battle, connection: Connection) -> dict[str, Any]:
    """What a phone's snapshot adds: its ballot in the current vote, with its receipt, and
    what became of its own challenges and questions, told again to a phone that was away
    when they were decided (docs/protocol.md, `snapshot`)."""
    assert connection.device is not None
    vote = battle.current_vote  # a stance poll's too
    choice = await store.ballot_of(battle.code, vote.id, connection.device) if vote else None
    mine = await store.submissions_of(battle.code, connection.device)
    remote: dict[str, Any] = {}
    if connection.remote:
        # Its delay, kept by the store for the evening (docs/protocol.md, "The remote audience").
        own_ms = await store.watch(battle.code, connection.device)
        remote["my_delay"] = {"own_ms": own_ms, "delay_ms": battle.rules.remote_delay_ms(own_ms)}
    return remote | {
        "my_ballot": {"vote_id": vote.id, "choice": choice, "receipt": receipt_of(connection, vote.id)}
        if vote and choice
        else None,
        "my_submissions": my_submissions_view(mine, battle, connection.language),
    }


def receipt_of(connection: Connection, vote_id: str) -> str:
    assert connection.receipt_key is not None and connection.device is not None
    return receipts.receipt(connection.receipt_key, connection.code, vote_id, connection.device)


def welcome(connection: Connection, language: Language, settings: Settings) -> str:
    """What a socket is told first: who it is, the server's clock, its limits, and how to
    come back after losing the socket (docs/protocol.md, Reconnecting): the server, not
    each client, decides how a hall returns after a restart. Phones spread out over
    reconnect_max_ms; consoles and screens, a handful in a hall, come back within
    reconnect_staff_max_ms: the show returns first."""
    longest = settings.reconnect_max_ms if connection.role == "audience" else settings.reconnect_staff_max_ms
    return protocol.welcome(
        connection.role, connection.code, now_ms(), language, connection.new_device,
        limits={
            "max_message_bytes": settings.max_message_bytes,
            "reaction_cooldown_ms": settings.reaction_cooldown_ms,
            "submission_cooldown_ms": settings.submission_cooldown_ms,
            "submission_max_chars": SUBMISSION_MAX_CHARS,
        },
        reconnect={"base_ms": min(settings.reconnect_base_ms, longest), "max_ms": longest, "jitter": "full"},
        close_codes={"restart": CLOSE_RESTART, "revoked": CLOSE_REVOKED, "replaced": CLOSE_REPLACED},
    )  # fmt: skip
