"""The one interface every store implements, and the values it returns.

A store holds each battle as one versioned document plus the counters that change
too often to go through it (ballots, reactions), and it carries messages between
the server processes that serve the same battle. Every method that writes is
atomic on its own:

- ``commit`` replaces a battle only if the stored version is the one the change was
  decided on (compare-and-set), and in the same step updates what ballots are
  checked against (the ``BallotGate``) and the timer index;
- ``cast_ballot`` records one device's choice in one vote, replaces an earlier
  choice, counts a retried ``ballot_id`` once, and moves the running totals, all in
  one step, refusing it when the vote is not open;
- ``react`` adds one reaction to a counter;
- ``submit`` stores a phone's challenge or question as a row of its own, checking the
  device's block, cool-down and the caps on waiting submissions, and announces it to
  the battle's subscribers; ``moderate`` changes one's status (or blocks or unblocks
  its device), records the decision on each submission it changed, and announces the
  change, in the same step.

Implementations: ``EmbeddedStore`` (SQLite, one process, the default) and
``RedisStore`` (any number of processes and machines). Both pass
``tests/test_stores.py``.
"""

from __future__ import annotations

import abc
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from battles import game, persuasion
from battles.errors import Refused
from battles.model import (
    MAX_DECISIONS,
    Battle,
    Block,
    Decision,
    Moderation,
    Moderator,
    Persuasion,
    Submission,
    SubmissionStatus,
)

Listener = Callable[[str, bytes], None]
"""Called with (battle code, message) for every message published on a subscribed battle."""


@dataclass(frozen=True)
class Secrets:
    """The bearer tokens of one battle's privileged links."""

    host: str
    screen: str
    cohost: str

    @classmethod
    def mint(cls) -> Secrets:
        # 256 bits each: not guessable, and compared in constant time (battles.security).
        return cls(*(secrets.token_urlsafe(32) for _ in range(3)))


class BattleRow(NamedTuple):
    """What every write of a battle stores, in the same atomic step: the document, the
    ballot gate ``cast_ballot`` checks without parsing it (``game.ballot_gate``) and the
    timer index entry (``game.next_deadline``). Both stores write these fields, by
    these names, in this order."""

    version: int
    state: str  # Battle.model_dump_json()
    vote_id: str | None  # None: no vote in the round
    vote_open: int  # 1 or 0
    vote_deadline_ms: int  # 0: no deadline (the vote's timer is paused)
    vote_choices: str  # JSON list of battler ids
    vote_opened_ms: int
    vote_closed_ms: int  # game.BallotGate.closed_ms: 0 unless remote windows may run
    remote_default_ms: int  # the remote devices' delay by default (model.window_delay)
    remote_max_ms: int  # the longest; 0 while the remote link is off
    next_deadline_ms: int | None

    @classmethod
    def of(cls, battle: Battle) -> BattleRow:
        gate = game.ballot_gate(battle)
        return cls(
            battle.version,
            battle.model_dump_json(),
            gate.vote_id if gate else None,
            int(gate.open) if gate else 0,
            gate.deadline_ms if gate else 0,
            json.dumps(list(gate.choices) if gate else []),
            gate.opened_ms if gate else 0,
            gate.closed_ms if gate else 0,
            battle.rules.remote_delay_seconds * 1000,
            battle.rules.max_delay_ms,
            game.next_deadline(battle),
        )


def ballot_refused(reason: str) -> Refused:
    """A ballot's refusal (``wrong_vote``, ``vote_closed``, ``vote_not_open``,
    ``bad_choice``, ``limit_reached``) as both stores raise it: the limit names itself."""
    if reason == "limit_reached":
        return Refused(reason, limit="ballots", most=game.MAX_BALLOTS_PER_DEVICE)
    return Refused(reason)


@dataclass(frozen=True)
class BallotReceipt:
    """What a store did with one ballot.

    ``counted``: a new ballot; ``changed``: it replaced the device's earlier choice;
    ``unchanged``: the same choice again; ``duplicate``: this ballot id was seen
    before, so nothing moved. ``choice`` is the device's choice after the step.
    """

    status: Literal["counted", "changed", "unchanged", "duplicate"]
    choice: str


