"""One server process's side of every battle it serves.

The hub keeps the sockets of this process per battle (a ``Room``), applies host
commands through the game core against the store (compare-and-set on the version),
and runs three loops:

- timers: closes votes whose deadline passed, whether or not a host is connected;
  every process tries, the store's compare-and-set lets exactly one succeed;
- live figures: reads the running tally and the reactions from the store and sends
  them when they changed, at most every ``live_tick_ms`` to hosts and screens and
  every ``audience_tick_ms`` to phones (a full hall voting is not one message per
  ballot);
- presence: reports this process's connections and sends the hall's totals.

Delivery (docs/architecture.md, "Delivery"; docs/protocol.md, "Sequence numbers"):
the store announces every committed version, in commit order, in the same atomic step
as the commit (``Store.commit``); every process, the committing one included, sends
the announcements on from its subscription. A room moves only forward, by the
announcements and, should one be lost on the way (the fan-out reconnecting), by a
catch-up from the store on the live tick. A socket's snapshot never moves the room:
while it is read, the socket's updates wait, and after it only the newer ones go out.
Each message is encoded once per view and the same text goes to every socket of
that view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import jsonpatch
from websockets.frames import CloseCode

from battles import announcements, game, metrics, patches, protocol
from battles.announcements import Committed, SubmissionsChanged
from battles.commands import CloseVote, Command, EndBattle, RevealResults, RevokeCohost, ShowSubmission
from battles.errors import Conflict, Refused, Unavailable
from battles.fanout import Connection, Outgoing
from battles.i18n import outcome_text, refusal_text
from battles.model import SUBMISSION_MAX_CHARS, Actor, Battle, Language, Moderator, Submission
from battles.protocol import HOST_ROLES, ROLES, Role
from battles.security import current_secrets
from battles.settings import Settings
from battles.stores.base import Secrets, Store, Tally
from battles.views import (
    battle_view,
    block_view,
    engagement_view,
    links,
    public_event,
    public_patch,
    queue_view,
    submission_view,
    tally_view,
)
from battles.wordfilter import banned_word_in

log = logging.getLogger("battles.hub")

# Close code for a co-host socket whose link was revoked (docs/protocol.md): the same
# as a wrong token at the handshake, so a client knows not to retry with it.
CLOSE_REVOKED = 4401

# Close code for a phone's socket that a newer socket of the same device replaced (another
# tab): one socket per device and process, so a device is counted and heard once.
CLOSE_REPLACED = 4409

# Close code of a graceful shutdown: uvicorn closes every socket with it (docs/protocol.md,
# Reconnecting). The welcome names it with the two above, so no page keeps a copy.
CLOSE_RESTART = int(CloseCode.SERVICE_RESTART)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Room:
    code: str
    # The newest version sent to this room's sockets: only announcements and catch-ups
    # move it, and only forward. Without its event log, which the room never reads: it
    # knows the log's length (``log_length``), and its ``state`` as the announcements
    # patch it (announcements.state).
    battle: Battle
    state: dict[str, Any]
    log_length: int
    connections: set[Connection] = field(default_factory=set)
    # The live tick saw the store ahead of this room: a catch-up follows on the next
    # tick if no announcement brought the room there meanwhile.
    behind: bool = False
    # The last live figures sent, to send only changes.
    sent: dict[str, Any] = field(default_factory=dict)
    audience_sent_ms: int = 0
    presence: dict[str, int] = field(default_factory=dict)

    @classmethod
    def at(cls, code: str, battle: Battle) -> Room:
        """A room at a battle as stored."""
        state = announcements.state(battle)
        return cls(code, Battle.model_validate(state), state, len(battle.log))

    def move_to(self, state: dict[str, Any], log_length: int) -> None:
        self.state, self.log_length, self.behind = state, log_length, False
        self.battle = Battle.model_validate(state)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(ROLES, 0)
        for connection in self.connections:
            if not connection.closing:  # on its way out: not in the hall any more
                counts[connection.role] += 1
        return counts


class Hub:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self.process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.rooms: dict[str, Room] = {}
        self._entering: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # The store's health as the presence loop last saw it; every socket hears of a
        # change (a ``service`` message).
        self.store_ok = True
        self._outage_began = 0.0  # time.monotonic() when the store went away

    async def start(self) -> None:
        await self.store.start(self._on_published)
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
                room = self.rooms[code] = Room.at(code, await self._load(code))
            if connection.device is not None:
                for older in room.connections:
                    if older.device == connection.device:
                        older.close(CLOSE_REPLACED)
            room.connections.add(connection)
            metrics.connections.labels(connection.role).inc()
        connection.send(protocol.welcome(
            connection.role, code, now_ms(), room.battle.language, connection.new_device,
            limits={
                "max_message_bytes": self.settings.max_message_bytes,
                "reaction_cooldown_ms": self.settings.reaction_cooldown_ms,
                "submission_cooldown_ms": self.settings.submission_cooldown_ms,
                "submission_max_chars": SUBMISSION_MAX_CHARS,
            },
            # How to come back after losing this socket (docs/protocol.md, Reconnecting):
            # the server, not each client, decides how a hall returns after a restart.
            reconnect=self._reconnect_policy(connection.role),
            close_codes={"restart": CLOSE_RESTART, "revoked": CLOSE_REVOKED, "replaced": CLOSE_REPLACED},
        ))  # fmt: skip
        await self.send_snapshot(connection, base_url)

    def _reconnect_policy(self, role: Role) -> dict[str, Any]:
        """Phones spread out over reconnect_max_ms; consoles and screens, a handful in a
        hall, come back within reconnect_staff_max_ms: the show returns first."""
        longest = self.settings.reconnect_max_ms if role == "audience" else self.settings.reconnect_staff_max_ms
        return {"base_ms": min(self.settings.reconnect_base_ms, longest), "max_ms": longest, "jitter": "full"}

    async def leave(self, connection: Connection) -> None:
        await connection.stop()
        room = self.rooms.get(connection.code)
        if room is None:
            return
        if connection in room.connections:
            room.connections.discard(connection)
            metrics.connections.labels(connection.role).dec()
        if not room.connections:
            del self.rooms[connection.code]
            with contextlib.suppress(Refused):
                await self.store.unsubscribe(connection.code)
                await self.store.report_presence(connection.code, self.process, room.counts(), now_ms())

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
        battle = await self._load(connection.code)
        vote = battle.round.vote if battle.round else None
        tally = tally_view(battle, await self.store.tally(battle.code, vote.id), connection.role) if vote else None
        engagement = (
            engagement_view(await self.store.reactions(battle.code, battle.round.number)) if battle.round else None
        )
        for_role: dict[str, Any] = {}
        if connection.role == "audience":
            assert connection.device is not None
            choice = await self.store.ballot_of(battle.code, vote.id, connection.device) if vote else None
            for_role["my_ballot"] = {"vote_id": vote.id, "choice": choice} if vote and choice else None
        if connection.revoked(battle):
            # Revoked between its handshake and now: it gets no links, and goes.
            connection.close(CLOSE_REVOKED)
        elif connection.role in HOST_ROLES:
            for_role["links"] = links(
                base_url, battle.code, current_secrets(await self._secrets(battle.code), battle.cohost_generation)
            )
            if connection.role == "cohost":
                # A co-host runs the show but cannot hand out the host's own link.
                for_role["links"].pop("host")
                for_role["links"].pop("results")
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
        if isinstance(message, protocol.CastVote):
            assert connection.device is not None
            try:
                receipt = await self.store.cast_ballot(
                    code, message.vote_id, connection.device, message.choice, message.ballot_id, now_ms()
                )
            except Refused as refusal:
                metrics.ballots.labels(refusal.reason).inc()
                raise
            metrics.ballots.labels(receipt.status).inc()
            return protocol.ballot(request_id, message.vote_id, message.ballot_id, receipt.choice, receipt.status)
        if isinstance(message, protocol.React):
            return await self._react(connection, message, request_id)
        if isinstance(message, protocol.Submit):
            return await self._submit(connection, message, request_id)
        if isinstance(message, protocol.Moderate):
            return await self._moderate(connection, message, request_id)
        assert envelope.seq is not None and connection.role in HOST_ROLES
        actor: Actor = "host" if connection.role == "host" else "cohost"
        generation = connection.cohost_generation if actor == "cohost" else None
        outcome, announced = await self.execute(code, message, envelope.seq, actor, generation)
        battle = outcome.battle
        if connection.seq == envelope.seq == battle.version - 1:
            # The console sees its own change with its ack, not a fan-out round trip
            # later; the announcement then finds this socket there already. (A socket
            # that decided on a version it was never sent, or a command that made two
            # versions, end_battle closing the vote first, waits for the announcements,
            # so that it misses none of them.)
            connection.deliver(battle.version, _updates(announced)["host"])
        if isinstance(message, RevokeCohost):
            # The new co-host link goes to the host who asked, and to no log or update.
            secrets_now = current_secrets(await self._secrets(code), battle.cohost_generation)
            return protocol.ack(request_id, seq=battle.version, links=links(base_url, code, secrets_now))
        return protocol.ack(request_id, seq=battle.version)

    async def _react(self, connection: Connection, message: protocol.React, request_id: str | None) -> str | None:
        room = self.rooms[connection.code]
        target = game.reaction_target(room.battle, message.kind, message.battler)
        assert room.battle.round is not None and connection.device is not None
        # The cooldown is the device's, on every socket and process (docs/protocol.md).
        await self.store.react(
            connection.code, room.battle.round.number, target, message.kind,
            connection.device, now_ms(), self.settings.reaction_cooldown_ms,
        )  # fmt: skip
        metrics.reactions.inc()
        return None  # the engagement meter is the answer

    async def _moderate(self, connection: Connection, message: protocol.Moderate, request_id: str | None) -> str:
        """A moderator's decision, on the record with who made it and when (docs/rules.md)."""
        if connection.revoked(await self._load(connection.code)):
            raise Refused("link_revoked")
        by: Moderator = "host" if connection.role == "host" else "cohost"
        item = await self.store.moderate(connection.code, message.submission, message.action, by, now_ms())
        return protocol.ack(request_id, item=submission_view(item))

    async def _submit(self, connection: Connection, message: protocol.Submit, request_id: str | None) -> str:
        """Store a phone's challenge or question for the moderators (docs/rules.md)."""
        battle = self.rooms[connection.code].battle
        target = game.submission_target(battle, message.kind, message.battler)
        assert connection.device is not None
        nickname = "" if message.anonymous else connection.nickname
        # The nickname goes on the screen with the text: the filter reads both.
        held_for = banned_word_in(message.text, battle.rules.banned_words) or banned_word_in(
            nickname, battle.rules.banned_words
        )
        submission = Submission(
            id="s0", kind=message.kind, text=message.text, nickname=nickname, battler=target,
            round=battle.round.number if battle.round else 0, at_ms=now_ms(),
            status="held" if held_for else "pending", held_for=held_for, device=connection.device,
        )  # fmt: skip
        s = self.settings
        try:
            stored = await self.store.submit(
                connection.code,
                submission,
                s.submission_cooldown_ms,
                s.submissions_waiting_per_device,
                s.submissions_waiting,
            )
        except Refused as refusal:
            metrics.submissions.labels(refusal.reason).inc()
            raise
        metrics.submissions.labels(stored.status).inc()
        # The same answer, held or not: "sent for review" (docs/protocol.md, `submit`).
        return protocol.ack(request_id, submission=stored.id)

    # --- commands -----------------------------------------------------------------------

    async def execute(
        self, code: str, command: Command, seq: int, actor: Actor, cohost_generation: int | None = None
    ) -> tuple[game.Outcome, Committed]:
        """Apply a host command decided on version ``seq``; one of two racing hosts wins.
        Returns the outcome and its announcement.

        ``cohost_generation``: for a co-host, the generation its socket was admitted
        under; a co-host whose link was revoked since is refused.
        """
        if isinstance(command, EndBattle) and (await self._load(code)).open_vote is not None:
            # Close the vote first, so its tally is frozen before it is counted: a ballot
            # acknowledged between reading the tally and the end would be lost.
            closed, _ = await self.execute(code, CloseVote(type="close_vote"), seq, actor, cohost_generation)
            seq = closed.battle.version
        battle = await self._load(code)
        if cohost_generation is not None and cohost_generation != battle.cohost_generation:
            raise Refused("link_revoked")
        if battle.version != seq:
            raise Conflict(battle.version)
        context = game.Context(now_ms=now_ms(), actor=actor, seed=secrets.randbits(31))
        vote = battle.round.vote if battle.round else None
        shown = None
        if isinstance(command, ShowSubmission):
            shown = await self.store.submission(code, command.submission)
            context = replace(context, submission=shown)
        if isinstance(command, (RevealResults, EndBattle)) and vote is not None and battle.round is not None:
            # The vote is closed, so its tally no longer moves: what we read is final.
            tally = await self.store.tally(code, vote.id)
            reactions = await self.store.reactions(code, battle.round.number)
            context = replace(context, totals=tally.totals, ballots=tally.ballots, engagement=reactions)
        elif battle.phase == "turn" and battle.round is not None:
            # A command that ends the turn keeps the speaker's reactions with it (model.Turn).
            context = replace(context, engagement=await self.store.reactions(code, battle.round.number))
        outcome = game.apply(battle, command, context)
        announced = await self._commit(battle, outcome, shown)
        if announced is None:
            current = await self._load(code)
            raise Conflict(current.version)
        return outcome, announced

    async def _commit(self, before: Battle, outcome: game.Outcome, shown: Submission | None = None) -> Committed | None:
        """Commit the new version and announce it to every process, in one step; None
        when another change got there first. ``shown``: the submission a show_submission
        put on the screen, whose phone is told (on whichever process it is connected:
        ``_tell_senders``)."""
        announced = announcements.committed(before, outcome.battle, shown)
        return announced if await self.store.commit(outcome.battle, announcements.encode(announced)) else None

    async def _secrets(self, code: str) -> Secrets:
        tokens = await self.store.secrets(code)
        if tokens is None:
            raise Refused("no_battle")
        return tokens

    async def _load(self, code: str) -> Battle:
        battle = await self.store.load(code)
        if battle is None:
            raise Refused("no_battle")
        return battle

    def _on_published(self, code: str, payload: bytes) -> None:
        room = self.rooms.get(code)
        if room is None:
            return
        message = announcements.decode(payload)
        if isinstance(message, SubmissionsChanged):
            self._to_moderators(room, message.items)
            # Only changes are announced: an approved or dismissed one was just decided.
            self._tell_senders(
                room, [(item, item.status) for item in message.items if item.status in ("approved", "dismissed")]
            )
            return
        if message.version <= room.battle.version:
            return  # a catch-up ran ahead
        if message.version > room.battle.version + 1:
            # One was lost on the way (the fan-out reconnecting): the patch does not
            # apply here. The next live tick catches up from the store.
            room.behind = True
            return
        state = jsonpatch.apply_patch(room.state, message.patch)
        self._advance(room, state, room.log_length + len(message.events), _updates(message))
        metrics.broadcast_lag.observe(max(0.0, time.time() - message.published_s))
        if message.shown is not None:
            self._tell_senders(room, [(message.shown, "shown")])

    @staticmethod
    def _to_moderators(room: Room, items: list[Submission]) -> None:
        """Submissions stored or changed (``stores.base.submission_notice``): to the host
        and co-host sockets only, without their device."""
        frames = [Outgoing(protocol.submission(submission_view(item))) for item in items]
        for connection in room.connections:
            if connection.role in HOST_ROLES and not connection.revoked(room.battle):
                for frame in frames:
                    connection.send(frame)

    @staticmethod
    def _tell_senders(room: Room, outcomes: list[tuple[Submission, str]]) -> None:
        """Tell the phone that sent a submission what became of it (docs/protocol.md,
        ``your_submission``): approved, shown or dismissed, on its sockets of this process.
        Not a block (it hears ``device_blocked`` when it sends again), nor a word the
        filter matched."""
        for item, outcome in outcomes:
            for connection in room.connections:
                if connection.role == "audience" and connection.device == item.device:
                    message = outcome_text(connection.language, item.kind, outcome)
                    connection.send(protocol.your_submission(item.id, item.kind, item.text, outcome, message))

    @staticmethod
    def _advance(room: Room, state: dict[str, Any], log_length: int, updates: dict[str, Outgoing]) -> None:
        """Move a room forward to ``state`` and send its sockets the update of their view."""
        room.move_to(state, log_length)
        battle = room.battle
        for connection in list(room.connections):
            if connection.revoked(battle):
                # revoke_cohost, on whichever process: this co-host's link is dead.
                connection.close(CLOSE_REVOKED)
                continue
            connection.deliver(battle.version, updates["host" if connection.role in HOST_ROLES else "public"])

    async def _catch_up(self, room: Room) -> None:
        """Bring a room to the stored version when an announcement did not (lost while
        the fan-out reconnected, say): the store is checked every live tick, and a room
        still behind on the next one is sent the stored state, with the log entries it
        missed as the update's events."""
        stored = await self.store.version(room.code)
        if stored is None or stored <= room.battle.version:
            room.behind = False
        elif not room.behind:
            room.behind = True  # the announcement may be on its way: one tick for it
        elif self._advance_to_stored(room, await self._load(room.code)):
            metrics.catch_ups.inc()

    def _advance_to_stored(self, room: Room, battle: Battle) -> bool:
        """Move a room to a stored version whose announcements it missed: the update is
        the change from the room's version to it, with the log entries it missed as its
        events. False (and nothing sent) when the room is there already."""
        if battle.version <= room.battle.version:
            return False
        state = announcements.state(battle)
        caught_up = Committed(
            version=battle.version, patch=patches.diff(room.state, state), events=battle.log[room.log_length :]
        )
        self._advance(room, state, len(battle.log), _updates(caught_up, base=room.battle.version))
        return True

    # --- loops --------------------------------------------------------------------------

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
                # Hub.stop cancelled this loop while a step ran, and something below the
                # step lost the CancelledError (seen with the Redis store: shutdown then
                # waited for ever on this task). Stop anyway.
                raise asyncio.CancelledError
            await asyncio.sleep(max(0.0, interval_ms / 1000 - (loop.time() - started)))

    async def _fire_timers(self) -> None:
        now = now_ms()
        codes = set(await self.store.due(now))
        codes |= {room.code for room in self.rooms.values() if game.due(room.battle, now)}
        for code in codes:
            await self.fire_timer(code)

    async def fire_timer(self, code: str) -> None:
        """Close a vote whose time is up; when another process did it first, do nothing."""
        battle = await self.store.load(code)
        if battle is None:
            return
        outcome = game.tick(battle, now_ms())
        if outcome is not None:
            await self._commit(battle, outcome)

    async def _send_live_figures(self) -> None:
        metrics.flush()  # on this tick: a counter write per frame would cost more than the frame
        now = now_ms()
        for room in list(self.rooms.values()):
            await self._catch_up(room)
            battle = room.battle
            figures: dict[str, Any] = {}
            vote = battle.round.vote if battle.round else None
            if vote is not None and vote.status in ("open", "closed"):
                figures["tally"] = await self.store.tally(room.code, vote.id)
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
                    frames: dict[str, Outgoing] = {}
                    for connection in room.connections:
                        if (connection.role == "audience") != (group == "audience"):
                            continue
                        if connection.role not in frames:
                            frames[connection.role] = Outgoing(self._live(kind, value, battle, connection.role))
                        connection.send(frames[connection.role])

    @staticmethod
    def _live(kind: str, value: Any, battle: Battle, role: str) -> str:
        if kind == "tally":
            assert isinstance(value, Tally)
            return protocol.tally(tally_view(battle, value, role))
        return protocol.engagement(battle.round.number if battle.round else 0, engagement_view(value))

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
                frame = Outgoing(protocol.presence(presence))
                for connection in room.connections:
                    connection.send(frame)

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
                    battle = await self._load(room.code)
                except Refused:
                    continue
                room.sent.clear()  # the live figures go out again on the next tick
                if not self._advance_to_stored(room, battle) and battle.version < room.battle.version:
                    # The store lost its newest versions: the room and its sockets start
                    # again from what it holds (the `service` message below tells the
                    # clients to forget their seq and resync).
                    room.move_to(announcements.state(battle), len(battle.log))
                    for connection in room.connections:
                        connection.seq = -1
        else:
            self._outage_began = time.monotonic()
            log.warning("the store cannot be reached; refusing ballots and commands until it is back")
        frame = Outgoing(protocol.service(healthy))
        for room in list(self.rooms.values()):
            for connection in list(room.connections):
                connection.send(frame)


def _updates(announced: Committed, base: int | None = None) -> dict[str, Outgoing]:
    """The ``update`` of each view, from the announcement of a commit (or a catch-up from
    ``base``): hosts get the whole patch and the new log entries, screens and phones what
    they see of both (views.public_patch, views.public_event)."""
    seq, now = announced.version, now_ms()
    base = seq - 1 if base is None else base
    events = [event.model_dump(mode="json") for event in announced.events]
    return {
        "host": Outgoing(protocol.update(seq, base, now, announced.patch, events)),
        "public": Outgoing(
            protocol.update(seq, base, now, public_patch(announced.patch), [public_event(e) for e in events])
        ),
    }
