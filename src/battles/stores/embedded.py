"""The embedded store: one SQLite file, one server process (the default).

Everything that must outlive the process is in the file: the battles with their
secrets and ballot gates, the ballots, the ballot ids already seen, the reactions,
the timer index and the signing key, so the evening goes on after a reboot. What
only matters while the process runs (who is connected, who is subscribed) is kept
in memory: with one process there is nobody to share it with.

Every transaction runs directly on the event loop's thread. Without an fsync they
take well under a millisecond, which is cheaper than a hop to a worker thread, and it
means no two operations ever interleave: each atomic operation of
``battles.stores.base`` is one ``BEGIN IMMEDIATE ... COMMIT`` transaction with no
``await`` inside it.

Durability: WAL with ``synchronous=NORMAL`` (a commit writes the WAL, and does not wait
for the disk), then an fsync of the WAL in a worker thread before the operation returns
(``_durable``). The WAL is written in order, so one fsync makes every transaction
before it durable: the writers that arrive while an fsync runs share the next one (a
group commit). So an acknowledged ballot or command survives a crash of the process
and a power cut of the laptop (docs/operations.md), the event loop never waits for the
disk (an fsync on the test machine: p50 4 ms, p99 125 ms under load, which was every
socket's wait when it ran on the loop), and a commit's announcement goes out while its
fsync runs: the screens show a host's change without waiting for the disk, and the
host's ``ack`` waits for it.

One process only: fan-out and presence live in this process's memory, so a second
server process on the same file would neither see the other's messages nor its
audience. Other programs may read the file meanwhile (WAL readers do not block).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from battles import announcements, game, persuasion
from battles.errors import Fault, Refused, Unavailable
from battles.model import Battle, Block, Decision, Moderation, Moderator, Submission, window_delay
from battles.stores.base import (
    WAITING,
    BallotReceipt,
    Ballots,
    BattleRecord,
    BattleRow,
    Battles,
    Listener,
    Processes,
    Secrets,
    Store,
    Submissions,
    Tally,
    ballot_refused,
    cooldown_left,
    moderation_changes,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# IF NOT EXISTS throughout: opening an existing file is the normal case (a restart).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS battles (
    code TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,                  -- Battle.model_dump_json()
    host_token TEXT NOT NULL,
    screen_token TEXT NOT NULL,
    cohost_token TEXT NOT NULL,
    -- The ballot gate (game.ballot_gate), so cast_ballot decides without parsing the state.
    vote_id TEXT,
    vote_open INTEGER NOT NULL,
    vote_deadline_ms INTEGER NOT NULL,    -- 0: no deadline (the vote's timer is paused)
    vote_choices TEXT NOT NULL,           -- JSON list of battler ids
    vote_opened_ms INTEGER NOT NULL DEFAULT 0,
    vote_closed_ms INTEGER NOT NULL DEFAULT 0,     -- 0 unless remote windows may run
    remote_default_ms INTEGER NOT NULL DEFAULT 0,  -- model.window_delay's default and maximum
    remote_max_ms INTEGER NOT NULL DEFAULT 0,
    next_deadline_ms INTEGER              -- game.next_deadline: the timer index
);
CREATE INDEX IF NOT EXISTS battles_by_deadline
    ON battles (next_deadline_ms) WHERE next_deadline_ms IS NOT NULL;
-- One row per device and vote: changing a choice replaces it (docs/rules.md, promises).
-- The totals are counted from these rows, so they can never drift from the ballots.
CREATE TABLE IF NOT EXISTS ballots (
    code TEXT NOT NULL,
    vote_id TEXT NOT NULL,
    device TEXT NOT NULL,
    choice TEXT NOT NULL,
    online INTEGER NOT NULL DEFAULT 0,    -- 1: a remote device's (docs/rules.md, "Hall and online")
    PRIMARY KEY (code, vote_id, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_ballots (
    code TEXT NOT NULL,
    vote_id TEXT NOT NULL,
    device TEXT NOT NULL,
    ballot_id TEXT NOT NULL,
    PRIMARY KEY (code, vote_id, device, ballot_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reactions (
    code TEXT NOT NULL,
    round INTEGER NOT NULL,
    battler TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (code, round, battler, kind)
) WITHOUT ROWID;
-- Challenges and questions from phones (Store.submit), one row each; "item" is the
-- Submission's JSON without its id, status, rev and decisions, which are columns.
CREATE TABLE IF NOT EXISTS submissions (
    code TEXT NOT NULL,
    number INTEGER NOT NULL,
    device TEXT NOT NULL,
    status TEXT NOT NULL,
    rev INTEGER NOT NULL,
    item TEXT NOT NULL,
    decisions TEXT NOT NULL DEFAULT '[]',  -- JSON list of Decision
    PRIMARY KEY (code, number)
) WITHOUT ROWID;
-- A device's own submissions (Store.submissions_of, a phone's snapshot) and its waiting count.
CREATE INDEX IF NOT EXISTS submissions_of_device ON submissions (code, device);
CREATE TABLE IF NOT EXISTS blocked_devices (
    code TEXT NOT NULL,
    device TEXT NOT NULL,
    submission TEXT NOT NULL DEFAULT '',  -- the Block's decision
    decided_by TEXT NOT NULL DEFAULT 'host',
    at_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (code, device)
) WITHOUT ROWID;
-- The anomaly flags' records (battles.anomalies): the devices that joined each battle,
-- when and from which address first, and each vote's marks.
CREATE TABLE IF NOT EXISTS joined_devices (
    code TEXT NOT NULL,
    device TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    address TEXT NOT NULL,
    PRIMARY KEY (code, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ballot_marks (
    code TEXT NOT NULL,
    vote_id TEXT NOT NULL,
    mark TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (code, vote_id, mark)
) WITHOUT ROWID;
-- The remote audience's devices (Ballots.watch) and the delay each keeps (NULL: none).
CREATE TABLE IF NOT EXISTS remote_devices (
    code TEXT NOT NULL,
    device TEXT NOT NULL,
    delay_ms INTEGER,
    PRIMARY KEY (code, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""

# What a file of an earlier schema needs before _SCHEMA (which creates what is missing).
_UPGRADES = {
    2: "".join(
        f"ALTER TABLE battles ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0;"
        for column in ("vote_opened_ms", "vote_closed_ms", "remote_default_ms", "remote_max_ms")
    )
    + "ALTER TABLE ballots ADD COLUMN online INTEGER NOT NULL DEFAULT 0;",
}

# How long a call waits for the write lock held by another program (a backup, a
# `sqlite3` shell) before it gives up with Unavailable. It blocks the event loop
# meanwhile, so it stays short.
BUSY_TIMEOUT_MS = 1000

# The WAL is copied into the database (a checkpoint, which syncs both files) by a worker
# thread once this many transactions went into it, never inside a commit on the event
# loop (SQLite's automatic checkpoint: every 1,000 pages, a few hundred ballots).
CHECKPOINT_EVERY = 500

# What every write of a battle sets together (BattleRow): the document, its ballot gate
# and its timer index entry.
_BATTLE_COLUMNS = BattleRow._fields
_CREATE_BATTLE = (
    f"INSERT INTO battles (code, host_token, screen_token, cohost_token, {', '.join(_BATTLE_COLUMNS)})"
    f" VALUES (?, ?, ?, ?, {', '.join('?' for _ in _BATTLE_COLUMNS)}) ON CONFLICT (code) DO NOTHING"
)
# The WHERE clause is the compare-and-set: the gate and the timer index change in
# the same statement as the state, or not at all.
_COMMIT_BATTLE = (
    f"UPDATE battles SET {', '.join(f'{column} = ?' for column in _BATTLE_COLUMNS)} WHERE code = ? AND version = ?"
)


class Cooldowns:
    """Limits and cool-downs: when each device of each battle last acted, in this process's
    memory (one process: they need not outlive it), judged by ``base.cooldown_left``."""

    # A long evening's devices: past this many, the ones whose cool-down ran out are forgotten.
    MOST_KEPT = 10_000

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}  # (code, device) -> now_ms of its last action

    def left(self, code: str, device: str, now_ms: int, cooldown_ms: int) -> int:
        return cooldown_left(self._last.get((code, device)), now_ms, cooldown_ms)

    def start(self, code: str, device: str, now_ms: int, cooldown_ms: int) -> None:
        self._last[(code, device)] = now_ms
        if len(self._last) > self.MOST_KEPT:
            self._last = {key: at_ms for key, at_ms in self._last.items() if now_ms - at_ms < cooldown_ms}


class _EmbeddedFile(Processes):
    """The database handle every concern of the store shares, its transactions and their
    durability; and what lives in this process's memory: the connection's life, the fan-out
    and presence. ``path`` is a file name, or ``":memory:"``."""

    def __init__(self, path: str, presence_ttl_ms: int = 10_000) -> None:
        self.path = path
        self.presence_ttl_ms = presence_ttl_ms
        self._db: sqlite3.Connection | None = None
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribed: set[str] = set()
        # code -> process -> (counts, at_ms)
        self._presence: dict[str, dict[str, tuple[dict[str, int], int]]] = {}
        # One process: the cool-downs live in its memory (they need not outlive it).
        self._reacted = Cooldowns()
        self._submitted = Cooldowns()
        # Group commit (_durable): transactions committed, and how many of them an
        # fsync of the WAL has made durable; one fsync runs at a time.
        self._wal: str | None = None  # None in memory: nothing to make durable
        self._written = 0
        self._synced = 0
        self._syncing = asyncio.Lock()
        # After a failed fsync the kernel may have dropped the pages it could not write and
        # a later fsync succeed: nothing may be acknowledged until a restart reads the file.
        self._sync_failed = False
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpointed = 0  # _written at the last checkpoint
        self._checkpointing: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        with _reachable():
            # isolation_level=None: no implicit transactions; every write below opens
            # its own BEGIN IMMEDIATE, so a transaction spans exactly one operation.
            db = sqlite3.connect(self.path, isolation_level=None)
            try:
                db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")  # the fsync is _durable's
                db.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint is _checkpoint's
                found = int(db.execute("PRAGMA user_version").fetchone()[0])
                if found > SCHEMA_VERSION:
                    raise Fault(f"{self.path} has schema {found}, newer than this engine's {SCHEMA_VERSION}")
                upgrade = (
                    "".join(_UPGRADES[version] for version in range(found + 1, SCHEMA_VERSION + 1)) if found else ""
                )
                db.executescript(
                    f"BEGIN IMMEDIATE; {upgrade} {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
            except BaseException:
                db.close()
                raise
        self._db = db
        if self.path != ":memory:":
            self._wal = f"{self.path}-wal"
            # What the schema wrote, and the WAL's own entry in its directory, once.
            for path in (self._wal, os.path.dirname(os.path.abspath(self.path))):
                await asyncio.to_thread(_fsync, path)
            with _reachable():
                # Used by one worker thread at a time (_checkpoint), never by the loop.
                self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._checkpointer.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    async def close(self) -> None:
        if self._checkpointing is not None:
            await asyncio.gather(self._checkpointing, return_exceptions=True)
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._db is not None:
            self._db.close()
            self._db = None
        self._subscribed.clear()

    async def healthy(self) -> bool:
        if self._db is None or self._sync_failed:
            return False
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    async def signing_key(self) -> bytes:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO settings (name, value) VALUES ('signing_key', ?) ON CONFLICT (name) DO NOTHING",
                (secrets.token_bytes(32),),
            )
            key = bytes(db.execute("SELECT value FROM settings WHERE name = 'signing_key'").fetchone()[0])
        await self._durable()  # device ids signed with it must stay valid after a power cut
        return key

    async def set_signing_key(self, key: bytes) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO settings (name, value) VALUES ('signing_key', ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (key,),
            )
        await self._durable()

    # --- fan-out and presence: this process's memory ----------------------------------

    async def subscribe(self, code: str) -> None:
        self._subscribed.add(code)

    async def unsubscribe(self, code: str) -> None:
        self._subscribed.discard(code)

    async def report_presence(self, code: str, process: str, counts: dict[str, int], now_ms: int) -> None:
        self._presence.setdefault(code, {})[process] = (dict(counts), now_ms)

    async def presence(self, code: str, now_ms: int) -> dict[str, int]:
        reports = self._presence.get(code, {})
        for process, (_, at_ms) in list(reports.items()):
            if now_ms - at_ms > self.presence_ttl_ms:
                del reports[process]
        total: dict[str, int] = {}
        for counts, _ in reports.values():
            for role, count in counts.items():
                total[role] = total.get(role, 0) + count
        return total

    # --- helpers ----------------------------------------------------------------------

    async def announce(self, code: str, announcement: bytes) -> None:
        self._announce(code, announcement)

    def _announce(self, code: str, message: bytes) -> None:
        if code in self._subscribed:
            # As with a commit: on a later turn of the loop, never in the caller's stack.
            self._running_loop().call_soon(self._deliver, code, message)

    def _deliver(self, code: str, message: bytes) -> None:
        # Checked again at delivery: an unsubscribe between the commit and now wins.
        if self._listener is not None and code in self._subscribed:
            self._listener(code, message)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise Fault("EmbeddedStore used before start() or after close()")
        return self._db

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise Fault("EmbeddedStore used before start()")
        return self._loop

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic operation. IMMEDIATE takes the write lock before the first read,
        so nothing the operation decides on can change before it writes."""
        db = self._connection()
        with _reachable():
            db.execute("BEGIN IMMEDIATE")
            changes = db.total_changes
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if db.total_changes != changes:  # a read-only one (signing_key, mostly) has nothing to sync
                self._written += 1

    async def _durable(self) -> None:
        """Return once every transaction committed so far is on the disk.

        One fsync of the WAL at a time, in a worker thread; a caller that finds its
        transaction covered by the fsync that just ran returns without another.
        """
        if self._wal is None:
            return
        wanted = self._written
        async with self._syncing:
            if self._sync_failed:
                raise Unavailable()
            if self._synced >= wanted:
                return
            covered = self._written
            try:
                await asyncio.to_thread(_fsync, self._wal)
            except OSError as error:
                # Written but maybe not on the disk: not acknowledged; and from now on
                # nothing is (see _sync_failed), until the server is restarted.
                self._sync_failed = True
                log.error("embedded store cannot sync %s, refusing every write until a restart: %s", self._wal, error)
                raise Unavailable() from error
            self._synced = covered
        if self._written - self._checkpointed >= CHECKPOINT_EVERY and self._checkpointing is None:
            self._checkpointed = self._written
            self._checkpointing = asyncio.create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database in a worker thread (PASSIVE: it waits for nobody)."""
        try:
            if self._checkpointer is not None:
                await asyncio.to_thread(self._checkpointer.execute, "PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:
            log.warning("embedded store checkpoint failed (tried again later): %s", error)
        finally:
            self._checkpointing = None


class _EmbeddedBattles(_EmbeddedFile, Battles):
    """Battles and their versions, each a row (``BattleRow``) written by compare-and-set."""

    async def create(self, battle: Battle, tokens: Secrets) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                _CREATE_BATTLE, (battle.code, tokens.host, tokens.screen, tokens.cohost, *BattleRow.of(battle))
            )
        await self._durable()
        return cursor.rowcount == 1

    async def load(self, code: str) -> Battle | None:
        with _reachable():
            row = self._connection().execute("SELECT state FROM battles WHERE code = ?", (code,)).fetchone()
        if row is None:
            return None
        try:
            return Battle.model_validate_json(row[0])
        except ValidationError as error:
            raise Fault(f"stored battle {code} does not parse") from error

    async def secrets(self, code: str) -> Secrets | None:
        with _reachable():
            row = (
                self._connection()
                .execute("SELECT host_token, screen_token, cohost_token FROM battles WHERE code = ?", (code,))
                .fetchone()
            )
        return None if row is None else Secrets(host=row[0], screen=row[1], cohost=row[2])

    async def commit(self, battle: Battle, announcement: bytes) -> bool:
        with self._transaction() as db:
            cursor = db.execute(_COMMIT_BATTLE, (*BattleRow.of(battle), battle.code, battle.version - 1))
            committed = cursor.rowcount == 1
        # No await between the commit and the announcement: in one process, versions
        # are announced in the order they were committed.
        if committed and battle.code in self._subscribed:
            # call_soon: the listener runs on a later turn of the loop, never inside the
            # committer's call stack, just as it would with a store across the network.
            self._running_loop().call_soon(self._deliver, battle.code, announcement)
        # The announcement goes out while the fsync runs; the caller's ack waits for it.
        await self._durable()
        return committed

    async def version(self, code: str) -> int | None:
        with _reachable():
            row = self._connection().execute("SELECT version FROM battles WHERE code = ?", (code,)).fetchone()
        return None if row is None else int(row[0])

    async def due(self, now_ms: int) -> list[str]:
        with _reachable():
            rows = (
                self._connection()
                .execute(
                    "SELECT code FROM battles WHERE next_deadline_ms <= ? ORDER BY code",
                    (now_ms,),
                )
                .fetchall()
            )
        return [str(code) for (code,) in rows]

    # --- backup and restore ---------------------------------------------------------

    async def codes(self) -> list[str]:
        with _reachable():
            rows = self._connection().execute("SELECT code FROM battles ORDER BY code").fetchall()
        return [str(code) for (code,) in rows]


class _EmbeddedBallots(_EmbeddedFile, Ballots):
    """Ballots (one row per device and vote; a tally counts them) and reactions."""

    async def cast_ballot(
        self, code: str, vote_id: str, device: str, choice: str, ballot_id: str, now_ms: int, remote: bool = False
    ) -> BallotReceipt:
        receipt = self._record_ballot(code, vote_id, device, choice, ballot_id, now_ms, remote)
        # A duplicate too: its first sending may have been recorded and never synced.
        await self._durable()
        return receipt

    def _record_ballot(
        self, code: str, vote_id: str, device: str, choice: str, ballot_id: str, now_ms: int, remote: bool
    ) -> BallotReceipt:
        key = (code, vote_id, device)
        with self._transaction() as db:
            # A resent ballot that was already recorded is acknowledged again, even after the close.
            if db.execute(
                "SELECT 1 FROM seen_ballots WHERE code = ? AND vote_id = ? AND device = ? AND ballot_id = ?",
                (*key, ballot_id),
            ).fetchone():
                row = db.execute(
                    "SELECT choice FROM ballots WHERE code = ? AND vote_id = ? AND device = ?", key
                ).fetchone()
                if row is None:
                    raise Fault(f"ballot {ballot_id} seen in {code}/{vote_id} without a stored choice")
                return BallotReceipt("duplicate", str(row[0]))
            row = db.execute(_SELECT_GATE, (code,)).fetchone()
            if row is None or row[0] is None or row[0] != vote_id:
                raise Refused("wrong_vote")
            _, is_open, deadline_ms, choices, opened_ms, closed_ms, default_ms, max_ms = row
            gate = game.BallotGate(
                vote_id, bool(is_open), deadline_ms, tuple(json.loads(choices)), opened_ms, closed_ms
            )
            delay_ms = window_delay(_delay_of(db, code, device), default_ms, max_ms) if remote else 0
            refusal = game.window_refusal(gate, delay_ms, now_ms)
            if refusal is not None:
                raise Refused(refusal)
            if choice not in gate.choices:
                raise Refused("bad_choice")
            (recorded,) = db.execute(
                "SELECT count(*) FROM seen_ballots WHERE code = ? AND vote_id = ? AND device = ?", key
            ).fetchone()
            if recorded >= game.MAX_BALLOTS_PER_DEVICE:
                raise ballot_refused("limit_reached")
            db.execute(
                "INSERT INTO seen_ballots (code, vote_id, device, ballot_id) VALUES (?, ?, ?, ?)", (*key, ballot_id)
            )
            row = db.execute(
                "SELECT choice, online FROM ballots WHERE code = ? AND vote_id = ? AND device = ?", key
            ).fetchone()
            previous: str | None = None if row is None else row[0]
            if row is None or tuple(row) != (choice, int(remote)):
                db.execute(
                    "INSERT INTO ballots (code, vote_id, device, choice, online) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (code, vote_id, device) DO UPDATE SET choice = excluded.choice,"
                    " online = excluded.online",
                    (*key, choice, int(remote)),
                )
            if previous == choice:
                return BallotReceipt("unchanged", choice)
            return BallotReceipt("counted" if previous is None else "changed", choice)

    async def watch(self, code: str, device: str) -> int | None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO remote_devices (code, device) VALUES (?, ?)", (code, device))
            return _delay_of(db, code, device)

    async def set_delay(self, code: str, device: str, delay_ms: int) -> int:
        with self._transaction() as db:
            row = db.execute("SELECT vote_closed_ms, remote_max_ms FROM battles WHERE code = ?", (code,)).fetchone()
            if row is None:
                raise Refused("no_battle")
            closed_ms, max_ms = row
            if closed_ms:
                raise Refused("delay_locked")
            held = min(delay_ms, max_ms)
            db.execute(
                "INSERT INTO remote_devices (code, device, delay_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (code, device) DO UPDATE SET delay_ms = excluded.delay_ms",
                (code, device, held),
            )
        await self._durable()
        return int(held)

    async def remote_delays(self, code: str) -> tuple[int | None, ...]:
        with _reachable():
            rows = self._connection().execute(
                "SELECT DISTINCT delay_ms FROM remote_devices WHERE code = ? ORDER BY delay_ms IS NULL, delay_ms",
                (code,),
            )
            return tuple(None if delay is None else int(delay) for (delay,) in rows)

    async def ballot_of(self, code: str, vote_id: str, device: str) -> str | None:
        with _reachable():
            row = (
                self._connection()
                .execute(
                    "SELECT choice FROM ballots WHERE code = ? AND vote_id = ? AND device = ?",
                    (code, vote_id, device),
                )
                .fetchone()
            )
        return None if row is None else str(row[0])

    async def ballots(self, code: str, vote_id: str) -> dict[str, str]:
        with _reachable():
            rows = (
                self._connection()
                .execute("SELECT device, choice FROM ballots WHERE code = ? AND vote_id = ?", (code, vote_id))
                .fetchall()
            )
        return {str(device): str(choice) for device, choice in rows}

    async def online_devices(self, code: str, vote_id: str) -> set[str]:
        with _reachable():
            rows = self._connection().execute(
                "SELECT device FROM ballots WHERE code = ? AND vote_id = ? AND online = 1", (code, vote_id)
            )
            return {str(device) for (device,) in rows}

    async def tally(self, code: str, vote_id: str) -> Tally:
        with _reachable():
            rows = (
                self._connection()
                .execute(
                    "SELECT choice, online, COUNT(*) FROM ballots WHERE code = ? AND vote_id = ?"
                    " GROUP BY choice, online",
                    (code, vote_id),
                )
                .fetchall()
            )
        totals: dict[str, int] = {}
        online: dict[str, int] = {}
        for choice, remote, count in rows:
            totals[str(choice)] = totals.get(str(choice), 0) + int(count)
            if remote:
                online[str(choice)] = int(count)
        return Tally(totals=totals, ballots=sum(totals.values()), online=online)

    async def transitions(self, code: str, before: str, after: str) -> persuasion.Transitions:
        with _reachable():
            rows = self._connection().execute(_TRANSITIONS, (code, before, code, after)).fetchall()
        return {(first, second): int(count) for first, second, count in rows}

    async def react(
        self, code: str, round_number: int, battler: str, kind: str, device: str, now_ms: int, cooldown_ms: int
    ) -> None:
        wait_ms = self._reacted.left(code, device, now_ms, cooldown_ms)
        if wait_ms:
            raise Refused("cooldown", wait_ms=wait_ms)
        self._reacted.start(code, device, now_ms, cooldown_ms)
        # Not waited on to be durable: a reaction is answered by the engagement meter, not
        # acknowledged, and the next ballot's or command's fsync takes it along.
        with self._transaction() as db:
            db.execute(
                "INSERT INTO reactions (code, round, battler, kind, count) VALUES (?, ?, ?, ?, 1)"
                " ON CONFLICT (code, round, battler, kind) DO UPDATE SET count = count + 1",
                (code, round_number, battler, kind),
            )

    async def first_seen(self, code: str, device: str, address: str, now_ms: int) -> int:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO joined_devices (code, device, first_ms, address) VALUES (?, ?, ?, ?)",
                (code, device, now_ms, address),
            )
            row = db.execute("SELECT first_ms FROM joined_devices WHERE code = ? AND device = ?", (code, device))
            return int(row.fetchone()[0])

    async def hall(self, code: str, before_ms: int) -> dict[str, int]:
        with _reachable():
            rows = self._connection().execute(
                "SELECT address, COUNT(*) FROM joined_devices WHERE code = ? AND first_ms < ? GROUP BY address",
                (code, before_ms),
            )
            return {str(address): int(count) for address, count in rows}

    async def note(self, code: str, vote_id: str, marks: list[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO ballot_marks (code, vote_id, mark, count) VALUES (?, ?, ?, 1)"
                " ON CONFLICT (code, vote_id, mark) DO UPDATE SET count = count + 1",
                [(code, vote_id, mark) for mark in marks],
            )

    async def noted(self, code: str, vote_id: str) -> dict[str, int]:
        with _reachable():
            rows = self._connection().execute(
                "SELECT mark, count FROM ballot_marks WHERE code = ? AND vote_id = ?", (code, vote_id)
            )
            return {str(mark): int(count) for mark, count in rows}

    async def reactions(self, code: str, round_number: int) -> dict[str, dict[str, int]]:
        with _reachable():
            rows = (
                self._connection()
                .execute(
                    "SELECT battler, kind, count FROM reactions WHERE code = ? AND round = ?",
                    (code, round_number),
                )
                .fetchall()
            )
        counts: dict[str, dict[str, int]] = {}
        for battler, kind, count in rows:
            counts.setdefault(str(battler), {})[str(kind)] = int(count)
        return counts


class _EmbeddedSubmissions(_EmbeddedFile, Submissions):
    """The audience's submissions, one row each, the moderators' decisions and the blocks."""

    async def submit(
        self, code: str, submission: Submission, cooldown_ms: int, most_per_device: int, most_waiting: int
    ) -> Submission:
        device = submission.device
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM blocked_devices WHERE code = ? AND device = ?", (code, device)).fetchone():
                raise Refused("device_blocked")
            waiting = f"status IN ({', '.join('?' for _ in WAITING)})"
            (mine,) = db.execute(
                f"SELECT count(*) FROM submissions WHERE code = ? AND device = ? AND {waiting}",
                (code, device, *WAITING),
            ).fetchone()
            if mine >= most_per_device:
                raise Refused("limit_reached", limit="waiting_per_device", most=most_per_device)
            (everyone,) = db.execute(
                f"SELECT count(*) FROM submissions WHERE code = ? AND {waiting}", (code, *WAITING)
            ).fetchone()
            if everyone >= most_waiting:
                raise Refused("limit_reached", limit="waiting", most=most_waiting)
            wait_ms = self._submitted.left(code, device, submission.at_ms, cooldown_ms)
            if wait_ms:
                raise Refused("too_soon", wait_ms=wait_ms)
            number, rev = db.execute(
                "SELECT coalesce(max(number), 0) + 1, coalesce(max(rev), 0) + 1 FROM submissions WHERE code = ?",
                (code,),
            ).fetchone()
            stored = submission.model_copy(update={"id": f"s{number}", "rev": rev})
            db.execute(_INSERT_SUBMISSION, _submission_row(code, stored))
        self._submitted.start(code, device, submission.at_ms, cooldown_ms)
        self._announce(code, announcements.submissions([stored]))
        await self._durable()  # acknowledged only once it is on the disk
        return stored

    async def moderate(
        self, code: str, submission_id: str, action: Moderation, by: Moderator, at_ms: int
    ) -> Submission:
        decision = Decision(action=action, by=by, at_ms=at_ms)
        with self._transaction() as db:
            named = self._stored_submission(db, code, submission_id)
            if named is None:
                raise Refused("unknown_submission")
            key = (code, named.device)
            blocked = db.execute("SELECT 1 FROM blocked_devices WHERE code = ? AND device = ?", key).fetchone()
            of_device = [
                _submission(*row) for row in db.execute(f"{_SELECT_SUBMISSIONS} AND device = ? ORDER BY number", key)
            ]
            changed = moderation_changes(named, decision, blocked is not None, of_device)
            if action == "block":
                block = Block(device=named.device, submission=named.id, by=by, at_ms=at_ms)
                db.execute(f"{_INSERT_BLOCK} ON CONFLICT DO NOTHING", _block_row(code, block))  # the first block stays
            if action == "unblock":
                db.execute("DELETE FROM blocked_devices WHERE code = ? AND device = ?", key)
            if changed:
                next_rev = "SELECT coalesce(max(rev), 0) + 1 FROM submissions WHERE code = ?"
                (rev,) = db.execute(next_rev, (code,)).fetchone()
                changed = [item.model_copy(update={"rev": rev}) for item in changed]
                db.executemany(
                    "UPDATE submissions SET status = ?, rev = ?, decisions = ? WHERE code = ? AND number = ?",
                    [(item.status, rev, _decisions_json(item), code, _submission_number(item.id)) for item in changed],
                )
        if changed:
            self._announce(code, announcements.submissions(changed))
        if changed or action in ("block", "unblock"):
            await self._durable()
        return next((item for item in changed if item.id == submission_id), named)

    @staticmethod
    def _stored_submission(db: sqlite3.Connection, code: str, submission_id: str) -> Submission | None:
        row = db.execute(f"{_SELECT_SUBMISSIONS} AND number = ?", (code, _submission_number(submission_id))).fetchone()
        return None if row is None else _submission(*row)

    async def submission(self, code: str, submission_id: str) -> Submission | None:
        with _reachable():
            return self._stored_submission(self._connection(), code, submission_id)

    async def submissions(self, code: str) -> list[Submission]:
        with _reachable():
            rows = self._connection().execute(f"{_SELECT_SUBMISSIONS} ORDER BY number", (code,)).fetchall()
        return [_submission(*row) for row in rows]

    async def submissions_of(self, code: str, device: str) -> list[Submission]:
        with _reachable():
            query = f"{_SELECT_SUBMISSIONS} AND device = ? ORDER BY number"
            rows = self._connection().execute(query, (code, device)).fetchall()
        return [_submission(*row) for row in rows]

    async def blocks(self, code: str) -> list[Block]:
        with _reachable():
            rows = (
                self._connection()
                .execute(
                    "SELECT device, submission, decided_by, at_ms FROM blocked_devices"
                    " WHERE code = ? ORDER BY at_ms, device",
                    (code,),
                )
                .fetchall()
            )
        return [
            Block(device=device, submission=submission, by=by, at_ms=at_ms) for device, submission, by, at_ms in rows
        ]


class EmbeddedStore(_EmbeddedBattles, _EmbeddedBallots, _EmbeddedSubmissions, Store):
    """See the module docstring: every concern on one database handle, and the backup and
    restore of a battle, which reads and writes all of them."""

    async def record(self, code: str) -> BattleRecord | None:
        battle, tokens = await self.load(code), await self.secrets(code)
        if battle is None or tokens is None:
            return None
        db = self._connection()
        ballots: dict[str, dict[str, str]] = {vote_id: {} for vote_id in self.vote_ids(battle)}
        seen: dict[str, list[tuple[str, str]]] = {vote_id: [] for vote_id in ballots}
        with _reachable():
            for vote_id, device, choice in db.execute(
                "SELECT vote_id, device, choice FROM ballots WHERE code = ? ORDER BY vote_id, device", (code,)
            ):
                ballots.setdefault(vote_id, {})[device] = choice
            for vote_id, device, ballot_id in db.execute(
                "SELECT vote_id, device, ballot_id FROM seen_ballots WHERE code = ? ORDER BY vote_id, device, ballot_id",
                (code,),
            ):
                seen.setdefault(vote_id, []).append((device, ballot_id))
            remote = dict(
                db.execute("SELECT device, delay_ms FROM remote_devices WHERE code = ? ORDER BY device", (code,))
            )
        online = {vote_id: sorted(await self.online_devices(code, vote_id)) for vote_id in ballots}
        return BattleRecord(
            battle, tokens, ballots, seen, await self.all_reactions(battle),
            await self.submissions(code), await self.blocks(code), remote, online,
        )  # fmt: skip

    async def put_record(self, record: BattleRecord) -> bool:
        battle, tokens, code = record.battle, record.secrets, record.battle.code
        with self._transaction() as db:
            created = db.execute(
                _CREATE_BATTLE, (code, tokens.host, tokens.screen, tokens.cohost, *BattleRow.of(battle))
            )
            if created.rowcount != 1:
                return False
            db.executemany(
                "INSERT INTO ballots (code, vote_id, device, choice, online) VALUES (?, ?, ?, ?, ?)",
                [
                    (code, vote_id, device, choice, int(device in record.online.get(vote_id, ())))
                    for vote_id, chosen in record.ballots.items()
                    for device, choice in chosen.items()
                ],
            )
            db.executemany(
                "INSERT INTO remote_devices (code, device, delay_ms) VALUES (?, ?, ?)",
                [(code, device, delay_ms) for device, delay_ms in record.remote.items()],
            )
            db.executemany(
                "INSERT INTO seen_ballots (code, vote_id, device, ballot_id) VALUES (?, ?, ?, ?)",
                [
                    (code, vote_id, device, ballot_id)
                    for vote_id, pairs in record.seen.items()
                    for device, ballot_id in pairs
                ],
            )
            db.executemany(
                "INSERT INTO reactions (code, round, battler, kind, count) VALUES (?, ?, ?, ?, ?)",
                [
                    (code, number, battler, kind, count)
                    for number, battlers in record.reactions.items()
                    for battler, kinds in battlers.items()
                    for kind, count in kinds.items()
                ],
            )
            db.executemany(_INSERT_SUBMISSION, [_submission_row(code, item) for item in record.submissions])
            db.executemany(_INSERT_BLOCK, [_block_row(code, block) for block in record.blocked])
        await self._durable()
        return True


# Devices by the pair of their choices in two votes (Ballots.transitions): those in the
# first (with their choice in the second, or NULL), then those only in the second.
_TRANSITIONS = """
WITH first AS (SELECT device, choice FROM ballots WHERE code = ? AND vote_id = ?),
     second AS (SELECT device, choice FROM ballots WHERE code = ? AND vote_id = ?)