@dataclass(frozen=True)
class Tally:
    totals: dict[str, int] = field(default_factory=dict)
    ballots: int = 0
    # A closed vote's digest of its counted ballots (battles.receipts); None while it is open.
    digest: str | None = None
    # The online part of ``totals``: the remote devices' ballots (docs/rules.md, "Hall and
    # online"); the hall's part is the rest. A choice no remote device made is left out.
    online: dict[str, int] = field(default_factory=dict)


class AddressLimits(Protocol):
    """One per-address budget (a token bucket per client address; battles.ratelimit)."""

    async def take(self, address: str, spend: bool = True) -> float:
        """0.0 when ``address`` has a token (spent when ``spend``), else the seconds
        until it has one; an address out of tokens goes into no debt."""
        ...


@dataclass(frozen=True)
class BattleRecord:
    """Everything a store keeps of one battle, as ``battles backup`` writes it and
    ``battles restore`` puts it back (docs/operations.md, "Backup and restore"). The
    running totals are not in it: they follow from the ballots."""

    battle: Battle
    secrets: Secrets
    ballots: dict[str, dict[str, str]]  # vote id -> device -> choice
    seen: dict[str, list[tuple[str, str]]]  # vote id -> (device, ballot id) already counted
    reactions: dict[int, dict[str, dict[str, int]]]  # round -> battler -> kind -> count
    submissions: list[Submission] = field(default_factory=list)  # every one, in order
    blocked: list[Block] = field(default_factory=list)  # devices blocked for the evening
    # The remote audience (docs/protocol.md): each remote device's own delay (None: none),
    # and per vote the devices whose ballot is in its online part.
    remote: dict[str, int | None] = field(default_factory=dict)
    online: dict[str, list[str]] = field(default_factory=dict)


def cooldown_left(last_ms: int | None, now_ms: int, cooldown_ms: int) -> int:
    """How long a device that last acted at ``last_ms`` waits before it acts again: 0 when it
    may now (docs/protocol.md: ``cooldown`` for reactions, ``too_soon`` for submissions).

    Both clocks are the ones passed in, never a store's own: the last action counts at the
    time it came with, whatever cool-down it came under (the Redis store's Lua does the same,
    ``redis._COOLDOWN``). Never more than the cool-down: a last action stamped by a process
    whose clock runs ahead (``now_ms`` before ``last_ms``) costs the cool-down, no more."""
    if last_ms is None or now_ms - last_ms >= cooldown_ms:
        return 0
    return min(cooldown_ms, cooldown_ms - (now_ms - last_ms))


# Statuses that wait for a moderator: what the caps on pending submissions count.
WAITING = ("pending", "held")


def moderation_changes(
    named: Submission, decision: Decision, device_blocked: bool, of_device: list[Submission]
) -> list[Submission]:
    """What a moderator's decision changes, for a store that decides it in its own code
    (the Redis store does the same in its Lua script): the submissions whose status moves,
    in order, each with its new status, ``rev`` unchanged and the decision recorded. Or
    ``Refused``, and nothing changes (docs/protocol.md, ``moderate``).

    ``named``: the submission decided on; ``of_device``: every submission of its device
    (``named`` among them); ``device_blocked``: whether that device is blocked now.
    """
    action = decision.action
    if action == "approve" and named.status == "blocked":
        raise Refused("device_blocked")
    if action == "unblock" and not device_blocked:
        raise Refused("not_blocked")
    targets: list[tuple[Submission, SubmissionStatus]]
    if action == "approve":
        targets = [(named, "approved")]
    elif action == "dismiss":
        targets = [] if named.status == "blocked" else [(named, "dismissed")]  # a blocked one is dismissed already
    elif action == "block":
        # The named one, and every other of the device still waiting for a moderator.
        targets = [(item, "blocked") for item in of_device if item.id == named.id or item.status in WAITING]
    else:
        # Back where the block found them: waiting, apart when the word filter held them
        # (it names the word it found: an empty ``held_for`` held nothing).
        targets = [(item, "held" if item.held_for else "pending") for item in of_device if item.status == "blocked"]
    changed = [(item, status) for item, status in targets if item.status != status]
    if any(len(item.decisions) >= MAX_DECISIONS for item, _ in changed):
        raise Refused("limit_reached", limit="decisions", most=MAX_DECISIONS)
    return [
        item.model_copy(update={"status": status, "decisions": [*item.decisions, decision]}) for item, status in changed
    ]


