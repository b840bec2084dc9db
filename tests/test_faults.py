"""Faults (issue 5, "Nothing lost, no one in"): processes, Redis and clients that die or stall.

Everything is real: `battles serve` subprocesses on free ports, a redis-server of the
tests' own, websocket clients over loopback. Each test is bounded in count and time.
The phones are ``ReconnectingClient``s: they come back by themselves as the protocol's
``reconnect`` policy says, and resend an unacknowledged ballot with the same id.

What "no acknowledged ballot is lost" means here: a device's ballot may be replaced by
its own later choice (docs/rules.md, promises: one ballot per device, changing a choice replaces it), so
the final totals must be exactly the last acknowledged choice of every device, and every
``ballot_id`` that got a ``ballot`` reply must be among the ids the store recorded.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import json
import os
import random
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from battles import game
from tests.clients import Client, ReconnectingClient, follow, offer
from tests.helpers import FOUR, to_the_vote
from tests.servers import RedisServer, SentinelServer, Server

CHOICES = ["b1", "b2", "b3", "b4"]
# Generous per-address limits: every phone of these tests comes from 127.0.0.1.
HALL_LIMITS = {"mint_burst": 5000, "mints_per_minute": 60_000, "message_burst": 2000, "message_rate": 1000}
# The bursts aim at 1,000 ballots a second; on a busy 2-core machine they reach less (178 a
# second with appendfsync always, beside another suite's run), and below this they would no
# longer keep a ballot in flight at every moment, which is what a kill mid-burst needs.
MIN_RATE = 150


# --- helpers ------------------------------------------------------------------------------


async def phones_on(urls: list[list[str]], code: str, **options: Any) -> list[ReconnectingClient]:
    """One phone per entry of ``urls`` (its list of servers, the first one first)."""
    phones = [ReconnectingClient(list(servers), "audience", code, **options) for servers in urls]
    for batch in range(0, len(phones), 100):
        await asyncio.gather(*(phone.start() for phone in phones[batch : batch + 100]))
    return phones


class Burst:
    """Phones that vote again and again, each waiting for its answer: together about
    ``rate`` ballots a second, every one a new ``ballot_id`` and a random choice."""

    def __init__(self, phones: list[ReconnectingClient], vote_id: str, rate: float, seed: int = 5) -> None:
        self.phones, self.vote_id, self.rate = phones, vote_id, rate
        self.rng = random.Random(seed)
        self.stopping = asyncio.Event()
        self.acked_at: list[float] = []  # loop times of the `ballot` replies
        # The loop time each acknowledged ballot was first sent. An ack's time is taken when
        # its phone's task runs again, which on a busy loop can be after the reader has gone
        # on to the `service` message behind it: only the sending time tells a ballot that
        # was sent while the store was known to be down.
        self.acked_sent_at: list[float] = []
        self.refused: collections.Counter[str] = collections.Counter()
        self._task: asyncio.Future[list[None]] | None = None

    def start(self) -> Burst:
        self._task = asyncio.ensure_future(asyncio.gather(*(self._phone(p) for p in self.phones)))
        return self

    async def _phone(self, phone: ReconnectingClient) -> None:
        loop = asyncio.get_running_loop()
        interval = len(self.phones) / self.rate
        rng = random.Random(self.rng.random())
        next_at = loop.time() + rng.uniform(0, interval)
        while not self.stopping.is_set():
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            sent_at = loop.time()
            reply = await phone.vote(self.vote_id, rng.choice(CHOICES), timeout=90)
            if reply["type"] == "ballot":
                self.acked_at.append(loop.time())
                self.acked_sent_at.append(sent_at)
            else:
                self.refused[reply["reason"]] += 1
            next_at = max(next_at + interval, loop.time())

    def acked_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.acked_at if start <= t < end)

    def sent_and_acked_between(self, start: float, end: float) -> int:
        """Ballots first sent at or after ``start`` and acknowledged before ``end``."""
        return sum(1 for sent, acked in zip(self.acked_sent_at, self.acked_at) if start <= sent and acked < end)

    async def stop(self) -> None:
        """Stop, and let every phone's ballot in flight get its answer."""
        self.stopping.set()
        assert self._task is not None
        await asyncio.wait_for(self._task, 120)


def expected_totals(phones: list[ReconnectingClient], vote_id: str) -> dict[str, int]:
    counted = collections.Counter(phone.acked[vote_id] for phone in phones if vote_id in phone.acked)
    return {choice: counted.get(choice, 0) for choice in CHOICES}


def acked_ballot_ids(phones: list[ReconnectingClient], vote_id: str) -> set[str]:
    return {ballot_id for phone in phones for vote, ballot_id in phone.acked_ids if vote == vote_id}


def recorded_ballot_ids_redis(url: str, code: str, vote_id: str) -> set[str]:
    """The ballot ids the Redis store recorded (key layout: battles/stores/redis.py)."""
    with redis.Redis.from_url(url) as client:
        members = client.smembers(f"battle:{{{code}}}:seen:{vote_id}")
    return {member.decode().rpartition("|")[2] for member in members}


