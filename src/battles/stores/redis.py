"""The Redis store: any number of server processes and machines share the battles.

Keys. Every key of one battle carries the hash tag ``{CODE}``, so a Redis Cluster
keeps a battle on one slot and a Lua script may touch all of its keys at once:

    battle:{CODE}                    hash: state, version, host/screen/cohost tokens,
                                     the ballot gate (vote_id, vote_open,
                                     vote_deadline_ms, vote_choices, vote_opened_ms,
                                     vote_closed_ms, remote_default_ms, remote_max_ms)
                                     and next_deadline_ms
    battle:{CODE}:ballots:VOTE       hash: device -> choice
    battle:{CODE}:seen:VOTE          set: device|ballot_id, every ballot id already counted
    battle:{CODE}:sent:VOTE          hash: device -> how many ballot ids it has in seen
    battle:{CODE}:totals:VOTE        hash: choice -> count
    battle:{CODE}:online:VOTE        hash: device -> choice, the ballots of remote devices
    battle:{CODE}:online-totals:VOTE hash: choice -> count of those (the tally's online part)
    battle:{CODE}:reactions:ROUND    hash: battler|kind -> count
    battle:{CODE}:presence           hash: process -> {"counts": ..., "at_ms": ...}
    battle:{CODE}:submissions        hash: number -> a submission's JSON without its id,
                                     status, rev and decisions (which never change)
    battle:{CODE}:submission-states  hash: number -> "status|rev"
    battle:{CODE}:decisions          hash: number -> JSON list of its decisions (none: [])
    battle:{CODE}:submissions-by-device  hash: device -> its submissions' numbers, "3,7,"
    battle:{CODE}:queue              hash: ids (the last number handed out), rev (the
                                     queue's revision), waiting (pending or held)
    battle:{CODE}:waiting            hash: device -> its submissions pending or held
    battle:{CODE}:blocked            hash: device blocked for the evening -> its Block's
                                     JSON without the device
    battle:{CODE}:submitted:DEVICE   the now_ms of the device's last submission, for its
                                     cool-down (expires COOLDOWN_SKEW_MS after it)
    battle:{CODE}:cooldown:DEVICE    the same for the device's last reaction
    battle:{CODE}:joined             sorted set: device -> when it first joined (ms)
    battle:{CODE}:joined-from        hash: device -> the address it first joined from
    battle:{CODE}:marks:VOTE         hash: a ballot mark (battles.anomalies) -> count
    battle:{CODE}:remote             hash: remote device -> the delay it keeps in ms
                                     ("": none of its own)
    battle:{CODE}:updates            the pub/sub channel of the battle

and global keys:

    battles:deadlines                sorted set: CODE|VERSION -> deadline_ms, the timer index
    battles:signing-key              the key every process signs links and cookies with
    battles:limit:NAME:ADDRESS       hash: tokens, at_ms: one address's budget of a
                                     per-address limit (battles.ratelimit), gone once full

Atomicity. ``create``, ``commit`` and ``cast_ballot`` are Lua scripts on the
battle's slot. The timer index is global (another slot), so no script can write it
together with the state; it is a hint that ``due`` checks against the state itself,
built so that it may be early or stale but never loses a deadline (see ``_write``
and ``due``).

Sentinel. A ``redis+sentinel://`` URL names the Sentinels instead of one Redis;
every new connection (commands, ballots, the timer loop's and the fan-out's) asks
them where the primary is, so after a failover the store reconnects to the new
primary like after any outage (docs/operations.md, "Sentinel").

Replication. With ``wait_replicas`` above 0, a ballot, a battle's creation and a
host command are only reported done once ``WAIT`` says that many replicas have
them; otherwise the caller gets ``Unavailable`` and nothing is acknowledged
(docs/operations.md, "Acknowledged means replicated").

Failures. Every Redis connection or timeout error becomes ``Unavailable``, and so
do the refusals of a primary that cannot take writes now (``NOREPLICAS`` under
``min-replicas-to-write``, ``READONLY`` from a demoted primary).
Commands are not retried: a retried ``commit`` whose first try did reach Redis would
report a conflict for its own change. The one pub/sub connection (``_FanOut``) is watched by its
reader task, which reconnects and subscribes again on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal, NamedTuple, ParamSpec, TypeVar, cast

from pydantic import TypeAdapter, ValidationError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from battles import game, metrics, persuasion
from battles.errors import Fault, Refused, Unavailable
from battles.model import MAX_DECISIONS, Battle, Block, Decision, Moderation, Moderator, Submission
from battles.stores.base import (
    WAITING,
    AddressLimits,
    BallotReceipt,
    Ballots,
    BattleRecord,
    BattleRow,
    Battles,
    Limits,
    Listener,
    Processes,
    Secrets,
    Store,
    Submissions,
    Tally,
    ballot_refused,
)

log = logging.getLogger(__name__)

DEADLINES = "battles:deadlines"
SIGNING_KEY = "battles:signing-key"
# Written before each WAIT of a batch of ballots (see ``_Batch``).
REPLICATION_FENCE = "battles:replication-fence"

SENTINEL_SCHEME = "redis+sentinel://"

# The errors that mean "Redis cannot be reached right now".
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
# A primary's refusals that mean "no writes here right now": min-replicas-to-write
# sees too few replicas, or a primary that a failover demoted. Searched for, not
# matched at the start: redis-py wraps a pipeline's errors in a sentence of its own.
_NO_WRITES_NOW = re.compile(r"\b(NOREPLICAS|READONLY) ")


def _no_writes_now(error: object) -> bool:
    return isinstance(error, ResponseError) and _NO_WRITES_NOW.search(str(error)) is not None


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """``redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]``: the
    Sentinels' addresses, the service (``sentinel monitor`` name), the database and
    the password of the Redis nodes (the Sentinels themselves take none)."""
    rest = url[len(SENTINEL_SCHEME) :] if url.startswith(SENTINEL_SCHEME) else ""
    password: str | None = None
    hosts, _, path = rest.partition("/")
    if "@" in hosts:
        credentials, _, hosts = hosts.rpartition("@")
        password = credentials.partition(":")[2] or None
    service, _, db = path.partition("/")
    addresses: list[tuple[str, int]] = []
    for address in hosts.split(",") if hosts else []:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: every Sentinel needs HOST:PORT, got {address!r}")
        addresses.append((host.strip("[]"), int(port)))
    if not addresses or not service or not (db == "" or db.isdigit()):
        raise ValueError(f"{url!r}: use redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]")
    return addresses, service, int(db or 0), password


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's primary-following connections with the blocking pool's cap and
    wait (``max_connections``, ``timeout``), as the plain URL's pool has them."""


class _SentinelClient(Redis):
    """The client of one Sentinel, named by its address.

    When no Sentinel names a primary, redis-py's ``MasterNotFoundError`` lists each
    Sentinel it could not ask by its client's repr, which spells out every connection
    setting: 1,150 characters a Sentinel, in each line the fan-out logs while it
    reconnects after a primary was lost with a Sentinel beside it (tests/test_faults.py).
    """

    def __repr__(self) -> str:
        settings = self.connection_pool.connection_kwargs
        return f"Sentinel {settings.get('host')}:{settings.get('port')}"


# The fan-out reader's reconnect delays: short, because while it is away every
# process misses the battle's updates.
_RECONNECT_FIRST_S = 0.1
_RECONNECT_MAX_S = 1.0

# Written by both create and commit: the fields of BattleRow (the state, its ballot
# gate and its next deadline), so cast_ballot and due decide from the same version of
# the battle. ARGV[1] to ARGV[_ROW] are the row; the script's own arguments follow.
_ROW = len(BattleRow._fields)
_WRITE_BATTLE = f"""
redis.call('HSET', KEYS[1], {", ".join(f"'{name}', ARGV[{i}]" for i, name in enumerate(BattleRow._fields, 1))})
"""

