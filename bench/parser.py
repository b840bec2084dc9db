"""hiredis or redis-py's own reply parser, on the Redis store's hot path, in one run.

    .venv/bin/python -m bench.parser                  5 rounds of 20,000 ballots and reads
    .venv/bin/python -m bench.parser --ballots 5000   shorter

It starts its own redis-server on a free port. Each round runs the same workload in
two fresh child processes, one with hiredis and one with its import blocked (redis-py
then parses replies in Python), in alternating order: a battle with an open vote,
then ``--ballots`` ballots through ``RedisStore.cast_ballot``, ``--concurrency`` at a
time (batched into pipelines, as a hall's are), then as many reads as a join and a
live tick make (``load`` and ``tally``). It prints each parser's best ballots and
reads per second over the rounds, and the ratio hiredis / Python.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


async def workload(url: str, ballots: int, concurrency: int, wait_replicas: int = 0) -> dict[str, Any]:
    """Ballots, then reads, through a ``RedisStore`` on ``url``: their rates, and each
    ballot's latency (p50, p99, in ms) from the call to its acknowledgement."""
    # Imported here: the parent may not import redis before a child decides on hiredis.
    import redis.utils

    from battles import commands as c
    from battles import game
    from battles.game import Context
    from battles.model import BattleDraft, BattlerDraft
    from battles.stores import RedisStore
    from battles.stores.base import Secrets

    store = RedisStore(url, wait_replicas=wait_replicas)
    await store.start(lambda code, message: None)
    try:
        now = int(time.time() * 1000)
        code = f"P{int(time.monotonic_ns()) % 10**8:08d}"
        draft = BattleDraft(title="Parser", battlers=[BattlerDraft(name=f"B{n}", vision="V") for n in range(4)])
        battle = game.create(code, draft, now)
        assert await store.create(battle, Secrets.mint())
        command: Any = c.StartRound(type="start_round")
        while battle.open_vote is None:
            battle = game.apply(battle, command, Context(now_ms=now)).battle
            assert await store.commit(battle, b"")  # nobody listens: the bench times ballots
            command = c.OpenVote(type="open_vote") if battle.phase == "vote" else c.Next(type="next")
        vote = battle.open_vote
        assert vote is not None
        choices = list(vote.choices)

        latencies: list[float] = []

        async def cast(start: int) -> None:
            for n in range(start, ballots, concurrency):
                began = time.perf_counter()
                await store.cast_ballot(code, vote.id, f"device-{n}", choices[n % len(choices)], f"ballot-{n:08d}", now)
                latencies.append(time.perf_counter() - began)

        async def read(start: int) -> None:
            for _ in range(start, ballots, concurrency):
                await store.load(code)
                await store.tally(code, vote.id)

        figures: dict[str, Any] = {"hiredis": redis.utils.HIREDIS_AVAILABLE}
        for name, step in (("ballots_per_s", cast), ("reads_per_s", read)):
            began = time.perf_counter()
            await asyncio.gather(*(step(n) for n in range(concurrency)))
            figures[name] = ballots / (time.perf_counter() - began)
        latencies.sort()
        figures["p50_ms"] = 1000 * latencies[len(latencies) // 2]
        figures["p99_ms"] = 1000 * latencies[int(len(latencies) * 0.99)]
        tally = await store.tally(code, vote.id)
        assert tally.ballots == ballots, tally
        return figures
    finally:
        await store.close()


def child(arguments: argparse.Namespace) -> int:
    if arguments.no_hiredis:
        sys.modules["hiredis"] = None  # type: ignore[assignment]  # makes `import hiredis` fail
    figures = asyncio.run(workload(arguments.redis, arguments.ballots, arguments.concurrency))
    print(json.dumps(figures))
    return 0


def run_child(url: str, hiredis: bool, arguments: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.parser", "--child", "--redis", url,
               "--ballots", str(arguments.ballots), "--concurrency", str(arguments.concurrency)]  # fmt: skip
    if not hiredis:
        command.append("--no-hiredis")
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
    figures: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    if figures["hiredis"] != hiredis:
        raise RuntimeError(
            f"asked for hiredis={hiredis}, the child ran with {figures['hiredis']}: is hiredis installed?"
        )
    return figures


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parser", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-hiredis", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        return child(arguments)

    from bench.targets import RedisServer

    with tempfile.TemporaryDirectory(prefix="bench-parser-") as folder:
        redis_server = RedisServer(Path(folder))
        try:
            best: dict[bool, dict[str, float]] = {True: {}, False: {}}
            for round_number in range(arguments.rounds):
                for hiredis in (True, False) if round_number % 2 == 0 else (False, True):
                    figures = run_child(redis_server.url, hiredis, arguments)
                    redis_server.client.flushall()
                    for name in ("ballots_per_s", "reads_per_s"):
                        best[hiredis][name] = max(best[hiredis].get(name, 0.0), figures[name])
        finally:
            redis_server.stop()
    print(
        f"{arguments.ballots} ballots and reads, {arguments.concurrency} at a time, best of {arguments.rounds} rounds:"
    )
    for name in ("ballots_per_s", "reads_per_s"):
        with_it, without = best[True][name], best[False][name]
        print(f"  {name:14} hiredis {with_it:9.0f}   Python parser {without:9.0f}   ratio {with_it / without:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