def recorded_ballot_ids_sqlite(path: Path, code: str, vote_id: str) -> set[str]:
    """The ballot ids the embedded store recorded (schema: battles/stores/embedded.py)."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT ballot_id FROM seen_ballots WHERE code = ? AND vote_id = ?", (code, vote_id))
        return {str(ballot_id) for (ballot_id,) in rows}


async def reveal(host: ReconnectingClient, vote_id: str) -> dict[str, Any]:
    """Close the vote and reveal it; returns the revealed vote as the host sees it."""
    for kind in ("close_vote", "reveal_results"):
        await run(host, kind)
    vote: dict[str, Any] = host.battle["rounds"][-1]["votes"][-1]
    assert vote["id"] == vote_id and vote["status"] == "revealed"
    return vote


async def host_to_the_vote(server: Server, code: str, token: str) -> str:
    host = await Client.connect(server.ws_url, "host", code, token)
    try:
        return await to_the_vote(host)
    finally:
        await host.close()


async def hall_at_the_vote(
    one: Server, two: Server, title: str
) -> tuple[dict[str, Any], str, ReconnectingClient, list[ReconnectingClient]]:
    """Both processes started; a battle with its vote open, its host on the first process
    and 200 phones spread over both. Returns the created battle, the vote id, host, phones."""
    await asyncio.gather(asyncio.to_thread(one.start), asyncio.to_thread(two.start))
    created = one.create_battle(title=title, battlers=FOUR, rules={"vote_seconds": 600})
    code = created["code"]
    vote_id = await host_to_the_vote(one, code, created["host_token"])
    host = await ReconnectingClient([one.ws_url], "host", code, created["host_token"]).start()
    phones = await phones_on([[one.ws_url] if n % 2 else [two.ws_url] for n in range(200)], code)
    return created, vote_id, host, phones


async def run(host: ReconnectingClient, kind: str, **fields: Any) -> dict[str, Any]:
    """A host command that must succeed; waits until the host has seen its result."""
    reply = await host.command(kind, **fields)
    assert reply is not None and reply["type"] == "ack", reply
    await host.wait_for(lambda battle: battle["version"] >= reply["seq"])
    return reply


async def close_all(*clients: ReconnectingClient) -> None:
    await asyncio.gather(*(client.close() for client in clients))


# --- 6. a process dies ---------------------------------------------------------------------


@pytest.fixture
def two_processes(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    redis_server.start()
    redis_server.flush()
    servers = [Server(redis_server.url, tmp_path / f"server-{n}.log", **HALL_LIMITS).start() for n in (1, 2)]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


async def test_kill_9_of_one_of_two_processes_loses_no_acknowledged_ballot(
    two_processes: tuple[Server, Server], redis_server: RedisServer
) -> None:
    one, two = two_processes
    created = one.create_battle(title="Kill one", battlers=FOUR, rules={"vote_seconds": 600})
    code = created["code"]
    vote_id = await host_to_the_vote(one, code, created["host_token"])
    both = [one.ws_url, two.ws_url]
    # Half the hall on each process; each phone knows both (no load balancer here).
    phones = await phones_on([both if n % 2 == 0 else both[::-1] for n in range(200)], code)
    on_one = [phone for n, phone in enumerate(phones) if n % 2 == 0]
    host = await ReconnectingClient([two.ws_url], "host", code, created["host_token"]).start()
    burst = Burst(phones, vote_id, rate=1000).start()
    loop = asyncio.get_running_loop()

    await asyncio.sleep(3)
    killed_at = loop.time()
    one.kill()  # mid-burst: ballots in flight on process one get no answer
    await asyncio.sleep(4)
    await burst.stop()

    before = burst.acked_between(killed_at - 2, killed_at) / 2
    after = burst.acked_between(killed_at + 2, killed_at + 4) / 2
    print(f"kill -9 of one of two: {before:.0f} ballots/s before, {after:.0f}/s after")
    # About 1,000 a second on an idle machine; the floor only proves it was a burst.
    assert before > MIN_RATE and after > MIN_RATE, (before, after)
    # Every phone of the dead process came back, to the other one, by itself.
    assert all(phone.connections == 2 and phone.close_codes == [1006] for phone in on_one)
    assert all(phone.connected.is_set() and phone.url_index % 2 == 1 for phone in on_one)
    # The first try waits up to base_ms (500 ms) and goes to the other process.
    assert max(phone.connected_at[-1] - killed_at for phone in on_one) < 3
    assert [s for phone in phones for s in phone.surprises] == []

    vote = await reveal(host, vote_id)
    assert vote["totals"] == expected_totals(phones, vote_id)
    assert vote["ballots"] == len(phones)
    missing = acked_ballot_ids(phones, vote_id) - recorded_ballot_ids_redis(redis_server.url, code, vote_id)
    assert not missing, f"{len(missing)} acknowledged ballots are not recorded"
    await close_all(host, *phones)


async def test_kill_9_of_the_one_embedded_process_then_a_restart_loses_no_acknowledged_ballot(tmp_path: Path) -> None:
    path = tmp_path / "battles.sqlite3"
    # A short second window, so the hall is back soon after the restart.
    server = Server(f"sqlite:///{path}", tmp_path / "server.log", reconnect_max_ms=3000, **HALL_LIMITS).start()
    try:
        created = server.create_battle(title="Kill the laptop", battlers=FOUR, rules={"vote_seconds": 600})
        code = created["code"]
        vote_id = await host_to_the_vote(server, code, created["host_token"])
        phones = await phones_on([[server.ws_url]] * 150, code)
        loop = asyncio.get_running_loop()
        burst_started = loop.time()
        burst = Burst(phones, vote_id, rate=1000).start()
        await asyncio.sleep(3)
        # The kill lands at an instant with ballots in flight: on a fast disk an instant may
        # have none, so the next one that has some is taken (within a second).
        while (
            in_flight := sum(phone.pending is not None for phone in phones)
        ) == 0 and loop.time() - burst_started < 4:
            await asyncio.sleep(0)
        killed_at = loop.time()
        server.kill()
        # Started from a thread: the phones keep trying (and failing) meanwhile.
        await asyncio.to_thread(server.start)
        restarted_at = loop.time()
        # Until the hall is back (or 10 s have passed, judged below), and a second more of the burst.
        while not all(phone.connections == 2 for phone in phones) and loop.time() - restarted_at < 10:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        await burst.stop()

        before = burst.acked_between(killed_at - 2, killed_at) / 2
        pace = burst.acked_between(burst_started, killed_at) / (killed_at - burst_started)
        print(
            f"kill -9 of the embedded process: {before:.0f} ballots/s in the 2 s before, {pace:.0f} "
            f"ballots/s since the burst began, {in_flight} of {len(phones)} phones' ballots in flight"
        )
        # The kill must land in the middle of a burst: ballots in flight, acknowledged at
        # the burst's own pace right up to it. That pace is the machine's, not a figure:
        # each ballot waits for an fsync of the WAL, shared by the ballots that arrive
        # meanwhile (docs/operations.md), and how many are in flight at one instant
        # depends on how fast the disk answers.
        assert in_flight >= 1, in_flight
        assert before >= pace / 2 > 0, (before, pace)
        assert all(phone.connections == 2 and phone.close_codes == [1006] for phone in phones)
        back = sorted(phone.connected_at[-1] - restarted_at for phone in phones)
        tries = sum(phone.failed_tries for phone in phones)
        print(f"back after the restart: first {back[0]:.2f} s, last {back[-1]:.2f} s; {tries} tries failed meanwhile")
        # Each failed try waits up to reconnect_max_ms (3 s here) before the next.
        assert back[-1] < 10
        assert [s for phone in phones for s in phone.surprises] == []
        host = await ReconnectingClient([server.ws_url], "host", code, created["host_token"]).start()
        vote = await reveal(host, vote_id)
        assert vote["totals"] == expected_totals(phones, vote_id)
        assert vote["ballots"] == len(phones)
        missing = acked_ballot_ids(phones, vote_id) - recorded_ballot_ids_sqlite(path, code, vote_id)
        assert not missing, f"{len(missing)} acknowledged ballots are not recorded"
        await close_all(host, *phones)
    finally:
        server.stop()


# --- 7. Redis dies -------------------------------------------------------------------------


@pytest.fixture(params=["always", "everysec"])
def durable_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis with append-only persistence in a folder of its own, that a test can
    kill -9 and start again on the same port and folder."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder, ("--appendonly", "yes", "--appendfsync", request.param))
    server.start()
    yield server
    server.stop()


async def test_kill_9_of_redis_mid_burst(
    durable_redis: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fsync = durable_redis.persistence[-1]
    one, two = (Server(durable_redis.url, tmp_path / f"server-{n}.log", **HALL_LIMITS) for n in (1, 2))
    try:
        created, vote_id, host, phones = await hall_at_the_vote(one, two, "Redis dies")
        code = created["code"]
        screen = await ReconnectingClient([two.ws_url], "screen", code, created["screen_token"]).start()
        probe = await ReconnectingClient([two.ws_url], "audience", code).start()
        burst = Burst(phones, vote_id, rate=1000).start()
        loop = asyncio.get_running_loop()
        everyone = [host, screen, probe, *phones]

        await asyncio.sleep(3)
        killed_at = loop.time()
        durable_redis.stop()  # kill -9

        # The host and every phone and screen are told, by both processes.
        async with asyncio.timeout(5):
            while not all(client.service == ["unavailable"] for client in everyone):
                await asyncio.sleep(0.05)
        told_at = loop.time()
        assert httpx.get(f"{two.url}/healthz").status_code == 503
        # A new phone is told to come back later, not that the battle does not exist.
        with pytest.raises(InvalidStatus) as refusal:
            await connect(f"{two.ws_url}/ws/audience/{created['code']}", subprotocols=["battles.v1"])  # type: ignore[list-item]
        assert refusal.value.response.status_code == 503
        # Ballots are refused, clearly, and nothing is acknowledged.
        refused = await probe.request(
            {"type": "vote", "vote_id": vote_id, "choice": "b1", "ballot_id": "probe-ballot-1"}
        )
        assert refused is not None and refused["type"] == "error" and refused["reason"] == "store_unavailable"
        assert "storage" in refused["message"]
        paused = await host.command("pause_timer")
        assert paused is not None and paused["reason"] == "store_unavailable"
        await asyncio.sleep(1.5)
        restarting_at = loop.time()
        # Nothing sent while the store was known to be down is acknowledged before it is back.
        # (An ack of a ballot that Redis recorded just before the kill may reach its phone's
        # task after `told_at`; that it is recorded is checked below, with every other ack.)
        assert burst.sent_and_acked_between(told_at, restarting_at) == 0

        await asyncio.to_thread(durable_redis.start)  # same port, same folder: it reloads its AOF
        async with asyncio.timeout(10):
            while not all(client.service == ["unavailable", "ok"] for client in everyone):
                await asyncio.sleep(0.05)
        back_at = loop.time()
        await asyncio.sleep(3)
        await burst.stop()

        before = burst.acked_between(killed_at - 2, killed_at) / 2
        after = burst.acked_between(back_at + 1, back_at + 3) / 2
        print(
            f"appendfsync {fsync}: {before:.0f} ballots/s before the kill, {after:.0f}/s after; "
            f"told in {told_at - killed_at:.2f} s, back {back_at - restarting_at:.2f} s after the restart"
        )
        assert before > MIN_RATE and after > MIN_RATE, (before, after)
        assert sum(burst.refused.values()) == 0  # every ballot was answered in the end
        surprises = [s for phone in phones for s in phone.surprises]
        if fsync == "always":
            assert surprises == []
        assert httpx.get(f"{two.url}/healthz").status_code == 200

        # The whole path works again: a ballot, a host command, a screen's update from
        # the other process (its fan-out reconnected by itself).
        assert (await probe.vote(vote_id, "b2"))["type"] == "ballot"
        vote = await reveal(host, vote_id)
        await screen.wait_for(lambda battle: battle["rounds"][-1]["votes"][-1]["status"] == "revealed")
        assert screen.battle["rounds"][-1]["votes"][-1]["totals"] == vote["totals"]

        acked = acked_ballot_ids(phones, vote_id)
        lost = acked - recorded_ballot_ids_redis(durable_redis.url, code, vote_id)
        expected = expected_totals([*phones, probe], vote_id)
        wrong = sum(abs(vote["totals"].get(c, 0) - expected[c]) for c in CHOICES)
        print(f"appendfsync {fsync}: {len(lost)} of {len(acked)} acknowledged ballots lost, totals off by {wrong}")
        request.node.user_properties.append(("lost_ballots", len(lost)))
        if fsync == "always":
            assert not lost and wrong == 0
            assert vote["ballots"] == len(phones) + 1
        else:
            # While its background sync runs late, Redis holds its writes back for up to 2 s
            # and still replies (docs/operations.md): at most those ballots may be gone, and
            # a phone that lost one finds its earlier choice (a surprise) or none.
            window = burst.acked_between(killed_at - 2.5, killed_at)
            assert len(lost) <= window and len(surprises) <= len(lost), (len(lost), window, len(surprises))
        await close_all(*everyone)
    finally:
        one.stop()
        two.stop()


# --- 7b. Redis's primary fails over (Sentinel) ---------------------------------------------

SERVICE = "battles"


def replicating(replica: RedisServer) -> bool:
    with redis.Redis(port=replica.port) as client:
        return bool(client.info("replication").get("master_link_status") == "up")


def sentinels_ready(sentinels: list[SentinelServer], replicas: int) -> bool:
    """Every Sentinel knows the other two and every replica: a failover can happen."""
    for sentinel in sentinels:
        with redis.Redis(port=sentinel.port) as client:
            if len(client.sentinel_sentinels(SERVICE)) != len(sentinels) - 1:
                return False
            if len(client.sentinel_slaves(SERVICE)) != replicas:
                return False
    return True


async def until(condition: Any, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await asyncio.to_thread(condition):
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"no {what} after {timeout} s")


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[tuple[RedisServer, list[RedisServer], list[SentinelServer]]]:
    """A primary, two replicas and three Sentinels (quorum 2) on free ports.

    Two replicas, not one: with ``wait_replicas`` 1, the new primary needs a replica
    of its own to acknowledge anything after the failover (docs/operations.md).
    """

    def folder(name: str) -> Path:
        (tmp_path / name).mkdir()
        return tmp_path / name

    primary = RedisServer(folder("primary"))
    primary.start()
    replicas = [
        RedisServer(folder(f"replica-{n}"), options=("--replicaof", "127.0.0.1", str(primary.port))) for n in (1, 2)
    ]
    sentinels = [SentinelServer(folder(f"sentinel-{n}"), primary, SERVICE) for n in (1, 2, 3)]
    try:
        for node in (*replicas, *sentinels):
            node.start()
        yield primary, replicas, sentinels
    finally:
        for node in (*sentinels, *replicas, primary):
            node.stop()


def outages_told(client: ReconnectingClient) -> int:
    """How many outages ``client`` was told of, each followed by its end (a second failover
    is a second outage); -1 when its ``service`` messages said anything else."""
    outages = len(client.service) // 2
    return outages if client.service == ["unavailable", "ok"] * outages else -1


def vote_closings(client: ReconnectingClient) -> int:
    """How often ``client`` saw the battle's vote go from open to closed, in every
    snapshot and update it received: 1 when its timer fired once."""
    closings, status = 0, None
    seq, battle = -1, {}
    while not client.inbox.empty():
        message = client.inbox.get_nowait()
        following = follow(seq, battle, message) if message["type"] in ("snapshot", "update") else None
        if following is None:
            continue  # another message, or an update that did not apply (the client resynced)
        seq, battle = message["seq"], following
        if not battle["rounds"]:
            continue
        votes = battle["rounds"][-1]["votes"]
        now = votes[-1]["status"] if votes else None
        closings += status == "open" and now == "closed"
        status = now
    return closings


@pytest.mark.parametrize("wait_replicas", [1, 0])
async def test_a_sentinel_failover_mid_burst(
    sentinel_setup: tuple[RedisServer, list[RedisServer], list[SentinelServer]],
    wait_replicas: int,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    primary, replicas, sentinels = sentinel_setup
    await until(lambda: all(replicating(replica) for replica in replicas), 20, "replicas in sync")
    await until(lambda: sentinels_ready(sentinels, len(replicas)), 30, "Sentinels that know each other")
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + f"/{SERVICE}/0"
    one, two = (Server(url, tmp_path / f"server-{n}.log", wait_replicas=wait_replicas, **HALL_LIMITS) for n in (1, 2))
    try:
        created, vote_id, host, phones = await hall_at_the_vote(one, two, "Failover")
        code = created["code"]
        # Battles whose 5 s votes close by their timers just before, during and after
        # the failover: each must close once, as every screen sees it.
        timed, hosts = [], []
        for _ in range(4):
            battle = one.create_battle(title="Timer", battlers=FOUR, rules={"vote_seconds": 5})
            timer_host = await Client.connect(one.ws_url, "host", battle["code"], battle["host_token"])
            await timer_host.run("start_round")
            while timer_host.battle["phase"] != "vote":
                await timer_host.run("next")
            hosts.append(timer_host)
            timed.append(
                await ReconnectingClient([two.ws_url], "screen", battle["code"], battle["screen_token"]).start()
            )
        everyone = [host, *phones, *timed]

        burst = Burst(phones, vote_id, rate=1000).start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for timer_host, opens_at in zip(hosts, (0.0, 0.8, 2.0, 4.5)):  # deadlines: kill -1, -0.2, +1, +3.5 s
            await asyncio.sleep(max(0.0, started + opens_at - loop.time()))
            await timer_host.run("open_vote")
        await asyncio.sleep(max(0.0, started + 6 - loop.time()))
        killed_at = loop.time()
        primary.stop()  # kill -9

        # Over once every client is told `ok` and the hall votes at the burst's pace for 2 s
        # in a row. With wait_replicas, ballots are acknowledged again only once the new
        # primary has a replica in sync, which may come after `service` `ok`; and on a busy
        # machine the new primary may miss Sentinel's pings and be replaced by a second
        # failover (docs/operations.md, "A failover, measured"): the wait goes on through it.
        def told_ok() -> bool:
            return all(client.service[-1:] == ["ok"] for client in everyone)

        async def at_pace_again() -> tuple[float, float]:
            """When the hall's 2 s at pace began, and its ballots a second in them."""
            while True:
                while not (told_ok() and burst.acked_between(loop.time() - 1, loop.time()) >= MIN_RATE):
                    await asyncio.sleep(0.1)
                since = loop.time()
                await asyncio.sleep(2)
                if (rate := burst.acked_between(since, since + 2) / 2) >= MIN_RATE:
                    return since, rate

        try:
            async with asyncio.timeout(60):
                recovered_at, after = await at_pace_again()
        except TimeoutError:
            pytest.fail(f"the hall did not vote at {MIN_RATE} ballots/s again within 60 s of the kill")
        await burst.stop()
        async with asyncio.timeout(60):  # a failover that began as the burst stopped ends too
            while not told_ok():
                await asyncio.sleep(0.1)

        # The outage as the phones saw it: the longest silence between two acknowledged
        # ballots from just before the kill until the hall voted at pace again.
        acked = sorted(t for t in burst.acked_at if killed_at - 0.5 <= t < recovered_at)
        gap, resumed_at = max((b - a, b) for a, b in itertools.pairwise(acked))
        before = burst.acked_between(killed_at - 2, killed_at) / 2
        told = [outages_told(client) for client in everyone]
        with redis.Redis(port=sentinels[0].port, decode_responses=True) as client:
            host_name, port = client.sentinel_get_master_addr_by_name(SERVICE)
        assert int(port) != primary.port
        new_url = f"redis://{host_name}:{port}/0"

        vote = await reveal(host, vote_id)
        acked_ids = acked_ballot_ids(phones, vote_id)
        lost = acked_ids - recorded_ballot_ids_redis(new_url, code, vote_id)
        expected = expected_totals(phones, vote_id)
        wrong = sum(abs(vote["totals"].get(c, 0) - expected[c]) for c in CHOICES)
        closings = [vote_closings(screen) for screen in timed]
        print(
            f"Sentinel failover, wait_replicas={wait_replicas}: {before:.0f} ballots/s before, {after:.0f}/s after; "
            f"ballots acknowledged again {resumed_at - killed_at:.2f} s after the kill (longest silence {gap:.2f} s); "
            f"{len(lost)} of {len(acked_ids)} acknowledged ballots lost, totals off by {wrong}; "
            f"{sum(n >= 1 for n in told)} of {len(everyone)} clients told unavailable then ok "
            f"({sum(n > 1 for n in told)} of them more than once); timer closings seen {closings}"
        )
        request.node.user_properties.append(("failover_s", resumed_at - killed_at))
        request.node.user_properties.append(("lost_ballots", len(lost)))
        assert before > MIN_RATE, before
        assert min(told) >= 1, told
        assert closings == [1, 1, 1, 1]
        assert all(screen.battle["rounds"][-1]["votes"][-1]["status"] == "closed" for screen in timed)
        assert sum(burst.refused.values()) == 0
        surprised = {n for n, phone in enumerate(phones) if phone.surprises}
        if wait_replicas:
            assert not lost and wrong == 0 and not surprised
            assert vote["ballots"] == len(phones)
        else:
            # Without the setting an acknowledged ballot may be lost (docs/operations.md): its
            # phone then finds an older ballot of its own restored, and no other phone is surprised.
            losing = {n for n, phone in enumerate(phones) if {b for v, b in phone.acked_ids if v == vote_id} & lost}
            assert surprised <= losing, [phones[n].surprises for n in surprised - losing]
        await close_all(*everyone)
        for timer_host in hosts:
            await timer_host.close()
    finally:
        one.stop()
        two.stop()