SELECT first.choice, second.choice, COUNT(*) FROM first LEFT JOIN second USING (device)
GROUP BY first.choice, second.choice
UNION ALL
SELECT NULL, choice, COUNT(*) FROM second WHERE device NOT IN (SELECT device FROM first) GROUP BY choice
"""
_INSERT_SUBMISSION = (
    "INSERT INTO submissions (code, number, device, status, rev, item, decisions) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_SUBMISSIONS = "SELECT number, status, rev, decisions, item FROM submissions WHERE code = ?"
_SUBMISSION_FIXED = {"id", "status", "rev", "decisions"}
_INSERT_BLOCK = "INSERT INTO blocked_devices (code, device, submission, decided_by, at_ms) VALUES (?, ?, ?, ?, ?)"


_SELECT_GATE = (
    "SELECT vote_id, vote_open, vote_deadline_ms, vote_choices, vote_opened_ms, vote_closed_ms,"
    " remote_default_ms, remote_max_ms FROM battles WHERE code = ?"
)


def _delay_of(db: sqlite3.Connection, code: str, device: str) -> int | None:
    """The delay a remote device keeps (None: none of its own, or not a remote device)."""
    row = db.execute("SELECT delay_ms FROM remote_devices WHERE code = ? AND device = ?", (code, device)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _block_row(code: str, block: Block) -> tuple[str, str, str, str, int]:
    return (code, block.device, block.submission, block.by, block.at_ms)


def _decisions_json(item: Submission) -> str:
    return json.dumps([decision.model_dump(mode="json") for decision in item.decisions])


def _submission_number(submission_id: str) -> int:
    return int(submission_id[1:]) if submission_id[1:].isdigit() else 0


def _submission_row(code: str, item: Submission) -> tuple[str, int, str, str, int, str, str]:
    fixed = item.model_dump_json(exclude=_SUBMISSION_FIXED)
    return (code, _submission_number(item.id), item.device, item.status, item.rev, fixed, _decisions_json(item))


def _submission(number: int, status: str, rev: int, decisions: str, fixed: str) -> Submission:
    try:
        stored = {"id": f"s{number}", "status": status, "rev": rev, "decisions": json.loads(decisions)}
        return Submission.model_validate({**json.loads(fixed), **stored})
    except (ValidationError, ValueError) as error:
        raise Fault(f"stored submission s{number} does not parse") from error


def _fsync(path: str) -> None:
    """fsync a file (or a directory): it flushes the file, whichever descriptor wrote it."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def _reachable() -> Iterator[None]:
    """SQLite's "cannot do it now" errors (a lock held too long by another program,
    an I/O error, a full disk, a missing directory) are ``Unavailable``: the
    transaction rolled back, nothing was recorded."""
    try:
        yield
    except sqlite3.OperationalError as error:
        log.warning("embedded store unavailable: %s", error)
        raise Unavailable() from error
