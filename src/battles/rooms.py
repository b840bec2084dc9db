"""The sockets of one battle on this process (a ``Room``), and how a change reaches them.

Delivery (docs/architecture.md, "Delivery" and "Changes, not states"; docs/protocol.md,
"Sequence numbers and delivery"): the store announces every committed version, in commit
order, in the same atomic step as the commit; every process, the committing one included,
passes the announcements on from its subscription. A room moves only forward, one version
at a time by the announcements (each a patch from the version before), and, should one be
lost on the way (the fan-out reconnecting), by a catch-up from the store on the live tick.
A socket's snapshot never moves the room: while it is read, the socket's updates wait, and
after it only the newer ones go out. Each update is encoded once per view (hosts, the
public) and the same frame goes to every socket of that view.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpatch
from websockets.frames import CloseCode

from battles import announcements, patches, protocol
from battles.announcements import Committed
from battles.fanout import Connection, Outgoing
from battles.i18n import outcome_text
from battles.model import Battle, Submission
from battles.protocol import HOST_ROLES, ROLES
from battles.views import public_event, public_patch, submission_view

# Close code for a co-host socket whose link was revoked (docs/protocol.md): the same
# as a wrong token at the handshake, so a client knows not to retry with it.
CLOSE_REVOKED = 4401

# Close code for a phone's socket that a newer socket of the same device replaced (another
# tab): one socket per device in the whole hall, so a device is counted and heard once.
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
    # knows the log's length (``log_length``), and its ``state`` (without the version)
    # as the announcements patch it (announcements.state).
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
    # Phones' sockets by device, oldest first: a device's sockets are found without a
    # walk through the room, which every phone's entry and every ``entered``
    # announcement asks for (a walk each was a hall squared when it reconnects at once).
    phones: dict[str, list[Connection]] = field(default_factory=dict)
    # Phones' sockets that entered on this process and whose ``entered`` announcement has
    # not come back yet, by entry and the other way round: newer than any socket of their
    # device that one names.
    unannounced: dict[str, Connection] = field(default_factory=dict)
    entries: dict[Connection, str] = field(default_factory=dict)

    @classmethod
    def at(cls, code: str, battle: Battle) -> Room:
        """A room at a battle as stored."""
        room = cls(code, battle, {}, 0)
        room._move_to(battle.version, announcements.state(battle), len(battle.log))
        return room

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(ROLES, 0)
        for connection in self.connections:
            if not connection.closing:  # on its way out: not in the hall any more
                counts[connection.role] += 1
        return counts

    def enter(self, connection: Connection) -> str | None:
        """A socket joins. A phone's older socket of the same device on this process
        (another tab) is closed at once; the entry returned names the new one in the
        ``entered`` announcement that tells the other processes (``entered``)."""
        self.connections.add(connection)
        if connection.device is None:
            return None
        same = self.phones.setdefault(connection.device, [])
        for older in same:
            older.close(CLOSE_REPLACED)
        same.append(connection)
        entry = secrets.token_hex(8)
        self.unannounced[entry], self.entries[connection] = connection, entry
        return entry

    def entered(self, device: str, entry: str) -> None:
        """A socket of ``device`` entered, on this process or another (docs/protocol.md,
        close code 4409): one device has one socket in the whole hall, the one that
        entered last in the order every process hears the announcements. This process's
        sockets of that device that entered before it are closed; one whose own
        announcement is still on its way entered after it, and stays."""
        newest = self.unannounced.pop(entry, None)
        if newest is not None:
            del self.entries[newest]
        for connection in self.phones.get(device, ()):
            if connection is not newest and connection not in self.entries:
                connection.close(CLOSE_REPLACED)

    def leave(self, connection: Connection) -> bool:
        """A socket goes; False when it was not in the room."""
        entry = self.entries.pop(connection, None)
        if entry is not None:
            del self.unannounced[entry]
        if connection not in self.connections:
            return False
        self.connections.discard(connection)
        same = self.phones.get(connection.device or "", [])
        if connection in same:
            same.remove(connection)
            if not same:
                del self.phones[connection.device or ""]
        return True

    def send_all(self, frame: Outgoing) -> None:
        for connection in list(self.connections):
            connection.send(frame)

    # --- versions ------------------------------------------------------------------------

    def take(self, announced: Committed) -> bool:
        """Move on by an announcement; False when it is not the next version (an older one:
        a catch-up ran ahead; a newer one: one was lost, and the patch cannot apply here,
        so the next live tick catches up from the store)."""
        if announced.version != self.battle.version + 1:
            self.behind = self.behind or announced.version > self.battle.version
            return False
        try:
            state = jsonpatch.apply_patch(self.state, announced.patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
            self.behind = True  # never seen: the catch-up reads the stored version
            return False
        self._advance(announced.version, state, self.log_length + len(announced.events), updates(announced))
        return True

    def catch_up_to(self, battle: Battle) -> bool:
        """Move to a stored version whose announcements the room missed: the update is the
        change from the room's version to it, with the log entries it missed as its events.
        False (and nothing sent) when the room is there already."""
        if battle.version <= self.battle.version:
            return False
        state = announcements.state(battle)
        caught_up = Committed(
            version=battle.version, patch=patches.diff(self.state, state), events=battle.log[self.log_length :]
        )
        self._advance(battle.version, state, len(battle.log), updates(caught_up, base=self.battle.version))
        return True

    def start_again_at(self, battle: Battle) -> None:
        """The store lost the room's newest versions: the room and its sockets start again
        from what it holds (a ``service`` message tells the clients to resync)."""
        self._move_to(battle.version, announcements.state(battle), len(battle.log))
        for connection in self.connections:
            connection.seq = -1

    def _advance(self, version: int, state: dict[str, Any], log_length: int, frames: dict[View, Outgoing]) -> None:
        self._move_to(version, state, log_length)
        for connection in list(self.connections):
            if connection.revoked(self.battle):
                # revoke_cohost, on whichever process: this co-host's link is dead.
                connection.close(CLOSE_REVOKED)
                continue
            connection.deliver(self.battle.version, frames[view_of(connection.role)])

    def _move_to(self, version: int, state: dict[str, Any], log_length: int) -> None:
        self.state, self.log_length, self.behind = state, log_length, False
        self.battle = Battle.model_validate({**state, "version": version})

    # --- submissions -------------------------------------------------------------------

    def to_moderators(self, items: list[Submission]) -> None:
        """Submissions stored or changed: to the host and co-host sockets only, without
        their device."""
        frames = [Outgoing(protocol.submission(submission_view(item))) for item in items]
        for connection in self.connections:
            if connection.role in HOST_ROLES and not connection.revoked(self.battle):
                for frame in frames:
                    connection.send(frame)

    def tell_senders(self, outcomes: list[tuple[Submission, str]]) -> None:
        """Tell the phone that sent a submission what became of it (docs/protocol.md,
        ``your_submission``): approved, shown or dismissed, on its sockets of this process.
        Not a block (it hears ``device_blocked`` when it sends again), nor a word the
        filter matched."""
        for item, outcome in outcomes:
            for connection in self.connections:
                if connection.role == "audience" and connection.device == item.device:
                    message = outcome_text(connection.language, item.kind, outcome)
                    connection.send(protocol.your_submission(item.id, item.kind, item.text, outcome, message))


View = Literal["host", "public"]


def view_of(role: str) -> View:
    """The view of the battle a role's updates are made for: hosts and co-hosts see the
    whole of it, screens, phones and the battlers' own links what the public sees."""
    return "host" if role in HOST_ROLES else "public"


def update(announced: Committed, view: View, base: int | None = None) -> Outgoing:
    """The ``update`` of a view, from the announcement of a commit (or a catch-up from
    ``base``): hosts get the whole patch and the new log entries, screens and phones what
    they see of both (views.public_patch, views.public_event)."""
    seq = announced.version
    base = seq - 1 if base is None else base
    events = [event.model_dump(mode="json") for event in announced.events]
    if view == "public":
        return Outgoing(
            protocol.update(seq, base, now_ms(), public_patch(announced.patch), list(map(public_event, events)))
        )
    return Outgoing(protocol.update(seq, base, now_ms(), announced.patch, events))


def updates(announced: Committed, base: int | None = None) -> dict[View, Outgoing]:
    """The ``update`` of each view, built once for every socket of that view."""
    return {view: update(announced, view, base) for view in ("host", "public")}