async def test_a_primary_lost_with_one_of_its_sentinels_is_logged_in_short_lines(tmp_path: Path) -> None:
    """The primary's machine goes, and the Sentinel that ran beside it. Once the other
    Sentinel calls the primary down (3 s), redis-py's error names the Sentinel it could
    not ask by its client's repr, every connection setting spelled out: each line of the
    fan-out's reconnects was 1,150 characters long. A plain Redis outage takes 130."""

    def folder(name: str) -> Path:
        (tmp_path / name).mkdir()
        return tmp_path / name

    primary = RedisServer(folder("primary"))
    sentinels = [SentinelServer(folder(f"sentinel-{n}"), primary, SERVICE) for n in (1, 2)]
    server: Server | None = None
    try:
        for node in (primary, *sentinels):
            node.start()
        url = "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in sentinels) + f"/{SERVICE}/0"
        server = Server(url, tmp_path / "server.log").start()
        server.create_battle(title="Lost", battlers=FOUR)
        logged = server.log_path.stat().st_size

        def since_the_loss() -> str:
            return server.log_path.read_bytes()[logged:].decode() if server else ""

        primary.stop()
        sentinels[0].stop()
        await until(lambda: "No master found" in since_the_loss(), 20, "primary called lost")
        await asyncio.sleep(1.5)  # the fan-out's next reconnects
    finally:
        if server is not None:
            server.stop()
        for node in (*sentinels, primary):
            node.stop()
    lines = since_the_loss().splitlines()
    assert "the store cannot be reached" in "\n".join(lines)
    assert all(len(line) < 300 for line in lines), max(lines, key=len)
    # Still told: which Sentinel could not be asked.
    told = [line for line in lines if "No master found" in line]
    assert told and f"127.0.0.1:{sentinels[0].port}" in told[0], told