# KEYS: battle. ARGV: the battle fields, then the host, screen and cohost tokens.
_CREATE = f"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
{_WRITE_BATTLE}
redis.call('HSET', KEYS[1], 'host', ARGV[{_ROW + 1}], 'screen', ARGV[{_ROW + 2}], 'cohost', ARGV[{_ROW + 3}])
return 1
"""

# KEYS: battle. ARGV: the battle fields, then the updates channel and the announcement.
# Compare-and-set on the version; the announcement is published in the same script, so
# subscribers hear the versions in the order they were committed, and every one of them.
_COMMIT = f"""
local stored = redis.call('HGET', KEYS[1], 'version')
if not stored or tonumber(stored) ~= tonumber(ARGV[1]) - 1 then return 0 end
{_WRITE_BATTLE}
redis.call('PUBLISH', ARGV[{_ROW + 1}], ARGV[{_ROW + 2}])
return 1
"""

# KEYS: battle, ballots, seen, totals, sent, remote, online, online-totals. ARGV: vote_id, device, choice,
# ballot_id, now_ms, the most ballot ids one device may have (game.MAX_BALLOTS_PER_DEVICE),
# '1' for a remote device. Returns {status, choice} or {'refused', reason}.
# The window is model.window_delay and game.window_refusal, as the embedded store runs them.
_CAST_BALLOT = """
-- A resent ballot that was already recorded is acknowledged again, even after the close.
if redis.call('SISMEMBER', KEYS[3], ARGV[2] .. '|' .. ARGV[4]) == 1 then
  return {'duplicate', redis.call('HGET', KEYS[2], ARGV[2])}
end
local gate = redis.call('HMGET', KEYS[1], 'vote_id', 'vote_open', 'vote_deadline_ms', 'vote_choices',
  'vote_opened_ms', 'vote_closed_ms', 'remote_default_ms', 'remote_max_ms')
if not gate[1] or gate[1] == '' or gate[1] ~= ARGV[1] then return {'refused', 'wrong_vote'} end
local now, deadline = tonumber(ARGV[5]), tonumber(gate[3])
local delay = 0
if ARGV[7] == '1' then
  delay = tonumber(redis.call('HGET', KEYS[6], ARGV[2]) or '') or tonumber(gate[7] or '0')
  if delay > tonumber(gate[8] or '0') then delay = 0 end
end
if delay <= 0 then
  if gate[2] ~= '1' or (deadline ~= 0 and now >= deadline) then return {'refused', 'vote_closed'} end
else
  local close = deadline
  if gate[2] ~= '1' then close = tonumber(gate[6] or '0') end
  if gate[2] ~= '1' and close == 0 then return {'refused', 'vote_closed'} end
  if now < tonumber(gate[5] or '0') + delay then return {'refused', 'vote_not_open'} end
  if close ~= 0 and now >= close + delay then return {'refused', 'vote_closed'} end
end
local valid = false
for _, choice in ipairs(cjson.decode(gate[4])) do
  if choice == ARGV[3] then valid = true break end
end
if not valid then return {'refused', 'bad_choice'} end
if tonumber(redis.call('HGET', KEYS[5], ARGV[2]) or '0') >= tonumber(ARGV[6]) then
  return {'refused', 'limit_reached'}
end
local previous = redis.call('HGET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2] .. '|' .. ARGV[4])
redis.call('HINCRBY', KEYS[5], ARGV[2], 1)
-- The online part (docs/rules.md, "Hall and online"): the device's newest ballot decides.
local was_online = redis.call('HGET', KEYS[7], ARGV[2])
if was_online then
  redis.call('HINCRBY', KEYS[8], was_online, -1)
  redis.call('HDEL', KEYS[7], ARGV[2])
end
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[7], ARGV[2], ARGV[3])
  redis.call('HINCRBY', KEYS[8], ARGV[3], 1)
end
if previous == ARGV[3] then return {'unchanged', previous} end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
if previous then
  redis.call('HINCRBY', KEYS[4], previous, -1)
  return {'changed', ARGV[3]}
end
return {'counted', ARGV[3]}
"""

# KEYS: battle, remote. ARGV: device, delay_ms. Ballots.set_delay: {'held', ms} or {'refused', reason}.
_SET_DELAY = """
local gate = redis.call('HMGET', KEYS[1], 'version', 'vote_closed_ms', 'remote_max_ms')
if not gate[1] then return {'refused', 'no_battle'} end
if tonumber(gate[2] or '0') ~= 0 then return {'refused', 'delay_locked'} end
local held = math.min(tonumber(ARGV[2]), tonumber(gate[3] or '0'))
redis.call('HSET', KEYS[2], ARGV[1], held)
return {'held', held}
"""

# How long a cool-down key outlives the cool-down, on Redis's clock: the processes' clocks
# (which ``now_ms`` comes from) may differ from it and from each other by this much.
COOLDOWN_SKEW_MS = 60_000

# base.cooldown_left, on a key holding the time (now_ms) of the device's last action. The
# key's expiry only tidies: the time in it decides, so every clock is the one passed in.
_COOLDOWN = f"""
local function cooldown_left(key, now, cooldown)
  local last = tonumber(redis.call('GET', key))
  if last == nil or now - last >= cooldown then return 0 end
  return math.min(cooldown, cooldown - (now - last))
end
local function cooldown_start(key, now, cooldown)
  redis.call('SET', key, now, 'PX', cooldown + {COOLDOWN_SKEW_MS})
end
"""

# KEYS: reactions, the device's cooldown. ARGV: field, cooldown_ms, now_ms. Returns 0 when
# counted, else the milliseconds left of the device's cooldown.
_REACT = (
    _COOLDOWN
    + """
local now, cooldown = tonumber(ARGV[3]), tonumber(ARGV[2])
local wait = cooldown_left(KEYS[2], now, cooldown)
if wait > 0 then return wait end
cooldown_start(KEYS[2], now, cooldown)
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 0
"""
)

# Builds the announcement (announcements.SubmissionsChanged) of changed submissions from their stored
# parts by concatenation: the stored JSON is never decoded and encoded again.
_NOTICE = """
local function notice_item(number, status, rev, decisions, fixed)
  return '{"id":"s' .. number .. '","status":"' .. status .. '","rev":' .. rev .. ',"decisions":' .. decisions
    .. ',' .. string.sub(fixed, 2)
end
"""

# KEYS: queue, submissions, states, waiting, blocked, the device's cool-down, the
# submissions by device. ARGV:
# device, cooldown_ms, most per device, most waiting, the stored JSON, status, channel,
# at_ms. Returns {'stored', number, rev}, {'cooldown', wait_ms} or {'refused', reason, limit}.
_SUBMIT = (
    _NOTICE
    + _COOLDOWN
    + """
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 1 then return {'refused', 'device_blocked', ''} end
if tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') >= tonumber(ARGV[3]) then
  return {'refused', 'limit_reached', 'waiting_per_device'}
end
if tonumber(redis.call('HGET', KEYS[1], 'waiting') or '0') >= tonumber(ARGV[4]) then
  return {'refused', 'limit_reached', 'waiting'}
end
local wait = cooldown_left(KEYS[6], tonumber(ARGV[8]), tonumber(ARGV[2]))
if wait > 0 then return {'cooldown', wait} end
cooldown_start(KEYS[6], tonumber(ARGV[8]), tonumber(ARGV[2]))
local number = redis.call('HINCRBY', KEYS[1], 'ids', 1)
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
redis.call('HINCRBY', KEYS[1], 'waiting', 1)
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
redis.call('HSET', KEYS[2], number, ARGV[5])
redis.call('HSET', KEYS[3], number, ARGV[6] .. '|' .. rev)
redis.call('HSET', KEYS[7], ARGV[1], (redis.call('HGET', KEYS[7], ARGV[1]) or '') .. number .. ',')
redis.call('PUBLISH', ARGV[7], '{"kind":"submissions","items":[' .. notice_item(number, ARGV[6], rev, '[]', ARGV[5]) .. ']}')
return {'stored', number, rev}
"""
)

# stores.base.moderation_changes, in one script. KEYS: queue, submissions, states, waiting,
# blocked, decisions. ARGV: number, action (approve, dismiss, block, unblock), channel, the
# Decision's JSON, the Block's JSON without its device, MAX_DECISIONS. Returns {'done'} or
# {'refused', reason}.
_MODERATE = (
    _NOTICE
    + """
