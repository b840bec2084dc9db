"""What ``wait_replicas`` costs: the Redis store's ballots with and without WAIT, in one run.

    .venv/bin/python -m bench.replication                  5 rounds of 20,000 ballots
    .venv/bin/python -m bench.replication --ballots 5000   shorter

It starts its own primary and one replica (on loopback: the replica's round trip is the
least it can be; on a LAN add the network's). Each round runs ``bench.parser``'s
workload twice on the primary, with ``wait_replicas`` 0 and 1 in alternating order:
``--ballots`` ballots through ``RedisStore.cast_ballot``, ``--concurrency`` at a time.
It prints each setting's best ballots per second and its ballot latency (p50, p99) in
the same round, and the ratios (docs/operations.md, "Acknowledged means replicated").
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.parser import workload
from bench.targets import RedisServer, free_port


class Replica:
    """A redis-server replicating ``primary``, on a free port, in sync when made."""

    def __init__(self, folder: Path, primary: RedisServer) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder), "--replicaof", "127.0.0.1", str(primary.port)],
            stdout=(folder / "replica.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    if client.info("replication").get("master_link_status") == "up":
                        return
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica did not catch up with its primary")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replication", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    best: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as folder:
        (Path(folder) / "primary").mkdir()
        (Path(folder) / "replica").mkdir()
        primary = RedisServer(Path(folder) / "primary")
        replica = Replica(Path(folder) / "replica", primary)
        try:
            for round_number in range(arguments.rounds):
                for wait in (0, 1) if round_number % 2 == 0 else (1, 0):
                    figures = asyncio.run(workload(primary.url, arguments.ballots, arguments.concurrency, wait))
                    primary.client.flushall()
                    if figures["ballots_per_s"] > best.get(wait, {}).get("ballots_per_s", 0.0):
                        best[wait] = figures
        finally:
            replica.stop()
            primary.stop()
    print(
        f"{arguments.ballots} ballots, {arguments.concurrency} at a time, one replica on loopback, best of {arguments.rounds} rounds:"
    )
    for wait in (0, 1):
        figures = best[wait]
        print(f"  wait_replicas {wait}: {figures['ballots_per_s']:7.0f} ballots/s, "
              f"p50 {figures['p50_ms']:6.1f} ms, p99 {figures['p99_ms']:6.1f} ms")  # fmt: skip
    ratio = best[1]["ballots_per_s"] / best[0]["ballots_per_s"]
    print(f"  ratio (1 / 0): {ratio:.2f} of the ballots per second, p50 x{best[1]['p50_ms'] / best[0]['p50_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
