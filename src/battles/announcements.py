"""What one process tells every process serving a battle, on the battle's channel.

The store publishes an announcement in the same atomic step as the write it tells of
(``Store.commit``, ``Store.submit``, ``Store.moderate``), and every process, the
writing one included, passes it on to its sockets (docs/architecture.md, "Delivery").
Like ``protocol.py`` for the clients, this module owns every announcement: three kinds,
told apart by ``kind``.

- ``commit``: a new version of the battle, as the change from the version before it:
  a JSON Patch (``battles.patches``) of the state without its event log and version,
  and the log's new entries. It costs what changed, not the evening (a ``next`` late in a show is a
  few hundred bytes, where the whole state and its log were up to 1 MB). A process
  whose room is not at the version before (it missed an announcement) cannot apply it,
  and catches up from the store instead.
- ``submissions``: submissions stored or changed, for the moderators' queues and the
  phones that sent them. The Redis store writes this one in Lua from the stored JSON
  (``stores.redis._NOTICE``): ``tests/test_stores.py`` holds both stores to this schema.
- ``entered``: a phone's socket entered its battle on some process (``Store.announce``,
  no write with it): the processes close that device's older sockets, so that a device
  has one socket, and is counted once, in the whole hall.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from battles import patches
from battles.model import Battle, Data, LogEntry, Submission


class Committed(Data):
    kind: Literal["commit"] = "commit"
    version: int
    # From the state of version - 1, without its log and version (``state``).
    patch: patches.Patch
    events: list[LogEntry]  # the entries this version added to the log
    # The submission a show_submission put on the screen: its phone is told.
    shown: Submission | None = None
    published_s: float = Field(default_factory=time.time)  # for the broadcast lag (battles.metrics)


class SubmissionsChanged(Data):
    kind: Literal["submissions"] = "submissions"
    items: list[Submission]


class Entered(Data):
    """A phone's socket entered, on some process: one device has one socket in the whole
    hall, so every process closes its older sockets of that device (``rooms.Room.entered``)."""

    kind: Literal["entered"] = "entered"
    device: str
    entry: str  # this socket's own name, so that the process holding it keeps it


Announced = Committed | SubmissionsChanged | Entered
Announcement = Annotated[Announced, Field(discriminator="kind")]
_ANNOUNCEMENT: TypeAdapter[Announced] = TypeAdapter(Announcement)


def state(battle: Battle) -> dict[str, Any]:
    """The battle as a commit's patch sees it: everything but the event log, which only
    grows and travels as the commit's ``events``, and the version, which is the commit's
    ``version`` (docs/protocol.md, ``update``: a client sets it to the update's ``seq``)."""
    return battle.model_dump(mode="json", exclude={"log", "version"})


def committed(before: Battle, after: Battle, shown: Submission | None = None) -> Committed:
    """The announcement of ``after``, committed on top of ``before``."""
    return Committed(
        version=after.version,
        patch=patches.diff(state(before), state(after)),
        events=after.log[len(before.log) :],
        shown=shown,
    )


def encode(announcement: Announced) -> bytes:
    return announcement.model_dump_json().encode()


def decode(payload: bytes) -> Announced:
    return _ANNOUNCEMENT.validate_json(payload)


def submissions(items: list[Submission]) -> bytes:
    """The announcement of submissions stored or changed (``Store.submit``, ``Store.moderate``)."""
    return encode(SubmissionsChanged(items=items))