local state = redis.call('HGET', KEYS[3], ARGV[1])
if not state then return {'refused', 'unknown_submission'} end
local action = ARGV[2]
local function status_of(number) return string.match(redis.call('HGET', KEYS[3], number), '^[^|]+') end
local function waiting(status) return status == 'pending' or status == 'held' end
local function item(number) return cjson.decode(redis.call('HGET', KEYS[2], number)) end
local current = status_of(ARGV[1])
if action == 'approve' and current == 'blocked' then return {'refused', 'device_blocked'} end
local device = item(ARGV[1])['device']
local blocked = redis.call('HEXISTS', KEYS[5], device) == 1
if action == 'unblock' and not blocked then return {'refused', 'not_blocked'} end
-- number -> its new status
local targets = {}
if action == 'approve' then targets[ARGV[1]] = 'approved' end
if action == 'dismiss' and current ~= 'blocked' then targets[ARGV[1]] = 'dismissed' end
if action == 'block' or action == 'unblock' then
  local states = redis.call('HGETALL', KEYS[3])
  for i = 1, #states, 2 do
    local number, old = states[i], string.match(states[i + 1], '^[^|]+')
    local wanted = (action == 'block' and (number == ARGV[1] or waiting(old)))
      or (action == 'unblock' and old == 'blocked')
    if wanted then
      local fields = item(number)
      if fields['device'] == device then
        if action == 'block' then
          targets[number] = 'blocked'
        elseif type(fields['held_for']) == 'string' and fields['held_for'] ~= '' then
          -- base.moderation_changes: held again only when the filter named a word
          targets[number] = 'held'
        else
          targets[number] = 'pending'
        end
      end
    end
  end
end
local numbers = {}
for number, status in pairs(targets) do
  if status_of(number) ~= status then
    local decisions = redis.call('HGET', KEYS[6], number) or '[]'
    if #cjson.decode(decisions) >= tonumber(ARGV[6]) then return {'refused', 'limit_reached'} end
    table.insert(numbers, number)
  end
end
table.sort(numbers, function(a, b) return tonumber(a) < tonumber(b) end)
if action == 'block' then redis.call('HSETNX', KEYS[5], device, ARGV[5]) end  -- the first block stays
if action == 'unblock' then redis.call('HDEL', KEYS[5], device) end
if #numbers == 0 then return {'done'} end
local rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
local items = {}
for _, number in ipairs(numbers) do
  local old, status = status_of(number), targets[number]
  redis.call('HSET', KEYS[3], number, status .. '|' .. rev)
  local step = (waiting(status) and 1 or 0) - (waiting(old) and 1 or 0)
  if step ~= 0 then
    redis.call('HINCRBY', KEYS[1], 'waiting', step)
    redis.call('HINCRBY', KEYS[4], device, step)
  end
  local decisions = redis.call('HGET', KEYS[6], number)
  decisions = decisions and (string.sub(decisions, 1, -2) .. ',' .. ARGV[4] .. ']') or ('[' .. ARGV[4] .. ']')
  redis.call('HSET', KEYS[6], number, decisions)
  table.insert(items, notice_item(number, status, rev, decisions, redis.call('HGET', KEYS[2], number)))
end
redis.call('PUBLISH', ARGV[3], '{"kind":"submissions","items":[' .. table.concat(items, ',') .. ']}')
return {'done'}
"""
)

# KEYS: the ballots of two votes. Devices by the pair of their choices (Ballots.transitions),
# "" for a vote a device took no part in: {before, after, count, ...}. Counts only leave.
_TRANSITIONS = """
local second = {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do second[flat[i]] = flat[i + 1] end
local pairs_of = {}
local function count(first, after)
  local pair = first .. '|' .. after
  pairs_of[pair] = (pairs_of[pair] or 0) + 1
end
flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  count(flat[i + 1], second[flat[i]] or '')
  second[flat[i]] = nil
end
for _, after in pairs(second) do count('', after) end
local reply = {}
for pair, n in pairs(pairs_of) do
  local first, after = string.match(pair, '^([^|]*)|([^|]*)$')
  table.insert(reply, first); table.insert(reply, after); table.insert(reply, n)
end
return reply
"""

# KEYS: joined, joined-from. ARGV: device, address, now_ms. When the device first joined.
_FIRST_SEEN = """
if redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  return ARGV[3]
end
return redis.call('ZSCORE', KEYS[1], ARGV[1])
"""

# KEYS: joined, joined-from. ARGV: before_ms. The devices that joined before, per address.
_HALL = """
local counts = {}
for _, device in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])) do
  local address = redis.call('HGET', KEYS[2], device) or ''
  counts[address] = (counts[address] or 0) + 1