# --- 10. dead and slow clients -------------------------------------------------------------


def raw_websocket(
    port: int, path: str, receive_buffer: int | None = None, token: str | None = None
) -> tuple[socket.socket, bytes]:
    """A websocket handshake by hand on a plain TCP socket, which then does whatever the
    test does with it (nothing, usually: it never answers a ping, never reads). Returns
    the socket and the bytes that came after the handshake's response."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        # Segments as on a real network path. Loopback's 64 KiB segments let the kernel
        # grow the server's send buffer to 4 MiB, which would hide the server's own queue.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {', '.join(offer(token))}\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    head, _, rest = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def close_code_of(stream: bytes) -> int | None:
    """The code of the close frame in a stream of (unmasked) server frames, if any."""
    at = 0
    while at + 2 <= len(stream):
        opcode, length = stream[at] & 0x0F, stream[at + 1] & 0x7F
        at += 2
        if length == 126:
            length, at = int.from_bytes(stream[at : at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(stream[at : at + 8], "big"), at + 8
        if opcode == 0x8 and length >= 2:
            return int.from_bytes(stream[at : at + 2], "big")
        at += length
    return None


def read_to_the_end(sock: socket.socket, first: bytes = b"", timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    data = first
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


async def test_a_phone_gone_with_updates_on_their_way_leaves_the_count_at_the_ping_timeout(tmp_path: Path) -> None:
    # A phone that vanished without a reset while updates were on their way: the
    # server's buffers for it hold bytes that nobody will take. The ping timeout's polite
    # close waited for them to drain, and the phone stayed in the count until TCP gave up.
    interval, timeout = 3.0, 1.0
    server = Server(
        f"sqlite:///{tmp_path / 'battles.sqlite3'}", tmp_path / "server.log",
        ping_interval=interval, ping_timeout=timeout, send_queue=10_000,  # no 1013: the ping decides
        message_rate=1000, message_burst=1000,  # the host's commands as fast as they go
    ).start()  # fmt: skip
    try:
        battlers = [{"name": f"Battler {n}" + "x" * 40, "vision": "v" * 140} for n in range(10)]
        created = server.create_battle(title="Gone", battlers=battlers)
        code = created["code"]
        host = await Client.connect(server.ws_url, "host", code, created["host_token"])
        gone, _ = await asyncio.to_thread(raw_websocket, server.port, f"/ws/audience/{code}", 4096)
        gone_from = time.monotonic()  # it never reads nor answers from here on
        await host.until_presence(audience=1)
        await host.run("start_round")
        await host.run("next")
        while time.monotonic() - gone_from < interval - 1:  # updates until just before the first ping
            await host.run("extend_timer", seconds=5)
        await host.until_presence(timeout=10, audience=0)
        dropped_in = time.monotonic() - gone_from
        print(f"a phone gone with updates on their way left the count {dropped_in:.2f} s after it went silent")
        assert dropped_in <= interval + timeout + 2
        gone.close()
        await host.close()
    finally:
        server.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


async def test_a_client_that_stops_answering_pings_is_dropped_and_leaves_the_count(tmp_path: Path) -> None:
    interval, timeout = 1.0, 1.0
    server = Server(
        f"sqlite:///{tmp_path / 'battles.sqlite3'}",
        tmp_path / "server.log",
        ping_interval=interval,
        ping_timeout=timeout,
    ).start()
    try:
        created = server.create_battle(title="Pings", battlers=FOUR)
        code = created["code"]
        host = await Client.connect(server.ws_url, "host", code, created["host_token"])
        alive = await Client.connect(server.ws_url, "audience", code)  # answers pings by itself
        dead, rest = await asyncio.to_thread(raw_websocket, server.port, f"/ws/audience/{code}")
        dead_from = time.monotonic()  # it never reads nor answers from here on
        await host.until_presence(audience=2)

        await host.until_presence(timeout=10, audience=1)
        dropped_in = time.monotonic() - dead_from
        print(f"a dead phone left the count {dropped_in:.2f} s after it went silent")
        # Pings every `interval`, a pong awaited `timeout`; the count follows within one
        # presence report (200 ms in tests) and a little scheduling.
        assert interval <= dropped_in <= interval + timeout + 0.2 + 0.5
        assert close_code_of(await asyncio.to_thread(read_to_the_end, dead, rest)) == 1011
        dead.close()

        # The live phone was pinged just as often, answered, and stays.
        await host.run("start_round")
        await alive.wait_for(lambda battle: battle["phase"] == "challenge")
        await host.close()
        await alive.close()
    finally:
        server.stop()


async def test_a_client_that_stops_reading_is_closed_and_the_others_get_every_update(tmp_path: Path) -> None:
    server = Server(
        f"sqlite:///{tmp_path / 'battles.sqlite3'}", tmp_path / "server.log", send_queue=8, **HALL_LIMITS
    ).start()
    try:
        # An update carries what changed: each of these gives the consoles a new list of 300
        # banned words of 40 characters, a patch of about 26 KiB, so that a console socket
        # whose queue had no bound would hold megabytes.
        created = server.create_battle(title="Slow readers", battlers=FOUR)
        code = created["code"]
        token = created["host_token"]
        urls = [server.ws_url]
        host = await ReconnectingClient(urls, "host", code, created["host_token"]).start()
        readers = [await ReconnectingClient(urls, "screen", code, created["screen_token"]).start()]
        readers += [await ReconnectingClient(urls, "audience", code).start() for _ in range(3)]
        assert server.process is not None
        before_kib = rss_kib(server.process.pid)

        slow = [await asyncio.to_thread(raw_websocket, server.port, f"/ws/host/{code}", 4096, token) for _ in range(20)]
        await host.until_presence(host=21, audience=3)
        first, updates = host.seq + 1, game.MAX_AUDIENCE_RULE_EDITS
        for n in range(updates):
            await run(host, "set_audience_rules", banned_words=[f"{n:03}{w:03}" + "x" * 34 for w in range(300)])
        last = host.seq
        assert last == first + updates - 1
        # At least the bytes of one update: its words.
        frame = len(json.dumps(host.battle["rules"]["banned_words"]))
        peak_kib = rss_kib(server.process.pid)

        # The slow sockets left the count as soon as their queues were full...
        await host.until_presence(timeout=5, host=1, audience=3)
        # ...and their connections are cut within the close's grace (fanout.CLOSE_GRACE_S,
        # twice: to send the close frame, and for the answer that never comes).
        streams = await asyncio.gather(*(asyncio.to_thread(read_to_the_end, s, rest, 15) for s, rest in slow))
        for (sock, _), stream in zip(slow, streams):
            assert close_code_of(stream) in (1013, None)  # None: cut off before the frame went out
            assert stream.count(b'"type":"update"') < updates / 4
            sock.close()

        # The readers got every update, in order, none missing, on their first connection.
        for reader in readers:
            seqs: list[int] = []
            while not reader.inbox.empty():
                message = reader.inbox.get_nowait()
                if message["type"] == "update" and message["seq"] >= first:
                    seqs.append(message["seq"])
            assert seqs == list(range(first, last + 1)), f"a {reader.role} missed updates"
            assert reader.connections == 1

        # Bounded: with no bound the server would hold 20 sockets x 400 updates.
        growth_kib = peak_kib - before_kib
        unbounded_kib = 20 * updates * frame // 1024
        print(
            f"updates of {frame} bytes; server RSS {before_kib} KiB, +{growth_kib} KiB at the peak (unbounded: +{unbounded_kib} KiB)"
        )
        assert growth_kib < unbounded_kib / 4
        await close_all(host, *readers)
    finally:
        server.stop()


# --- 8. reconnect storm --------------------------------------------------------------------


class LoopLag:
    """How late this process's event loop ran its timers (a CPU-starved test process
    is late by seconds, and then runs a whole stalled second's work at once)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> LoopLag:
        self._task = asyncio.create_task(self._watch())
        return self

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.05)
            self.worst = max(self.worst, loop.time() - before - 0.05)

    def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()