class Processes(abc.ABC):
    """What the server processes of one store share: the connection's life, the signing
    key, the fan-out of announcements and who is connected. Every method of every concern
    raises ``Unavailable`` when the backing service cannot be reached."""

    @abc.abstractmethod
    async def start(self, listener: Listener) -> None:
        """Connect, and deliver every message of a subscribed battle to ``listener``."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def healthy(self) -> bool: ...

    @abc.abstractmethod
    async def signing_key(self) -> bytes:
        """A key shared by every process of this store, made on first use."""

    @abc.abstractmethod
    async def set_signing_key(self, key: bytes) -> None:
        """Replace the signing key (``battles restore``: the restored devices' ids are
        signed with the backup's key). Servers read it at every handshake."""

    @abc.abstractmethod
    async def subscribe(self, code: str) -> None: ...

    @abc.abstractmethod
    async def announce(self, code: str, announcement: bytes) -> None:
        """Publish an announcement that no write goes with (``announcements.Entered``) to
        the battle's subscribers in every process, in order with the others."""

    @abc.abstractmethod
    async def unsubscribe(self, code: str) -> None: ...

    @abc.abstractmethod
    async def report_presence(self, code: str, process: str, counts: dict[str, int], now_ms: int) -> None:
        """This process's connection counts per role for one battle."""

    @abc.abstractmethod
    async def presence(self, code: str, now_ms: int) -> dict[str, int]:
        """Connection counts per role summed over the processes that reported lately."""


class Battles(abc.ABC):
    """Battles and their versions: each one a versioned document, written by compare-and-set,
    with its secrets, its timer index entry, and its backup and restore."""

    @abc.abstractmethod
    async def create(self, battle: Battle, tokens: Secrets) -> bool:
        """Store a new battle; False when its code is taken."""

    @abc.abstractmethod
    async def load(self, code: str) -> Battle | None: ...

    @abc.abstractmethod
    async def secrets(self, code: str) -> Secrets | None: ...

    @abc.abstractmethod
    async def commit(self, battle: Battle, announcement: bytes) -> bool:
        """Replace the battle if the stored version is ``battle.version - 1``, and in the
        same atomic step publish ``announcement`` to the battle's subscribers in every
        process: versions are announced in the order they were committed, and none is
        committed without being announced (docs/architecture.md, "Delivery").

        False (and nothing written or announced) when another change got there first.
        """

    @abc.abstractmethod
    async def version(self, code: str) -> int | None:
        """The stored battle's version, None when there is no such battle: a cheap read."""

    @abc.abstractmethod
    async def due(self, now_ms: int) -> list[str]:
        """Codes of battles whose next deadline (``game.next_deadline``) has passed, sorted
        by code, like ``codes``."""

    # --- backup and restore ---------------------------------------------------------

    @abc.abstractmethod
    async def codes(self) -> list[str]:
        """The code of every stored battle, sorted."""

    @abc.abstractmethod
    async def record(self, code: str) -> BattleRecord | None:
        """Everything stored of one battle, None when there is no such battle."""

    @abc.abstractmethod
    async def put_record(self, record: BattleRecord) -> bool:
        """Store a battle from a record; False (and nothing written) when its code is taken."""

    @staticmethod
    def vote_ids(battle: Battle) -> list[str]:
        """Every vote and stance poll of the battle, voided ones too: their ballots are kept."""
        return [vote.id for vote in battle.stances] + [vote.id for rnd in battle.rounds for vote in rnd.votes]


class Ballots(abc.ABC):
    """The audience's counters: ballots and their tallies, reactions and their counts."""

    @abc.abstractmethod
    async def cast_ballot(
        self, code: str, vote_id: str, device: str, choice: str, ballot_id: str, now_ms: int, remote: bool = False
    ) -> BallotReceipt:
        """Record a ballot, or raise ``Refused`` (vote_closed, vote_not_open, wrong_vote,
        bad_choice): inside the device's vote window (``game.window_refusal``), the hall's,
        or for a ``remote`` one the hall's shifted by the delay it keeps (``watch``). The
        device's ballot counts in the online part of the tally when its newest one is
        ``remote``, else in the hall's; a ballot that moves it from one part to the other
        with the same choice is ``unchanged``.

        A ``ballot_id`` this device already sent in this vote is ``duplicate`` whatever
        the vote's state, so a phone resending an acknowledged ballot after the close
        still hears that it counted.
        """

    # The remote audience (docs/protocol.md, "The remote audience"): each remote device's
    # stream delay, kept for the evening, read by cast_ballot in its own atomic step.

    @abc.abstractmethod
    async def watch(self, code: str, device: str) -> int | None:
        """Keep ``device`` as a remote viewer of the battle (once; it stays one for the
        evening) and return the delay it keeps, None when it has none of its own."""

    @abc.abstractmethod
    async def set_delay(self, code: str, device: str, delay_ms: int) -> int:
        """Keep ``delay_ms`` as a remote device's delay, capped at the battle's maximum,
        and return what is kept; or ``Refused("delay_locked")`` while a closed vote's
        remote windows run (the reveal's wait is decided from the delays kept then)."""

    @abc.abstractmethod
    async def remote_delays(self, code: str) -> tuple[int | None, ...]:
        """The delays the battle's remote devices keep, each once (None: a device with none)."""

    @abc.abstractmethod
    async def ballot_of(self, code: str, vote_id: str, device: str) -> str | None: ...

    @abc.abstractmethod
    async def ballots(self, code: str, vote_id: str) -> dict[str, str]:
        """Every counted ballot of one vote: device -> choice (``battles.receipts`` counts a
        closed vote from them)."""

    @abc.abstractmethod
    async def online_devices(self, code: str, vote_id: str) -> set[str]:
        """The devices whose counted ballot in the vote is a remote one (cast with
        ``remote``): its online part (docs/rules.md, "Hall and online")."""

    @abc.abstractmethod
    async def tally(self, code: str, vote_id: str) -> Tally: ...

    @abc.abstractmethod
    async def transitions(self, code: str, before: str, after: str) -> persuasion.Transitions:
        """How many devices made each pair of choices in the votes ``before`` and ``after``:
        (choice in ``before``, choice in ``after``) -> devices, None for a vote a device
        took no part in. Counts only: no device leaves the store (docs/rules.md, "Who
        moved minds")."""

    async def persuasion(self, battle: Battle) -> list[Persuasion]:
        """The persuasion matrix of every pair of polls that has one (``persuasion.pairs``)."""
        return [
            persuasion.matrix(before, after, await self.transitions(battle.code, before.id, after.id), number)
            for before, after, number in persuasion.pairs(battle)
        ]

    @abc.abstractmethod
    async def react(
        self, code: str, round_number: int, battler: str, kind: str, device: str, now_ms: int, cooldown_ms: int
    ) -> None:
        """Count a reaction, or raise ``Refused("cooldown", wait_ms=...)`` when the same
        device reacted less than ``cooldown_ms`` ago in this battle, on any socket of it
        in any process (docs/protocol.md, ``react``)."""

    @abc.abstractmethod
    async def reactions(self, code: str, round_number: int) -> dict[str, dict[str, int]]:
        """Reaction counts of one round: battler id -> kind -> count."""

    async def all_reactions(self, battle: Battle) -> dict[int, dict[str, dict[str, int]]]:
        """The reaction counts of every round of ``battle``."""
        return {rnd.number: await self.reactions(battle.code, rnd.number) for rnd in battle.rounds}

    # What the anomaly flags read (battles.anomalies): informative, so neither waits to be
    # durable nor goes into a backup.

    @abc.abstractmethod
    async def first_seen(self, code: str, device: str, address: str, now_ms: int) -> int:
        """When ``device`` first joined the battle: ``now_ms`` (and ``address``, where it
        came from) are kept the first time, and the kept time is returned every time."""

    @abc.abstractmethod
    async def hall(self, code: str, before_ms: int) -> dict[str, int]:
        """The devices first seen in the battle before ``before_ms``: address -> how many."""

    @abc.abstractmethod
    async def note(self, code: str, vote_id: str, marks: list[str]) -> None:
        """Count each of a ballot's marks (``anomalies.marks``) in the vote, one each."""

    @abc.abstractmethod
    async def noted(self, code: str, vote_id: str) -> dict[str, int]:
        """The vote's marks: mark -> count."""


class Submissions(abc.ABC):
    """The audience's challenges and questions, the moderators' decisions on them, and the
    devices blocked for the evening."""

    @abc.abstractmethod
    async def submit(
        self, code: str, submission: Submission, cooldown_ms: int, most_per_device: int, most_waiting: int
    ) -> Submission:
        """Store a submission (its ``id``, ``rev`` and the rest of the battle's numbering
        are the store's), and announce it (``announcements.submissions``) in the same step. Or
        raise ``Refused``: ``device_blocked``; ``limit_reached`` when the device already
        has ``most_per_device`` waiting, or the battle ``most_waiting`` (pending or held);
        ``too_soon`` (``wait_ms``) when the device submitted less than ``cooldown_ms`` ago,
        on any socket and process. The ``id`` and ``rev`` passed in are replaced."""

    @abc.abstractmethod
    async def moderate(
        self, code: str, submission_id: str, action: Moderation, by: Moderator, at_ms: int
    ) -> Submission:
        """Approve or dismiss a submission, block its device for the evening (the
        submission and every other waiting one of the device become ``blocked``, and the
        device's further submissions are refused), or unblock it (its ``blocked`` ones
        wait again: ``moderation_changes``); record ``Decision(action, by, at_ms)`` on
        every submission that changed, and announce them, in the same step. Returns the
        named submission after it. ``Refused``: ``unknown_submission``; ``device_blocked``
        (approving a blocked one); ``not_blocked`` (unblocking a device that is not);
        ``limit_reached`` (a submission has ``MAX_DECISIONS``)."""

    @abc.abstractmethod
    async def submission(self, code: str, submission_id: str) -> Submission | None: ...

    @abc.abstractmethod
    async def submissions(self, code: str) -> list[Submission]:
        """Every submission of the battle, in the order they were stored."""

    @abc.abstractmethod
    async def submissions_of(self, code: str, device: str) -> list[Submission]:
        """One device's submissions, in the order they were stored: what its phone's
        snapshot says became of them (a cheap read: a hall that reconnects reads it once
        per phone)."""

    @abc.abstractmethod
    async def blocks(self, code: str) -> list[Block]:
        """The devices blocked in this battle, in the order they were blocked."""


class Limits:
    """Limits and cool-downs. The per-address budgets are here; the per-device cool-downs of
    reactions and submissions are checked inside ``Ballots.react`` and ``Submissions.submit``,
    in the same atomic step as what they guard, by one rule (``cooldown_left``)."""

    def shared_limits(self, name: str, per_minute: float, burst: int) -> AddressLimits | None:
        """The per-address budget ``name`` shared by every process of this store, or
        None when one process serves the store (the embedded store): then each budget
        lives in that process's memory (``battles.ratelimit.address_limits``)."""
        return None


class Store(Processes, Battles, Ballots, Submissions, Limits):
    """Every concern of a store in one interface, as callers use it: ``store.commit(...)``,
    ``store.submit(...)``; each implementation is split the same way, one class per
    concern on a shared connection (docs/architecture.md, "Stores"). All methods raise ``Unavailable`` when the backing
    service cannot be reached. A write that timed out may still have happened: a
    ballot resent with the same ``ballot_id`` is then acknowledged as ``duplicate``,
    and a host command finds the battle's version moved on (``Conflict``)."""
