"""GET /metrics of a real `battles serve --workers 2` on a real Redis, scraped around real traffic."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.clients import Client
from tests.helpers import FOUR, to_the_vote
from tests.servers import Server

PHONES = 12


@pytest.fixture
def cluster(redis_server: Any, tmp_path: Path) -> Iterator[Server]:
    redis_server.start()
    running = Server(redis_server.url, tmp_path / "server.log", workers=2).start()
    yield running
    running.stop()


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels."""
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid"))
            samples[(sample.name, labels)] = samples.get((sample.name, labels), 0.0) + sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def busiest_worker(server: Server) -> int:
    """The uvicorn worker holding the most sockets (the kernel hands each accept to one)."""
    assert server.process is not None
    found: list[int] = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        found += [int(pid) for pid in (task / "children").read_text().split()]
    workers = [pid for pid in found if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]

    def sockets(pid: int) -> int:
        count = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed meanwhile
                count += os.readlink(fd).startswith("socket:")
        return count

    return max(workers, key=sockets)


async def gauge_reaches(server: Server, role: str, count: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while value(scrape(server), "battles_connections", role=role) != count:
            await asyncio.sleep(0.1)


async def test_the_figures_move_with_the_traffic_summed_over_both_workers(cluster: Server) -> None:
    before = scrape(cluster)
    created = cluster.create_battle(title="Counted", battlers=FOUR, rules={"vote_seconds": 300})
    code = created["code"]
    host = await Client.connect(cluster.ws_url, "host", code, created["host_token"])
    screen = await Client.connect(cluster.ws_url, "screen", code, created["screen_token"])
    phones = list(await asyncio.gather(*(Client.connect(cluster.ws_url, "audience", code) for _ in range(PHONES))))
    # The sockets sit on both workers; whichever answers the scrape counts them all.
    await gauge_reaches(cluster, "audience", PHONES)
    await gauge_reaches(cluster, "screen", 1)

    vote_id = await to_the_vote(host)
    replies = await asyncio.gather(*(phone.vote(vote_id, "b2") for phone in phones))
    assert {reply["status"] for reply in replies} == {"counted"}
    await phones[0].vote(vote_id, "b3")
    refused = await phones[1].vote("r9v9", "b1")
    assert refused["reason"] == "wrong_vote"
    await screen.expect("tally", lambda m: m["ballots"] == PHONES)
    await asyncio.sleep(0.3)  # a live tick: the batched frame counts reach Prometheus

    after = scrape(cluster)
    assert (
        value(after, "battles_ballots_total", outcome="counted")
        - value(before, "battles_ballots_total", outcome="counted")
        == PHONES
    )
    assert (
        value(after, "battles_ballots_total", outcome="changed")
        - value(before, "battles_ballots_total", outcome="changed")
        == 1
    )
    assert (
        value(after, "battles_ballots_total", outcome="wrong_vote")
        - value(before, "battles_ballots_total", outcome="wrong_vote")
        == 1
    )
    # Frames went out, written straight to the sockets (battles.fanout) under `battles serve`.
    direct = value(after, "battles_messages_out_total", path="direct") - value(
        before, "battles_messages_out_total", path="direct"
    )
    assert direct >= 2 * (PHONES + 2) + PHONES  # welcome and snapshot each, and the ballots' replies
    # Every host command (seven to the open vote) was published, and sent on by each
    # worker that holds sockets of the battle: its lag was measured there.
    assert (
        value(after, "battles_broadcast_lag_seconds_count") - value(before, "battles_broadcast_lag_seconds_count") >= 7
    )
    assert value(after, "battles_broadcast_lag_seconds_sum") > value(before, "battles_broadcast_lag_seconds_sum")
    ballots_timed = value(after, "battles_redis_roundtrip_seconds_count", operation="cast_ballot")
    assert ballots_timed - value(before, "battles_redis_roundtrip_seconds_count", operation="cast_ballot") == PHONES + 2
    assert value(after, "battles_redis_roundtrip_seconds_bucket", operation="cast_ballot", le="+Inf") == ballots_timed

    for phone in phones[: PHONES // 2]:
        await phone.close()
    await gauge_reaches(cluster, "audience", PHONES - PHONES // 2)
    for client in [host, screen, *phones[PHONES // 2 :]]:
        await client.close()
    await gauge_reaches(cluster, "audience", 0)


async def test_the_sockets_of_a_killed_worker_stop_counting(cluster: Server) -> None:
    created = cluster.create_battle(title="Crash", battlers=FOUR)
    phones = list(
        await asyncio.gather(*(Client.connect(cluster.ws_url, "audience", created["code"]) for _ in range(PHONES)))
    )
    await gauge_reaches(cluster, "audience", PHONES)
    os.kill(busiest_worker(cluster), signal.SIGKILL)
    await asyncio.sleep(0.5)
    alive = [phone for phone in phones if not phone.reader.done()]
    assert len(alive) < PHONES
    # The dead worker's gauge file is dropped at the next scrape: only live sockets count.
    await gauge_reaches(cluster, "audience", len(alive))
    for phone in alive:
        await phone.close()


async def test_a_redis_outage_is_logged_once_at_each_end_and_counted(redis_server: Any, tmp_path: Path) -> None:
    # Before: the timer and live-figure loops logged a warning on every tick of the outage.
    redis_server.start()
    server = Server(redis_server.url, tmp_path / "server.log").start()
    try:
        created = server.create_battle(title="Outage", battlers=FOUR)
        screen = await Client.connect(server.ws_url, "screen", created["code"], created["screen_token"])
        redis_server.stop()
        await screen.expect("service", lambda m: m["store"] == "unavailable")
        await asyncio.sleep(1.5)  # 30 live ticks and timer polls at the tests' settings
        redis_server.start()
        await screen.expect("service", lambda m: m["store"] == "ok", timeout=15)
        log = (tmp_path / "server.log").read_text()
        warnings = [line for line in log.splitlines() if "store_unavailable" in line or "store cannot" in line]
        assert len(warnings) == 1, warnings
        assert log.count("the store is reachable again after") == 1
        samples = scrape(server)
        assert samples[("battles_store_outages_total", ())] == 1
        assert samples[("battles_store_outage_seconds_total", ())] >= 1.5
        await screen.close()
    finally:
        redis_server.start()
        server.stop()
