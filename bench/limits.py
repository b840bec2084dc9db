"""What sharing the per-address limits through Redis costs a handshake (docs/performance.md).

    .venv/bin/python -m bench.limits                 20,000 handshakes per variant
    .venv/bin/python -m bench.limits --handshakes 2000

An audience handshake that mints a device id asks the per-address limits twice: the
failed-lookup guard looks at the address's budget (``take(spend=False)``) and the mint
spends a token (``take()``). This runs exactly that, through ``ratelimit.address_limits``,
for ``--handshakes`` handshakes from distinct addresses, ``--concurrency`` at a time (the
server's ``join_concurrency``), on this machine's own redis-server:

- ``memory``: the per-process limiter (what the embedded store uses);
- ``redis``: the limits shared through the Redis store;
- ``store reads``: the store reads every such handshake makes anyway on that Redis
  (``secrets``, ``load``, ``signing_key``), the baseline the shared limits add to.

It prints microseconds per handshake for each, and the ratios, all from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from battles import game
from battles.ratelimit import address_limits
from battles.settings import Settings
from battles.stores import open_store
from battles.stores.base import AddressLimits, Secrets, Store
from bench.targets import RedisServer
from bench.wire import draft

Handshake = Callable[[int], Awaitable[object]]


async def per_handshake_us(handshake: Handshake, count: int, concurrency: int) -> float:
    """Microseconds of wall time per handshake, ``concurrency`` in flight at a time."""
    started = time.perf_counter()
    for first in range(0, count, concurrency):
        await asyncio.gather(*(handshake(n) for n in range(first, min(count, first + concurrency))))
    return (time.perf_counter() - started) / count * 1e6


def limits_of(limits: AddressLimits) -> Handshake:
    async def handshake(n: int) -> None:
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        await limits.take(address, spend=False)  # the lookup guard looks
        await limits.take(address)  # the mint spends

    return handshake


def store_reads_of(store: Store, code: str) -> Handshake:
    async def handshake(n: int) -> None:
        await store.secrets(code)
        await store.load(code)
        await store.signing_key()

    return handshake


async def measure(url: str, count: int, concurrency: int, rounds: int) -> dict[str, float]:
    store = open_store(url)
    await store.start(lambda code, message: None)
    try:
        code = "BENCH1"
        await store.create(game.create(code, draft(), int(time.time() * 1000)), Secrets.mint())
        # The limits of the real handshake (the defaults), but big enough never to refuse.
        variants: dict[str, Handshake] = {
            "memory": limits_of(address_limits(open_store("sqlite://:memory:"), "bench", 300, 10**9, 10**6)),
            "redis": limits_of(address_limits(store, "bench", 300, 10**9, 10**6)),
            "store reads": store_reads_of(store, code),
        }
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(rounds):  # interleaved, best of rounds: the machine is shared
            for name, handshake in variants.items():
                best[name] = min(best[name], await per_handshake_us(handshake, count, concurrency))
        return best
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--handshakes", type=int, default=20_000)
    join_concurrency = Settings.model_fields["join_concurrency"].default
    parser.add_argument(
        "--concurrency", type=int, default=join_concurrency, help="handshakes in flight (join_concurrency)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is kept")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as folder:
        redis = RedisServer(Path(folder))
        try:
            us = asyncio.run(measure(redis.url, options.handshakes, options.concurrency, options.rounds))
        finally:
            redis.stop()
    print(f"{options.handshakes} handshakes, {options.concurrency} at a time, best of {options.rounds} rounds")
    print("| per handshake | µs |")
    print("| --- | ---: |")
    for name, value in us.items():
        print(f"| {name} | {value:.1f} |")
    print(f"shared limits / per-process limits: {us['redis'] / us['memory']:.1f}x")
    print(f"(store reads + shared limits) / (store reads + per-process limits): "
          f"{(us['store reads'] + us['redis']) / (us['store reads'] + us['memory']):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