end
local flat = {}
for address, count in pairs(counts) do
  flat[#flat + 1] = address
  flat[#flat + 1] = count
end
return flat
"""

# KEYS: marks. ARGV: the marks of one ballot, each counted once.
_NOTE = """
for i = 1, #ARGV do
  redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
end
return 1
"""

# KEYS: totals, ballots. The running totals and the number of ballots, read together.
_TALLY = """
return {redis.call('HGETALL', KEYS[1]), redis.call('HLEN', KEYS[2]), redis.call('HGETALL', KEYS[3])}
"""

# KEYS: one address's bucket. ARGV: tokens per millisecond, burst, 1 to spend a token.
# Returns 0 when a token was there (and spent), else the milliseconds until there is
# one. Redis's clock, so every process and machine measures time alike. A full bucket
# is the same as none: the key expires when the bucket would be full again.
_TAKE_TOKEN = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at_ms')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * rate) end
if tokens < 1 then return math.ceil((1 - tokens) / rate) end
if ARGV[3] == '1' then
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at_ms', now)
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) / rate)))
end
return 0
"""

_ReceiptStatus = Literal["counted", "changed", "unchanged", "duplicate"]
_RECEIPT_STATUSES: tuple[_ReceiptStatus, ...] = ("counted", "changed", "unchanged", "duplicate")

P = ParamSpec("P")
T = TypeVar("T")

# Ballots and reactions that arrive together go to Redis together (``_Batch``), at most
# this many commands to one pipeline.
_BATCH_MAX = 512


async def _replicated(redis: Redis, replicas: int, timeout_ms: int) -> bool:
    """Whether every write so far, by any connection, is on ``replicas`` replicas within
    ``timeout_ms``: WAIT after a fence write of its own (see ``_Batch.run``)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(REPLICATION_FENCE)
        pipe.wait(replicas, timeout_ms)
        _, confirmed = await pipe.execute()
    return isinstance(confirmed, int) and confirmed >= replicas


class _Pending(NamedTuple):
    command: tuple[Any, ...]
    options: dict[str, Any]
    confirm: bool  # see _Batch.run
    future: asyncio.Future[Any]


class _Batch:
    """Commands that arrive in the same turn of the event loop, sent as one pipeline.

    A hall voting at once sends thousands of ballots a second, and a hall coming back
    after a restart joins with a handful of reads per phone. One round trip each
    means, per command, a pooled connection to wait for (for longer than the pool's
    timeout, in a storm: then it fails), a write, a read and a task switch; a
    non-transactional pipeline of everything that arrived meanwhile pays those once
    for the lot. Only commands that stand alone go through it (single reads, ballot
    scripts, counter increments); writes that must go together keep their own
    script or MULTI. Each ballot stays one atomic script, and each caller gets
    its own reply (or error) only when Redis has answered, so nothing is acknowledged
    before it is stored. If the pipeline fails (Redis unreachable), every caller in it
    gets the error: a ballot in it may or may not have been stored, exactly as with a
    single command that timed out, and its resend with the same ballot id is counted
    once (``duplicate``).
    """

    def __init__(self, redis: Redis, scripts: dict[str, str], replicas: int = 0, wait_timeout_ms: int = 0) -> None:
        self._redis = redis
        self._scripts = scripts  # sha -> source, to load a script Redis has forgotten
        self._replicas, self._wait_timeout_ms = replicas, wait_timeout_ms
        self._pending: list[_Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, *command: Any, confirm: bool = False, **options: Any) -> Any:
        """Run one command (``options`` for redis-py's parsing of its reply).

        ``confirm``: its reply is an acknowledgement, so with ``replicas`` it waits
        for the batch's ``WAIT`` and raises ``Unavailable`` when too few replicas
        confirmed. The batch writes ``REPLICATION_FENCE`` before its ``WAIT``: WAIT
        counts the writes of its own connection only, and a resent ballot that is a
        ``duplicate`` writes nothing, yet must not be acknowledged before the first
        copy (written by another connection, maybe never confirmed) reached the
        replicas. The fence's offset is past every earlier write.
        """
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(command, options, confirm and self._replicas > 0, future))
        if len(self._pending) == 1:
            # Sent once every caller already runnable in this turn has added its command.
            asyncio.get_running_loop().call_soon(self._flush)
        elif len(self._pending) >= _BATCH_MAX:
            self._flush()
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            replies, confirmed = await self._execute(batch)
        except BaseException as error:
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for pending, reply, ok in zip(batch, replies, confirmed, strict=True):
            if pending.future.done():
                continue
            if _no_writes_now(reply) or not ok:
                pending.future.set_exception(Unavailable())
            elif isinstance(reply, Exception):
                pending.future.set_exception(reply)
            else:
                pending.future.set_result(reply)

    async def _execute(self, batch: list[_Pending]) -> tuple[list[Any], list[bool]]:
        """The pipeline: each command's reply (or error), and whether it is confirmed."""
        waits = any(pending.confirm for pending in batch)
        confirmed = [True] * len(batch)
        async with self._redis.pipeline(transaction=False) as pipe:
            for pending in batch:
                pipe.execute_command(*pending.command, **pending.options)
            if waits:
                pipe.incr(REPLICATION_FENCE)
                pipe.wait(self._replicas, self._wait_timeout_ms)
            replies = await pipe.execute(raise_on_error=False)
        if waits:
            *replies, _, replicas = replies
            if not (isinstance(replicas, int) and replicas >= self._replicas):
                confirmed = [not pending.confirm for pending in batch]
        await self._run_again(batch, replies, confirmed)
        return replies, confirmed

    async def _run_again(self, batch: list[_Pending], replies: list[Any], confirmed: list[bool]) -> None:
        """Run again, in place, the scripts Redis did not know (it restarted empty, or a
        new primary): load each, run it, and confirm it with a WAIT of its own."""
        again = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        for index in again:
            pending = batch[index]
            await self._redis.script_load(self._scripts[pending.command[1]])
            replies[index] = await self._redis.execute_command(*pending.command, **pending.options)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        if any(batch[index].confirm for index in again):
            # Run after the batch's WAIT: confirmed by one of their own.
            replicated = await _replicated(self._redis, self._replicas, self._wait_timeout_ms)
            for index in again:
                if batch[index].confirm:
                    confirmed[index] = replicated


def _reachable(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Turn "Redis cannot be reached" into ``Unavailable``, keeping the cause; and time
    each call that Redis answered (``battles_redis_roundtrip_seconds``)."""
    roundtrip = metrics.redis_roundtrip.labels(method.__name__)

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        started, answered = time.perf_counter(), True
        try:
            return await method(*args, **kwargs)
        except _UNREACHABLE as error:
            answered = False
            raise Unavailable() from error
        except ResponseError as error:
            if _no_writes_now(error):
                raise Unavailable() from error
            raise
        finally:
            if answered:  # a refusal (a Lua script's answer) was a round trip too
                roundtrip.observe(time.perf_counter() - started)

    return wrapper


# A hint in the timer index for a version that was never written (its commit's
# pipeline broke between the index write and the script) is dropped once its
# deadline is this far in the past; a commit in flight takes milliseconds.
_ORPHAN_HINT_MS = 60_000


class _Hint(NamedTuple):
    """One entry of the timer index: ``CODE|VERSION`` scored with a deadline."""

    member: bytes
    code: str
    version: int
    deadline_ms: int

    @classmethod
    def parse(cls, member: bytes, score: float) -> _Hint:
        code, _, version = _text(member).rpartition("|")
        return cls(member, code, int(version), int(score))


class _Stored(NamedTuple):
    """A battle's stored version and next deadline, as ``due`` reads them."""

    version: int
    deadline_ms: int | None


def _stored_deadline(version: bytes | None, deadline: bytes | None) -> _Stored | None:
    """The stored fields of a battle; None for a battle that is gone."""
    if version is None:
        return None
    return _Stored(int(version), int(deadline) if deadline else None)


class _Review(NamedTuple):
    due: list[str]  # sorted codes
    drop: list[bytes]
    reset: dict[bytes, int]  # member -> the real deadline of its version


def _review_hints(hints: list[_Hint], stored: dict[str, _Stored | None], now_ms: int) -> _Review:
    """The timer index's passed entries judged against the stored states (no I/O; see
    ``RedisStore.due``): which battles are due, which entries go, which are corrected."""
    due: set[str] = set()
    drop: list[bytes] = []
    reset: dict[bytes, int] = {}
    for hint in hints:
        battle = stored[hint.code]
        if battle is not None and battle.deadline_ms is not None and battle.deadline_ms <= now_ms:
            due.add(hint.code)
        verdict = _judge_hint(hint, battle, now_ms)
        if verdict == "drop":
            drop.append(hint.member)
        elif verdict == "reset":
            assert battle is not None and battle.deadline_ms is not None
            reset[hint.member] = battle.deadline_ms
    return _Review(sorted(due), drop, reset)


def _judge_hint(hint: _Hint, battle: _Stored | None, now_ms: int) -> Literal["keep", "drop", "reset"]:
    """One entry: a battle's version only ever grows, so an entry of a replaced version,
    of a version with no deadline or of a battle that is gone can never become right
    again; an entry of the current version carries that version's real deadline; an
    entry of a version not (yet) written is kept until it is an orphan."""
    if battle is None or hint.version < battle.version:
        return "drop"
    if hint.version == battle.version:
        if battle.deadline_ms is None:
            return "drop"
        return "keep" if battle.deadline_ms == hint.deadline_ms else "reset"
    return "drop" if hint.deadline_ms < now_ms - _ORPHAN_HINT_MS else "keep"


def _counts(flat: list[Any]) -> dict[str, int]:
    """A hash of counts from HGETALL's flat list. A choice everybody moved away from is at 0:
    left out, as when nobody chose it."""
    return {_text(choice): int(count) for choice, count in zip(flat[::2], flat[1::2], strict=True) if int(count) > 0}


class _Keys:
    """The keys of one battle (see the module docstring)."""

    def __init__(self, code: str) -> None:
        self.battle = f"battle:{{{code}}}"
        self.presence = f"{self.battle}:presence"
        self.updates = f"{self.battle}:updates"

    def ballots(self, vote_id: str) -> str:
        return f"{self.battle}:ballots:{vote_id}"

    def seen(self, vote_id: str) -> str:
        return f"{self.battle}:seen:{vote_id}"

    def sent(self, vote_id: str) -> str:
        return f"{self.battle}:sent:{vote_id}"

    def totals(self, vote_id: str) -> str:
        return f"{self.battle}:totals:{vote_id}"

    def online(self, vote_id: str) -> str:
        return f"{self.battle}:online:{vote_id}"

    def online_totals(self, vote_id: str) -> str:
        return f"{self.battle}:online-totals:{vote_id}"

    def reactions(self, round_number: int) -> str:
        return f"{self.battle}:reactions:{round_number}"

    def cooldown(self, device: str) -> str:
        return f"{self.battle}:cooldown:{device}"

    def marks(self, vote_id: str) -> str:
        return f"{self.battle}:marks:{vote_id}"

    @property
    def remote(self) -> str:
        return f"{self.battle}:remote"

    @property
    def joined(self) -> str:
        return f"{self.battle}:joined"

    @property
    def joined_from(self) -> str:
        return f"{self.battle}:joined-from"

    def submitted(self, device: str) -> str:
        return f"{self.battle}:submitted:{device}"

    @property
    def decisions(self) -> str:
        return f"{self.battle}:decisions"

    @property
    def by_device(self) -> str:
        """Each device's submission numbers, "3,7,": a phone's snapshot reads its own."""
        return f"{self.battle}:submissions-by-device"

    @property
    def queue(self) -> tuple[str, str, str, str, str]:
        """The keys of the submissions' scripts: queue, submissions, states, waiting, blocked."""
        return (
            f"{self.battle}:queue", f"{self.battle}:submissions", f"{self.battle}:submission-states",
            f"{self.battle}:waiting", f"{self.battle}:blocked",
        )  # fmt: skip


class _SharedLimits:
    """A per-address budget kept in Redis, so every process spends from the same one."""

    def __init__(self, store: _RedisConnection, name: str, per_minute: float, burst: int) -> None:
        self.store, self.prefix, self.per_minute, self.burst = store, f"battles:limit:{name}:", per_minute, burst

    async def take(self, address: str, spend: bool = True) -> float:
        return await self.store.take_token(self.prefix + address, self.per_minute, self.burst, spend)


class _RedisConnection(Processes, Limits):
    """The connection every concern of the store shares: its pool, scripts, batch and
    fan-out; the signing key, the per-address limits, presence and subscriptions.

    ``socket_timeout_s`` bounds every wait on Redis: a command, a connect, a wait
    for a free pooled connection, and the silence after which the fan-out reader
    declares its connection dead. ``max_connections`` caps this process's pool,
    the fan-out connection included; callers beyond it wait for a free one.
    ``wait_replicas`` and ``wait_timeout_ms``: see "Replication" in the module
    docstring; a confirmed write takes up to ``wait_timeout_ms`` longer.
    """

    def __init__(
        self,
        url: str,
        presence_ttl_ms: int = 10_000,
        *,
        socket_timeout_s: float = 3.0,
        max_connections: int = 64,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
    ) -> None:
        self.url = url
        self.presence_ttl_ms = presence_ttl_ms
        self.socket_timeout_s = socket_timeout_s
        self.wait_replicas, self.wait_timeout_ms = wait_replicas, wait_timeout_ms
        options: dict[str, Any] = {
            "max_connections": max_connections,
            "timeout": socket_timeout_s,
            "socket_timeout": socket_timeout_s,
            "socket_connect_timeout": socket_timeout_s,
            "socket_keepalive": True,
            "retry": Retry(NoBackoff(), 0),  # see "Failures" in the module docstring
        }
        self._sentinel: Sentinel | None = None
        pool: BlockingConnectionPool
        if url.startswith(SENTINEL_SCHEME):
            sentinels, service, db, password = parse_sentinel_url(url)
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                sentinels, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
            )
            self._sentinel.sentinels = [
                _SentinelClient(host=host, port=port, **self._sentinel.sentinel_kwargs) for host, port in sentinels
            ]
            pool = _BlockingSentinelPool(service, self._sentinel, db=db, password=password, **options)  # type: ignore[no-untyped-call]
        else:
            pool = BlockingConnectionPool.from_url(url, **options)
        self._redis = Redis(connection_pool=pool)
        self._create = self._redis.register_script(_CREATE)
        self._commit = self._redis.register_script(_COMMIT)
        self._cast_ballot = self._redis.register_script(_CAST_BALLOT)
        self._set_delay = self._redis.register_script(_SET_DELAY)
        self._tally = self._redis.register_script(_TALLY)
        self._transitions = self._redis.register_script(_TRANSITIONS)
        self._first_seen = self._redis.register_script(_FIRST_SEEN)
        self._hall = self._redis.register_script(_HALL)
        self._note = self._redis.register_script(_NOTE)
        self._react = self._redis.register_script(_REACT)
        self._submit = self._redis.register_script(_SUBMIT)
        self._moderate = self._redis.register_script(_MODERATE)
        self._take_token = self._redis.register_script(_TAKE_TOKEN)
        self._batch = _Batch(
            self._redis,
            {
                script.sha: source
                for script, source in (
                    (self._cast_ballot, _CAST_BALLOT),
                    (self._set_delay, _SET_DELAY),
                    (self._tally, _TALLY),
                    (self._transitions, _TRANSITIONS),
                    (self._first_seen, _FIRST_SEEN),
                    (self._hall, _HALL),
                    (self._note, _NOTE),
                    (self._react, _REACT),
                    (self._take_token, _TAKE_TOKEN),
                )
            },
            wait_replicas,
            wait_timeout_ms,
        )
        self._fan_out = _FanOut(self._redis, socket_timeout_s, name=f"battles fan-out {url}")

    # --- lifecycle ------------------------------------------------------------------

    async def start(self, listener: Listener) -> None:
        await self._fan_out.start(listener)

    async def close(self) -> None:
        await self._fan_out.close()
        await self._redis.aclose(close_connection_pool=True)
        if self._sentinel is not None:
            await self._sentinel.aclose()

    async def healthy(self) -> bool:
        """Redis answers, and this process's fan-out is connected."""
        if not self._fan_out.connected:
            return False
        try:
            return bool(await self._redis.ping())
        except _UNREACHABLE:
            return False

    @_reachable
    async def signing_key(self) -> bytes:
        # Read from Redis every time rather than cached: should Redis lose its data,
        # every process moves to the new key together.
        # SET NX GET (Redis 7): the key there, or None when this one was just set.
        mine = secrets.token_bytes(32)
        key = await self._batch.run("SET", SIGNING_KEY, mine, "NX", "GET", get=True)
        if key is not None:
            return bytes(key)
        # A new key signs device ids from now on: a failover that lost it would let
        # every phone come back as a new device, and vote again.
        await self._confirm()
        return mine

    async def _confirm(self) -> None:
        """With ``wait_replicas``: return once every write so far is on that many
        replicas, else raise ``Unavailable``."""
        if self.wait_replicas and not await _replicated(self._redis, self.wait_replicas, self.wait_timeout_ms):
            raise Unavailable()

    @_reachable
    async def set_signing_key(self, key: bytes) -> None:
        await self._redis.set(SIGNING_KEY, key)
        await self._confirm()

    def shared_limits(self, name: str, per_minute: float, burst: int) -> AddressLimits:
        return _SharedLimits(self, name, per_minute, burst)

    @_reachable
    async def take_token(self, key: str, per_minute: float, burst: int, spend: bool) -> float:
        """One step of the token bucket at ``key`` (``_TAKE_TOKEN``): the seconds to wait."""
        wait_ms = await self._batch.run(
            "EVALSHA", self._take_token.sha, 1, key, repr(per_minute / 60_000), burst, int(spend)
        )
        return int(wait_ms) / 1000

    # --- presence -------------------------------------------------------------------

    @_reachable
    async def report_presence(self, code: str, process: str, counts: dict[str, int], now_ms: int) -> None:
        key = _Keys(code).presence
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, process, json.dumps({"counts": counts, "at_ms": now_ms}))
            # Only housekeeping: the key of a battle nobody reports on any more goes
            # away. Freshness is judged by at_ms on reading.
            pipe.pexpire(key, 2 * self.presence_ttl_ms)
            await pipe.execute()

    @_reachable
    async def presence(self, code: str, now_ms: int) -> dict[str, int]:
        key = _Keys(code).presence
        total: dict[str, int] = {}
        gone: list[bytes | str] = []
        for process, raw in (await self._batch.run("HGETALL", key)).items():
            report = json.loads(raw)
            if now_ms - int(report["at_ms"]) > self.presence_ttl_ms:
                gone.append(process)  # a process that stopped reporting: it died or left
                continue
            for role, count in report["counts"].items():
                total[role] = total.get(role, 0) + int(count)
        if gone:
            await self._redis.hdel(key, *gone)
        return total

    # --- fan-out: one pub/sub connection per process (_FanOut) -------------------------

    async def subscribe(self, code: str) -> None:
        await self._fan_out.subscribe(_Keys(code).updates.encode(), code)

    @_reachable
    async def announce(self, code: str, announcement: bytes) -> None:
        await self._batch.run("PUBLISH", _Keys(code).updates, announcement)  # once per phone that enters

    async def unsubscribe(self, code: str) -> None:
        await self._fan_out.unsubscribe(_Keys(code).updates.encode())


class _RedisBattles(_RedisConnection, Battles):
    """Battles and their versions: a hash each, written by a script, and the timer index."""

    @_reachable
    async def create(self, battle: Battle, tokens: Secrets) -> bool:
        return await self._write(battle, self._create, tokens.host, tokens.screen, tokens.cohost)

    @_reachable
    async def load(self, code: str) -> Battle | None:
        state = await self._batch.run("HGET", _Keys(code).battle, "state")
        if state is None:
            return None
        try:
            return Battle.model_validate_json(state)
        except ValidationError as error:
            raise Fault(f"stored battle {code} does not parse") from error

    @_reachable
    async def secrets(self, code: str) -> Secrets | None:
        host, screen, cohost = await self._batch.run("HMGET", _Keys(code).battle, "host", "screen", "cohost")
        if host is None or screen is None or cohost is None:
            return None
        return Secrets(host=_text(host), screen=_text(screen), cohost=_text(cohost))

    @_reachable
    async def commit(self, battle: Battle, announcement: bytes) -> bool:
        return await self._write(battle, self._commit, _Keys(battle.code).updates, announcement)

    @_reachable
    async def version(self, code: str) -> int | None:
        version = await self._batch.run("HGET", _Keys(code).battle, "version")
        return None if version is None else int(version)

    async def _write(self, battle: Battle, script: AsyncScript, *extra: str | bytes) -> bool:
        """Run ``create``'s or ``commit``'s script, and the timer index in the same round trip.

        The index is a global key, on another cluster slot than the battle, so it
        cannot be written by the script; the timer loop re-checks the real state
        anyway, so the index is only a hint. It must still never *lose* a deadline,
        or a vote would not close on time. Hence its entry is keyed by code and
        version, written *before* the script (a process dying in between leaves an
        entry, not a hole), with ZADD LT, and never removed here:
        - a commit that loses the compare-and-set wrote an entry for the version
          that the winner also wrote (LT keeps the earlier of the two deadlines: an
          early entry, which ``due`` checks against the state and corrects);
        - a commit whose state has no deadline writes nothing; ``due`` drops the
          entries of older versions. A ZREM here, from a losing commit or one that
          arrives late, could remove the deadline of the version that stands.
        """
        keys = _Keys(battle.code)
        row = BattleRow.of(battle)
        deadline = row.next_deadline_ms
        fields = ["" if value is None else value for value in row]  # a hash field holds no nil
        async with self._redis.pipeline(transaction=False) as pipe:
            if deadline is not None:
                pipe.zadd(DEADLINES, {f"{battle.code}|{battle.version}": deadline}, lt=True)
            await script(keys=[keys.battle], args=[*fields, *extra], client=pipe)
            if self.wait_replicas:
                # A write that lost its compare-and-set wrote nothing and acknowledges
                # nothing, so WAIT on this connection's own writes is enough here.
                pipe.wait(self.wait_replicas, self.wait_timeout_ms)
            results = await pipe.execute()
        if self.wait_replicas:
            *results, replicas = results
            if results[-1] and replicas < self.wait_replicas:
                raise Unavailable()  # written on the primary, not confirmed: see "Replication"
        return bool(results[-1])

    @_reachable
    async def due(self, now_ms: int) -> list[str]:
        """Battles whose next deadline has passed, according to their stored state.

        The index only says which battles to look at; each one's state decides. The
        look also tidies the index: an entry of a version that was replaced, or whose
        state has no deadline, is dropped (a battle's version only ever grows, so
        such an entry can never become right again); an entry of the current version
        is set to that version's real deadline.
        """
        hinted = cast(
            list[tuple[bytes, float]],
            await self._redis.zrangebyscore(DEADLINES, "-inf", now_ms, withscores=True),
        )
        if not hinted:
            return []
        hints = [_Hint.parse(member, score) for member, score in hinted]
        codes = sorted({hint.code for hint in hints})
        async with self._redis.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.hmget(_Keys(code).battle, ["version", "next_deadline_ms"])
            stored = {code: _stored_deadline(*fields) for code, fields in zip(codes, await pipe.execute(), strict=True)}
        review = _review_hints(hints, stored, now_ms)
        if review.drop or review.reset:
            async with self._redis.pipeline(transaction=False) as pipe:
                if review.drop:
                    pipe.zrem(DEADLINES, *review.drop)
                if review.reset:
                    pipe.zadd(DEADLINES, cast(dict[Any, Any], review.reset), xx=True)
                await pipe.execute()
        return review.due

    @_reachable
    async def codes(self) -> list[str]:
        # battle:{CODE} and nothing after it: braces are not special in SCAN's patterns.
        found = {
            _text(key)[len("battle:{") : -1] async for key in self._redis.scan_iter(match="battle:{*}", _type="hash")
        }
        return sorted(found)


class _RedisBallots(_RedisConnection, Ballots):
    """Ballots, their running totals and reactions, one script or command each."""

    @_reachable
    async def cast_ballot(
        self, code: str, vote_id: str, device: str, choice: str, ballot_id: str, now_ms: int, remote: bool = False
    ) -> BallotReceipt:
        keys = _Keys(code)
        # EVALSHA in the batch, not through AsyncScript.__call__: that checks its client
        # against redis-py's Pipeline, a typing.Protocol subclass, and the isinstance
        # walks hundreds of command names: an eighth of a busy worker's time.
        reply = await self._batch.run(
            "EVALSHA", self._cast_ballot.sha, 8,
            keys.battle, keys.ballots(vote_id), keys.seen(vote_id), keys.totals(vote_id), keys.sent(vote_id),
            keys.remote, keys.online(vote_id), keys.online_totals(vote_id),
            vote_id, device, choice, ballot_id, now_ms, game.MAX_BALLOTS_PER_DEVICE, "1" if remote else "0",
            confirm=True,
        )  # fmt: skip
        outcome, *rest = (_text(part) for part in reply)
        if outcome == "refused":
            raise ballot_refused(rest[0])
        if outcome not in _RECEIPT_STATUSES or not rest:
            raise Fault(f"cast_ballot script answered {reply!r}")
        return BallotReceipt(outcome, rest[0])

    @_reachable
    async def watch(self, code: str, device: str) -> int | None:
        remote = _Keys(code).remote
        await self._batch.run("HSETNX", remote, device, "")
        delay = await self._batch.run("HGET", remote, device)
        return int(delay) if delay else None

    @_reachable
    async def set_delay(self, code: str, device: str, delay_ms: int) -> int:
        keys = _Keys(code)
        outcome, held = await self._batch.run(
            "EVALSHA", self._set_delay.sha, 2, keys.battle, keys.remote, device, delay_ms, confirm=True
        )
        if _text(outcome) == "refused":
            raise Refused(_text(held))
        return int(held)

    @_reachable
    async def remote_delays(self, code: str) -> tuple[int | None, ...]:
        delays = {_text(delay) for delay in await self._batch.run("HVALS", _Keys(code).remote)}
        return tuple(sorted((int(delay) for delay in delays if delay), key=int)) + ((None,) if "" in delays else ())

    @_reachable
    async def ballot_of(self, code: str, vote_id: str, device: str) -> str | None:
        choice = await self._batch.run("HGET", _Keys(code).ballots(vote_id), device)
        return None if choice is None else _text(choice)

    @_reachable
    async def ballots(self, code: str, vote_id: str) -> dict[str, str]:
        chosen = await self._batch.run("HGETALL", _Keys(code).ballots(vote_id))
        return {_text(device): _text(choice) for device, choice in chosen.items()}

    @_reachable
    async def tally(self, code: str, vote_id: str) -> Tally:
        keys = _Keys(code)
        flat, ballots, online = await self._batch.run(
            "EVALSHA", self._tally.sha, 3, keys.totals(vote_id), keys.ballots(vote_id), keys.online_totals(vote_id)
        )
        return Tally(totals=_counts(flat), ballots=int(ballots), online=_counts(online))

    @_reachable
    async def online_devices(self, code: str, vote_id: str) -> set[str]:
        return {_text(device) for device in await self._batch.run("HKEYS", _Keys(code).online(vote_id))}

    @_reachable
    async def transitions(self, code: str, before: str, after: str) -> persuasion.Transitions:
        keys = _Keys(code)
        flat = await self._batch.run("EVALSHA", self._transitions.sha, 2, keys.ballots(before), keys.ballots(after))
        return {
            (_text(first) or None, _text(second) or None): int(count)
            for first, second, count in zip(flat[::3], flat[1::3], flat[2::3], strict=True)
        }

    @_reachable
    async def react(
        self, code: str, round_number: int, battler: str, kind: str, device: str, now_ms: int, cooldown_ms: int
    ) -> None:
        keys = _Keys(code)
        wait_ms = await self._batch.run(
            "EVALSHA", self._react.sha, 2, keys.reactions(round_number), keys.cooldown(device),
            f"{battler}|{kind}", cooldown_ms, now_ms,
        )  # fmt: skip
        if wait_ms:
            raise Refused("cooldown", wait_ms=int(wait_ms))

    @_reachable
    async def first_seen(self, code: str, device: str, address: str, now_ms: int) -> int:
        keys = _Keys(code)
        first = await self._batch.run(
            "EVALSHA", self._first_seen.sha, 2, keys.joined, keys.joined_from, device, address, now_ms
        )
        return int(float(first))

    @_reachable
    async def hall(self, code: str, before_ms: int) -> dict[str, int]:
        keys = _Keys(code)
        flat = await self._batch.run("EVALSHA", self._hall.sha, 2, keys.joined, keys.joined_from, before_ms)
        return {_text(address): int(count) for address, count in zip(flat[::2], flat[1::2], strict=True)}

    @_reachable
    async def note(self, code: str, vote_id: str, marks: list[str]) -> None:
        if marks:
            await self._batch.run("EVALSHA", self._note.sha, 1, _Keys(code).marks(vote_id), *marks)

    @_reachable
    async def noted(self, code: str, vote_id: str) -> dict[str, int]:
        stored = await self._batch.run("HGETALL", _Keys(code).marks(vote_id))
        return {_text(mark): int(count) for mark, count in stored.items()}

    @_reachable
    async def reactions(self, code: str, round_number: int) -> dict[str, dict[str, int]]:
        stored = await self._batch.run("HGETALL", _Keys(code).reactions(round_number))
        counts: dict[str, dict[str, int]] = {}
        for field, count in stored.items():
            battler, _, kind = _text(field).partition("|")
            counts.setdefault(battler, {})[kind] = int(count)
        return counts


class _RedisSubmissions(_RedisConnection, Submissions):
    """The audience's submissions, the moderators' decisions and the blocks: one script each."""

    @_reachable
    async def submit(
        self, code: str, submission: Submission, cooldown_ms: int, most_per_device: int, most_waiting: int
    ) -> Submission:
        keys = _Keys(code)
        fixed = submission.model_dump_json(exclude=_SUBMISSION_FIXED)
        reply = await self._submit(
            keys=[*keys.queue[:5], keys.submitted(submission.device), keys.by_device],
            args=[
                submission.device,
                cooldown_ms,
                most_per_device,
                most_waiting,
                fixed,
                submission.status,
                keys.updates,
                submission.at_ms,
            ],
        )
        outcome, *rest = reply
        outcome = _text(outcome)
        if outcome == "cooldown":
            raise Refused("too_soon", wait_ms=int(rest[0]))
        if outcome == "refused" and _text(rest[0]) == "limit_reached":
            limit = _text(rest[1])
            raise Refused(
                "limit_reached", limit=limit, most=most_per_device if limit == "waiting_per_device" else most_waiting
            )
        if outcome == "refused":
            raise Refused(_text(rest[0]))
        await self._confirm()  # acknowledged only once the replicas have it (wait_replicas)
        return submission.model_copy(update={"id": f"s{int(rest[0])}", "rev": int(rest[1])})

    @_reachable
    async def moderate(
        self, code: str, submission_id: str, action: Moderation, by: Moderator, at_ms: int
    ) -> Submission:
        keys = _Keys(code)
        decision = Decision(action=action, by=by, at_ms=at_ms).model_dump_json()
        block = json.dumps({"submission": f"s{_number(submission_id)}", "by": by, "at_ms": at_ms})
        reply = await self._moderate(
            keys=[*keys.queue, keys.decisions],
            args=[_number(submission_id), action, keys.updates, decision, block, MAX_DECISIONS],
        )
        if _text(reply[0]) == "refused" and _text(reply[1]) == "limit_reached":
            raise Refused("limit_reached", limit="decisions", most=MAX_DECISIONS)
        if _text(reply[0]) == "refused":
            raise Refused(_text(reply[1]))
        await self._confirm()
        item = await self.submission(code, submission_id)
        if item is None:
            raise Fault(f"submission {submission_id} of {code} went away while it was moderated")
        return item

    @_reachable
    async def submission(self, code: str, submission_id: str) -> Submission | None:
        keys = _Keys(code)
        _, submissions, states, _, _ = keys.queue
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(submissions, _number(submission_id))
            pipe.hget(states, _number(submission_id))
            pipe.hget(keys.decisions, _number(submission_id))
            fixed, state, decisions = await pipe.execute()
        if fixed is None or state is None:
            return None
        return _submission(_number(submission_id), fixed, state, decisions)

    @_reachable
    async def submissions(self, code: str) -> list[Submission]:
        keys = _Keys(code)
        _, submissions, states, _, _ = keys.queue
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(submissions)
            pipe.hgetall(states)
            pipe.hgetall(keys.decisions)
            fixed, state, decisions = await pipe.execute()
        numbers = sorted(int(number) for number in fixed)
        return [
            _submission(
                number, fixed[str(number).encode()], state[str(number).encode()], decisions.get(str(number).encode())
            )
            for number in numbers
        ]

    @_reachable
    async def submissions_of(self, code: str, device: str) -> list[Submission]:
        keys = _Keys(code)
        _, submissions, states, _, _ = keys.queue
        # In the batch: a hall that reconnects asks this once per phone, and most have sent nothing.
        listed = _text(await self._batch.run("HGET", keys.by_device, device) or b"")
        numbers = [int(number) for number in listed.split(",") if number]
        if not numbers:
            return []
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(submissions, numbers)
            pipe.hmget(states, numbers)
            pipe.hmget(keys.decisions, numbers)
            fixed, state, decisions = await pipe.execute()
        return [_submission(*parts) for parts in zip(numbers, fixed, state, decisions, strict=True) if parts[1]]

    @_reachable
    async def blocks(self, code: str) -> list[Block]:
        stored = await self._redis.hgetall(_Keys(code).queue[4])
        blocks = [
            Block.model_validate({**json.loads(fields), "device": _text(device)}) for device, fields in stored.items()
        ]
        return sorted(blocks, key=lambda block: (block.at_ms, block.device))


class RedisStore(_RedisBattles, _RedisBallots, _RedisSubmissions, Store):
    """See the module docstring (the options: ``_RedisConnection``): every concern on one
    connection, and the backup and restore of a battle, which reads and writes all of them."""

    @_reachable
    async def record(self, code: str) -> BattleRecord | None:
        battle, tokens = await self.load(code), await self.secrets(code)
        if battle is None or tokens is None:
            return None
        keys, vote_ids = _Keys(code), self.vote_ids(battle)
        async with self._redis.pipeline(transaction=True) as pipe:
            for vote_id in vote_ids:
                pipe.hgetall(keys.ballots(vote_id))
                pipe.smembers(keys.seen(vote_id))
                pipe.hkeys(keys.online(vote_id))
            pipe.hgetall(keys.remote)
            *replies, delays = await pipe.execute()
        ballots: dict[str, dict[str, str]] = {}
        seen: dict[str, list[tuple[str, str]]] = {}
        online: dict[str, list[str]] = {}
        for vote_id, chosen, counted, remote in zip(vote_ids, replies[::3], replies[1::3], replies[2::3], strict=True):
            ballots[vote_id] = {_text(device): _text(choice) for device, choice in sorted(chosen.items())}
            pairs = (_text(member).rpartition("|") for member in counted)
            seen[vote_id] = sorted((device, ballot_id) for device, _, ballot_id in pairs)
            online[vote_id] = sorted(_text(device) for device in remote)
        own = {_text(device): int(delay) if delay else None for device, delay in sorted(delays.items())}
        return BattleRecord(
            battle, tokens, ballots, seen, await self.all_reactions(battle),
            await self.submissions(code), await self.blocks(code), own, online,
        )  # fmt: skip

    @_reachable
    async def put_record(self, record: BattleRecord) -> bool:
        """The counters first, the battle last: a restore cut short leaves no battle, and
        doing it again writes the same counters (nothing here adds to what is there)."""
        code = record.battle.code
        keys = _Keys(code)
        if await self._redis.exists(keys.battle):
            return False
        async with self._redis.pipeline(transaction=True) as pipe:
            for vote_id, chosen in record.ballots.items():
                pipe.delete(
                    keys.ballots(vote_id), keys.seen(vote_id), keys.totals(vote_id),
                    keys.online(vote_id), keys.online_totals(vote_id),
                )  # fmt: skip
                if chosen:
                    pipe.hset(keys.ballots(vote_id), mapping=chosen)  # type: ignore[arg-type]  # redis-py's mapping type is invariant
                    totals: dict[str, int] = {}
                    for choice in chosen.values():
                        totals[choice] = totals.get(choice, 0) + 1
                    pipe.hset(keys.totals(vote_id), mapping=totals)  # type: ignore[arg-type]
                remote = {device: chosen[device] for device in record.online.get(vote_id, ()) if device in chosen}
                if remote:
                    pipe.hset(keys.online(vote_id), mapping=remote)  # type: ignore[arg-type]
                    online_totals: dict[str, int] = {}
                    for choice in remote.values():
                        online_totals[choice] = online_totals.get(choice, 0) + 1
                    pipe.hset(keys.online_totals(vote_id), mapping=online_totals)  # type: ignore[arg-type]
            pipe.delete(keys.remote)
            if record.remote:
                delays = {device: "" if delay is None else delay for device, delay in record.remote.items()}
                pipe.hset(keys.remote, mapping=delays)  # type: ignore[arg-type]
            for vote_id, pairs in record.seen.items():
                if pairs:
                    pipe.sadd(keys.seen(vote_id), *(f"{device}|{ballot_id}" for device, ballot_id in pairs))
            for number, battlers in record.reactions.items():
                counts = {
                    f"{battler}|{kind}": count for battler, kinds in battlers.items() for kind, count in kinds.items()
                }
                pipe.delete(keys.reactions(number))
                if counts:
                    pipe.hset(keys.reactions(number), mapping=counts)  # type: ignore[arg-type]
            self._put_submissions(pipe, keys, record)
            await pipe.execute()
        tokens = record.secrets
        return await self._write(record.battle, self._create, tokens.host, tokens.screen, tokens.cohost)

    @staticmethod
    def _put_submissions(pipe: Any, keys: _Keys, record: BattleRecord) -> None:
        queue, submissions, states, waiting, blocked = keys.queue
        pipe.delete(*keys.queue, keys.decisions, keys.by_device)
        items = record.submissions
        numbers: dict[str, str] = {}
        for item in items:
            numbers[item.device] = numbers.get(item.device, "") + f"{_number(item.id)},"
            pipe.hset(submissions, _number(item.id), item.model_dump_json(exclude=_SUBMISSION_FIXED))
            pipe.hset(states, _number(item.id), f"{item.status}|{item.rev}")
            if item.decisions:
                pipe.hset(keys.decisions, _number(item.id), _DECISIONS.dump_json(item.decisions))
            if item.status in WAITING:
                pipe.hincrby(waiting, item.device, 1)
        last_id = max((_number(item.id) for item in items), default=0)
        last_rev = max((item.rev for item in items), default=0)
        pipe.hset(queue, mapping={"ids": last_id, "rev": last_rev, "waiting": sum(i.status in WAITING for i in items)})
        if numbers:
            pipe.hset(keys.by_device, mapping=numbers)
        for block in record.blocked:
            pipe.hset(blocked, block.device, block.model_dump_json(exclude={"device"}))


class _FanOut:
    """This process's one pub/sub connection: the battles it is subscribed to, and the
    reader task that hands their announcements to the listener.

    The reader outlives any Redis outage: it reconnects and subscribes again to every
    subscribed battle on its own. ``timeout_s`` is the store's ``socket_timeout_s``: the
    silence after which the connection is declared dead.
    """

    def __init__(self, redis: Redis, timeout_s: float, name: str) -> None:
        self._redis, self._timeout_s, self._name = redis, timeout_s, name
        self._listener: Listener | None = None
        # The subscribed battles, by channel. The reader subscribes to all of them
        # whenever it (re)connects, and delivers only what is in here.
        self._subscribed: dict[bytes, str] = {}
        self._pubsub: PubSub | None = None
        # Serialises writes on the pub/sub connection (subscribe, unsubscribe, ping,
        # the reader's resubscription); the reader reads without it.
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._pubsub is not None

    async def start(self, listener: Listener) -> None:
        self._listener = listener
        # The first connection is made here, so a wrong URL or a Redis that is down
        # fails the start, and subscribe() works as soon as start() returns.
        try:
            pubsub = await self._connect()
        except _UNREACHABLE as error:
            raise Unavailable() from error
        self._reader = asyncio.create_task(self._run(pubsub), name=self._name)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self._drop()
        self._subscribed.clear()

    async def subscribe(self, channel: bytes, code: str) -> None:
        async with self._lock:
            if self._pubsub is None:
                raise Unavailable()  # the reader is reconnecting
            self._subscribed[channel] = code
            try:
                await self._pubsub.subscribe(channel)
            except _UNREACHABLE as error:
                # Nothing recorded: the reader will not subscribe it on reconnecting.
                self._subscribed.pop(channel, None)
                raise Unavailable() from error

    async def unsubscribe(self, channel: bytes) -> None:
        async with self._lock:
            # Forgotten here first: from now on nothing is delivered for it, and no
            # reconnect subscribes it again. If Redis cannot be told now, the channel
            # goes with the dead connection, so there is nothing to report.
            self._subscribed.pop(channel, None)
            if self._pubsub is not None:
                with contextlib.suppress(*_UNREACHABLE):
                    await self._pubsub.unsubscribe(channel)

    async def _connect(self) -> PubSub:
        """A new pub/sub connection, subscribed to every battle that is subscribed."""
        async with self._lock:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                if self._subscribed:
                    await pubsub.subscribe(*self._subscribed)
                else:
                    await pubsub.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            except BaseException:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            # After an outage the pooled connections that sat idle through it still
            # point at the Redis that went away, and redis-py only finds out when a
            # command fails on one (a ballot refused after Redis is back). Drop them
            # before RedisStore.healthy() can say that Redis is back (it asks ``connected``).
            await self._redis.connection_pool.disconnect(inuse_connections=False)
            self._pubsub = pubsub
            return pubsub

    async def _drop(self) -> None:
        async with self._lock:
            pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception:  # closing a connection that is already broken
                log.debug("closing the fan-out connection failed", exc_info=True)

    async def _run(self, pubsub: PubSub | None) -> None:
        """The reader task: deliver messages, and outlive any Redis outage.

        It never ends on its own. When the connection breaks, or stays silent for
        ``timeout_s`` (pinged meanwhile, so silence means a hung Redis or a
        broken network), it drops it and connects again after a short backoff,
        subscribing to every subscribed battle.
        """
        delay = _RECONNECT_FIRST_S
        while True:
            recovering = pubsub is None
            try:
                if pubsub is None:
                    pubsub = await self._connect()
                async for _ in self._read(pubsub):
                    # Redis answered on this connection: only now is it back (a TCP
                    # connect alone also succeeds to a Redis that hangs).
                    if recovering:
                        log.info("fan-out back on Redis, %d battles subscribed", len(self._subscribed))
                        recovering = False
                    delay = _RECONNECT_FIRST_S
            except _UNREACHABLE as error:
                log.warning("fan-out lost Redis (%s); reconnecting in %.1fs", error, delay)
            except Exception:
                log.exception("fan-out reader failed; reconnecting in %.1fs", delay)
            pubsub = None
            await self._drop()
            await asyncio.sleep(delay)
            delay = min(2 * delay, _RECONNECT_MAX_S)

    async def _read(self, pubsub: PubSub) -> AsyncIterator[None]:
        """Deliver what arrives, forever; yields once the first time Redis answers."""
        loop = asyncio.get_running_loop()
        poll_s = self._timeout_s / 6
        ping_after_s = self._timeout_s / 3
        heard = loop.time()
        pinged = heard - ping_after_s  # ping at once: is anybody there?
        answered = False
        while True:
            now = loop.time()
            if now - heard > self._timeout_s:
                raise RedisTimeoutError(f"fan-out connection silent for {now - heard:.1f}s")
            if now - heard > ping_after_s and now - pinged > ping_after_s:
                # The answer, a "pong" message, counts as hearing from Redis.
                pinged = now
                async with self._lock:
                    await pubsub.ping()
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=poll_s)
            if message is None:
                continue
            heard = loop.time()
            if message["type"] == "message":
                self._deliver(message["channel"], message["data"])
            if not answered:
                answered = True
                yield

    def _deliver(self, channel: bytes, data: bytes) -> None:
        code = self._subscribed.get(channel)
        if code is None or self._listener is None:
            return  # unsubscribed while the message was on its way
        try:
            self._listener(code, data)
        except Exception:
            # A listener's bug must not end the fan-out for every battle.
            log.exception("fan-out listener failed on a message for %s", code)


_SUBMISSION_FIXED = {"id", "status", "rev", "decisions"}
_DECISIONS = TypeAdapter(list[Decision])


def _number(submission_id: str) -> int:
    return int(submission_id[1:]) if submission_id[1:].isdigit() else 0


def _submission(number: int, fixed: bytes, state: bytes, decisions: bytes | None) -> Submission:
    status, _, rev = _text(state).partition("|")
    try:
        stored = {"id": f"s{number}", "status": status, "rev": int(rev), "decisions": json.loads(decisions or b"[]")}
        return Submission.model_validate({**json.loads(fixed), **stored})
    except (ValidationError, ValueError) as error:
        raise Fault(f"stored submission s{number} does not parse") from error


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
