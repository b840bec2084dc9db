"""What goes over the wire in the benchmark, for each of the three servers.

All three carry the same JSON objects (the engine's own ``welcome``, ``snapshot``,
``update``, ``tally``, ``presence``, ``vote`` and ``ballot`` shapes). The engine and
B0 send each as one text frame; P1 wraps it in Socket.IO's framing (``42["update",
{...}]``, an ack ``43ID[{...}]``), as any Socket.IO application would.

The load generator reads only the head of a broadcast frame (its type and ``seq``),
so that parsing 10,000 copies of an update does not cost more than the server
spent sending them.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Literal

import jsonpatch
from pydantic import TypeAdapter

from battles import announcements, game, protocol
from battles.commands import Command
from battles.model import BattleDraft, BattlerDraft, Rules
from battles.views import battle_view, public_event, public_patch

Kind = Literal["engine", "b0", "p1"]
KINDS: tuple[Kind, ...] = ("engine", "b0", "p1")
NAMES = {"engine": "engine", "b0": "B0 (bare websockets)", "p1": "P1 (python-socketio)"}

BATTLERS = [
    ("Asha", "A floating harbour town"),
    ("Bo", "Every roof a forest"),
    ("Camille", "A four-day week"),
    ("Dev", "Robots lift, people dream"),
]
CHOICES = ("b1", "b2", "b3", "b4")
CODE = "BENCH2"  # the baselines' one battle; the engine draws its own join code
BASELINE_VOTE = "r1v1"

_SEQ = re.compile(rb'"seq":(\d+)')
_ACK_ID = re.compile(rb"^43(\d+)")


def draft() -> BattleDraft:
    return BattleDraft(
        title="Aarhus 2079: the sea has risen",
        topic="Sustainability",
        scenario="It is 2079, the sea has risen and summers are hotter: how does our region thrive?",
        language="en",
        battlers=[BattlerDraft(name=name, vision=vision) for name, vision in BATTLERS],
        rules=Rules(vote_seconds=600),
    )


def public_battle() -> dict[str, Any]:
    """The public view of a fresh battle with four battlers: the payload the baselines
    send in their snapshots and updates, so every server moves the same bytes."""
    view: dict[str, Any] = battle_view(game.create(CODE, draft(), int(time.time() * 1000)), "audience")
    return view


def follow(seq: int, battle: dict[str, Any], message: dict[str, Any]) -> dict[str, Any] | None:
    """The battle after a ``snapshot`` or an ``update``, built as docs/protocol.md says: a
    snapshot is the whole view; an update's patch (JSON Patch, applied here with the
    ``jsonpatch`` library, not the server's code) turns version ``base`` into ``seq`` (and
    the battle's ``version`` becomes ``seq``), and a view with a log appends the update's
    events. None when the update does not apply
    to the version held (``seq``): a gap, and the client asks for a ``resync``."""
    if message["type"] == "snapshot":
        return dict(message["battle"])
    if message["base"] != seq or not battle:
        return None
    following: dict[str, Any] = jsonpatch.apply_patch(battle, message["patch"])
    following["version"] = message["seq"]
    if "log" in following:
        following["log"] = [*following["log"], *message["events"]]
    return following


# The host's steps of the phase changes (bench.run): seven changes of a fresh battle.
STEPS = ["start_round", "next", "next", "next", "next", "next", "open_vote"]


def update_sizes() -> list[int]:
    """The bytes of the engine's ``update`` to a phone for each of ``STEPS``, from the same
    battle played in the core: the baselines pad theirs to these sizes (``peer_update``),
    so that every server sends the same bytes for the same change (docs/performance.md)."""
    start = int(time.time() * 1000)
    battle = game.create(CODE, draft(), start)
    sizes = []
    for number, kind in enumerate(STEPS, start=1):
        now = start + 1000 * number  # the steps' times differ, as the timers' deadlines then do
        outcome = game.apply(battle, TypeAdapter(Command).validate_python({"type": kind}), game.Context(now_ms=now))
        announced = announcements.committed(battle, outcome.battle)
        events = [public_event(event.model_dump(mode="json")) for event in announced.events]
        frame = protocol.update(announced.version, battle.version, now, public_patch(announced.patch), events)
        sizes.append(len(frame.encode()))
        battle = outcome.battle
    return sizes


def peer_update(version: int, server_ms: int, action: str, sizes: list[int]) -> str:
    """The ``update`` the baselines broadcast for a host's step: the engine's shape, the
    version as its change, padded to the engine's size for that step (``update_sizes``)."""
    update = {"type": "update", "seq": version, "base": version - 1, "server_ms": server_ms,
              "patch": [{"op": "replace", "path": "/version", "value": version}],
              "events": [{"at_ms": server_ms, "action": action}], "pad": ""}  # fmt: skip
    short = (sizes[version - 1] if version <= len(sizes) else 0) - len(encode(update).encode())
    return encode(update | {"pad": "x" * max(0, short)})


def text(value: bytes | str) -> str:
    """A Redis reply as text."""
    return value.decode() if isinstance(value, bytes) else value


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def vote_message(kind: Kind, number: int, vote_id: str, choice: str, ballot_id: str) -> bytes:
    """A device's ballot; ``number`` is its request id (the Socket.IO ack id on P1)."""
    body = {"type": "vote", "vote_id": vote_id, "choice": choice, "ballot_id": ballot_id, "id": str(number)}
    if kind == "p1":
        return f'42{number}["vote",{encode(body)}]'.encode()
    return encode(body).encode()


def head_type(payload: bytes) -> bytes:
    """The ``type`` of a frame from its first bytes, b"" when it has none there."""
    start = payload.find(b'"type":"', 0, 64)
    if start < 0:
        return b""
    start += 8
    return payload[start : payload.find(b'"', start, start + 24)]


def head_seq(payload: bytes) -> int | None:
    found = _SEQ.search(payload, 0, 96)
    return int(found.group(1)) if found else None


def parse_ack(kind: Kind, payload: bytes) -> dict[str, Any] | None:
    """The ``ballot`` (or ``error``) reply in a frame, or None when it is none."""
    if kind == "p1":
        if not payload.startswith(b"43"):
            return None
        reply: list[dict[str, Any]] = json.loads(payload[_ACK_ID.match(payload).end() :])  # type: ignore[union-attr]
        return reply[0]
    if head_type(payload) in (b"ballot", b"error"):
        parsed: dict[str, Any] = json.loads(payload)
        return parsed
    return None