def busiest_second(times: list[float]) -> int:
    """The most of ``times`` that fall in any one-second window (sliding, not aligned)."""
    times, most, start = sorted(times), 0, 0
    for end in range(len(times)):
        while times[end] - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_a_restart_under_2000_sockets_brings_them_all_back_spread_out(tmp_path: Path) -> None:
    path = tmp_path / "battles.sqlite3"
    server = Server(
        f"sqlite:///{path}", tmp_path / "server.log",
        # Live figures and presence once a second: 2,000 phones in one test process.
        audience_tick_ms=1000, presence_interval_ms=1000, **HALL_LIMITS,
    ).start()  # fmt: skip
    try:
        created = server.create_battle(title="Storm", battlers=FOUR, rules={"vote_seconds": 3600})
        code = created["code"]
        vote_id = await host_to_the_vote(server, code, created["host_token"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        phones = await phones_on([[server.ws_url]] * 2000, code)
        print(f"2,000 phones connected in {loop.time() - started:.1f} s")
        assert all(phone.policy == {"base_ms": 500, "max_ms": 15000, "jitter": "full"} for phone in phones)
        rng = random.Random(8)
        for batch in range(0, 2000, 200):
            replies = await asyncio.gather(*(p.vote(vote_id, rng.choice(CHOICES)) for p in phones[batch : batch + 200]))
            assert {reply["status"] for reply in replies} == {"counted"}

        # A tenth of the hall changes its mind just as the server goes down.
        changing = [
            asyncio.ensure_future(phone.vote(vote_id, rng.choice(CHOICES), timeout=60)) for phone in phones[::10]
        ]
        await asyncio.sleep(0.05)
        restart_at = loop.time()
        lag = LoopLag().start()
        await asyncio.to_thread(server.stop)  # graceful: every socket is closed with 1012
        await asyncio.to_thread(server.start)
        up_at = loop.time()
        async with asyncio.timeout(40):
            while not all(phone.connections == 2 for phone in phones):
                await asyncio.sleep(0.2)
        lag.stop()
        for reply in await asyncio.gather(*changing):
            assert reply["type"] == "ballot"

        back = [phone.connected_at[-1] - restart_at for phone in phones]
        planned = busiest_second([phone.planned_at[-1] for phone in phones])
        served = busiest_second(back)
        print(
            f"restart took {up_at - restart_at:.1f} s; all 2,000 back {max(back):.1f} s after it began; "
            f"busiest second: {planned / 20:.1f}% of the tries as the policy drew them, {served / 20:.1f}% "
            f"of the welcomes; {sum(p.failed_tries for p in phones)} tries failed while the server was down; "
            f"this test's event loop lagged {lag.worst:.2f} s at worst"
        )
        assert {code for phone in phones for code in phone.close_codes} == {1012}
        assert max(back) < 30
        assert planned <= 0.15 * len(phones)
        # When they were served depends on the machine too: a test process starved of
        # CPU by other work runs a stalled second's tries in a clump. Judged when it was not.
        if lag.worst < 0.5:
            assert served <= 0.15 * len(phones)
        assert [s for phone in phones for s in phone.surprises] == []

        host = await ReconnectingClient([server.ws_url], "host", code, created["host_token"]).start()
        vote = await reveal(host, vote_id)
        assert vote["ballots"] == len(phones)  # none lost, none doubled
        assert vote["totals"] == expected_totals(phones, vote_id)
        await close_all(host, *phones)
    finally:
        server.stop()


# --- 9. screen catch-up --------------------------------------------------------------------

# What the screen misses. The issue asks for 90 s of updates. The server forgets nothing
# with time (a screen that comes back gets a snapshot, however long it was away), so what
# counts is how much happened meanwhile: the show below, a move every 0.15 s, made 663
# updates and 7 reveals in 90 s. The screen stays away until the show, at full speed, has
# made at least as many as these (BATTLES_TEST_SCREEN_MISSES for more or fewer updates).
SCREEN_MISSES = int(os.environ.get("BATTLES_TEST_SCREEN_MISSES", "660"))
SCREEN_MISSES_REVEALS = 5


class Show:
    """A host moving an evening on, one command at a time, with phones voting."""

    def __init__(self, host: ReconnectingClient, phones: list[ReconnectingClient], seed: int = 9) -> None:
        self.host, self.phones, self.rng = host, phones, random.Random(seed)
        self.revealed = 0

    async def step(self) -> None:
        """One move of the show (a command, or a vote by the phones and its close)."""
        battle = self.host.battle
        phase = battle["phase"]
        if phase in ("lobby", "elimination"):
            await run(self.host, "start_round", challenge=f"Card {len(battle['rounds']) + 1}")
        elif phase == "challenge":
            await run(self.host, "next")
        elif phase == "turn":
            # A turn sees its timer pushed about, then ends.
            turn = self.rng.choice(["extend_timer", "pause_timer", "next"])
            if turn == "pause_timer":
                await run(self.host, "pause_timer")
                await run(self.host, "resume_timer")
            elif turn == "extend_timer":
                await run(self.host, "extend_timer", seconds=self.rng.randint(5, 60))
            elif battle["turn_index"] + 1 < len(battle["rounds"][-1]["order"]):
                await run(self.host, "next")
            else:
                await run(self.host, "open_vote")
        elif phase == "vote":
            vote = battle["rounds"][-1]["votes"][-1]
            if vote["status"] == "open":
                await asyncio.gather(*(p.vote(vote["id"], self.rng.choice(vote["choices"])) for p in self.phones))
                await run(self.host, "close_vote")
            else:
                await run(self.host, "reveal_results")
                self.revealed += 1
        elif phase in ("reveal", "final"):
            proposal = battle["rounds"][-1]["proposal"]
            if phase == "reveal" and proposal and proposal["method"] == "runoff":
                await run(self.host, "open_vote")
            elif phase == "reveal" and proposal and proposal["need"]:
                await run(self.host, "confirm_elimination", battlers=proposal["tied"][: proposal["need"]])
            elif phase == "reveal":
                await run(self.host, "confirm_elimination")
            else:
                await run(self.host, "end_battle")
        # "finished": nothing more to do


def public_state(server: Server, code: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/api/battles/{code}", timeout=10)
    assert response.status_code == 200
    state: dict[str, Any] = response.json()
    return state


async def test_a_screen_offline_for_90_s_of_updates_catches_up_exactly(tmp_path: Path) -> None:
    server = Server(f"sqlite:///{tmp_path / 'battles.sqlite3'}", tmp_path / "server.log", **HALL_LIMITS).start()
    try:
        battlers = [{"name": f"Battler {n}", "vision": f"Vision {n}"} for n in range(1, 25)]  # a long evening
        created = server.create_battle(
            title="Catch-up", battlers=battlers, rules={"vote_seconds": 3600, "turn_seconds": 3600, "ties": "host"}
        )
        code, urls = created["code"], [server.ws_url]
        host = await ReconnectingClient(urls, "host", code, created["host_token"]).start()
        screen = await ReconnectingClient(urls, "screen", code, created["screen_token"]).start()
        phones = [await ReconnectingClient(urls, "audience", code).start() for _ in range(7)]
        show = Show(host, phones)
        for _ in range(3):
            await show.step()
        await screen.wait_for(lambda battle: battle["version"] == host.seq)

        # The screen's network goes; the show goes on for SCREEN_MISSES updates.
        left_seq = screen.seq
        screen.drop(offline_s=600)
        while host.battle["phase"] != "finished" and (
            host.seq - left_seq < SCREEN_MISSES or show.revealed < SCREEN_MISSES_REVEALS
        ):
            await show.step()
        missed = host.seq - left_seq
        print(f"the screen missed {missed} updates and {show.revealed} reveals")
        assert missed >= SCREEN_MISSES
        assert show.revealed >= SCREEN_MISSES_REVEALS
        assert screen.connections == 1  # away all along
        screen.back()

        # Back: a fresh snapshot, at the battle's current version, equal to the server's state.
        async with asyncio.timeout(10):
            while screen.connections < 2:
                await asyncio.sleep(0.05)
        assert screen.close_codes == [1006]
        assert screen.seq == host.seq
        assert screen.battle == public_state(server, code)

        # And from there it follows every move, up to the next reveal.
        revealed_offline = show.revealed
        for _ in range(300):
            await show.step()
            await screen.wait_for(lambda battle: battle["version"] == host.seq)
            assert screen.battle == public_state(server, code)
            if show.revealed > revealed_offline or host.battle["phase"] == "finished":
                break
        assert show.revealed > revealed_offline
        revealed = [vote for rnd in host.battle["rounds"] for vote in rnd["votes"] if vote["status"] == "revealed"]
        assert revealed == [
            vote for rnd in screen.battle["rounds"] for vote in rnd["votes"] if vote["status"] == "revealed"
        ]
        assert revealed and all(sum(vote["totals"].values()) == len(phones) for vote in revealed)
        if screen.tally is not None and host.tally is not None:
            assert screen.tally["ballots"] == host.tally["ballots"]
        await close_all(host, screen, *phones)
    finally:
        server.stop()
