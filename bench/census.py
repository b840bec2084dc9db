"""Where a socket's memory goes (``python -m bench census``).

    .venv/bin/python -m bench census --sockets 2000

One engine in this process (uvicorn with the options ``battles serve`` gives it, one
worker, the embedded store in a temporary folder) and one load generator process
(``bench.loadgen``: picows phones on 127.0.0.1) that opens ``--sockets`` audience
sockets on one battle. Before and after the sockets join (and settle), the census
takes: ``tracemalloc``'s live allocations, grouped by the line that made them; the
garbage collector's objects, counted by type; and the process's RSS. Each figure is
divided by the sockets that joined, so the table says what one more phone costs and
where: uvicorn's protocol, the ASGI scope, Starlette's ``WebSocket``, the endpoint's
task, our ``Connection``, and the rest.

tracemalloc slows the server and counts only what Python allocates (not the kernel's
socket buffers, nor what C libraries allocate past Python's allocator); RSS counts
everything. Both are in the table (docs/performance.md, "Where a socket's memory goes").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvicorn

from battles.cli import uvicorn_options
from battles.settings import Settings
from bench.loadgen import raise_open_files
from bench.run import LoadGenerators, load_average, print_and_write
from bench.targets import free_port
from bench.wire import draft


def live_objects() -> tuple[Counter[str], Counter[str]]:
    """The collector's objects by type: how many, and their bytes (``sys.getsizeof``)."""
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for o in gc.get_objects():
        name = f"{type(o).__module__}.{type(o).__qualname__}"
        counts[name] += 1
        sizes[name] += sys.getsizeof(o)
    return counts, sizes


async def measure(options: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="battles-census-"))
    port = free_port()
    os.environ |= {
        "BATTLES_STORE": f"sqlite:///{folder / 'battles.sqlite3'}",
        "BATTLES_LOG_LEVEL": "warning",
        # Every phone comes from 127.0.0.1 (see bench.targets.Engine).
        "BATTLES_MINT_BURST": "1000000",
        "BATTLES_MINTS_PER_MINUTE": "1000000",
    }
    settings = Settings(host="127.0.0.1", port=port)  # from the environment above, as battles serve reads it
    server = uvicorn.Server(uvicorn.Config("battles.app:create_app", **uvicorn_options(settings)))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient() as client:
        body = draft().model_dump(mode="json")
        created = (await client.post(f"http://127.0.0.1:{port}/api/battles", json=body, timeout=10)).json()
    generators = LoadGenerators(1)
    url = f"ws://127.0.0.1:{port}"
    try:
        # A few first, so that what every socket's first join loads once is in "before".
        await generators.all(
            "connect", kind="engine", url=url, code=created["code"], count=20, concurrency=20, timeout=30
        )
        await asyncio.sleep(1)
        gc.collect()
        types_before, sizes_before = live_objects()  # before tracemalloc, so its counters are not counted
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        rss_before = psutil.Process().memory_info().rss
        joined = await generators.all(
            "connect", kind="engine", url=url, code=created["code"], count=options.sockets, concurrency=100, timeout=60
        )
        sockets = sum(j["connected"] for j in joined)
        await asyncio.sleep(options.settle)
        gc.collect()
        after = tracemalloc.take_snapshot()
        rss_after = psutil.Process().memory_info().rss
        types_after, sizes_after = live_objects()
        tracemalloc.stop()
        sites = after.compare_to(before, "lineno")
        root = str(Path(__file__).resolve().parents[1])
        return {
            "sockets": sockets,
            "load_average": load_average(),
            "rss_per_socket": (rss_after - rss_before) / max(sockets, 1),
            "traced_per_socket": sum(s.size_diff for s in sites) / max(sockets, 1),
            "sites": [
                {
                    "where": f"{s.traceback[0].filename.replace(root + '/', '').split('site-packages/')[-1]}:{s.traceback[0].lineno}",
                    "bytes_per_socket": s.size_diff / max(sockets, 1),
                    "blocks_per_socket": s.count_diff / max(sockets, 1),
                }
                for s in sites[: options.top]
            ],
            "types": [
                {
                    "type": name,
                    "per_socket": (types_after[name] - types_before[name]) / max(sockets, 1),
                    "bytes_per_socket": (sizes_after[name] - sizes_before[name]) / max(sockets, 1),
                }
                for name, _ in (sizes_after - sizes_before).most_common(options.top)
            ],
        }
    finally:
        await generators.all("close")
        await generators.quit()
        server.should_exit = True
        await serving


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['sockets']} audience sockets on one engine process (embedded store); load average "
        f"{figures['load_average']:.1f}. Per socket: RSS {figures['rss_per_socket'] / 1024:.1f} KiB, traced by "
        f"tracemalloc {figures['traced_per_socket'] / 1024:.1f} KiB.",
        "",
        "| allocated at | bytes per socket | blocks per socket |",
        "|---|---|---|",
        *(
            f"| `{s['where']}` | {s['bytes_per_socket']:,.0f} | {s['blocks_per_socket']:.1f} |"
            for s in figures["sites"]
        ),
        "",
        "| live objects of type | per socket | bytes per socket (`sys.getsizeof`) |",
        "|---|---|---|",
        *(f"| `{t['type']}` | {t['per_socket']:.2f} | {t['bytes_per_socket']:,.0f} |" for t in figures["types"]),
    ]
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench census", description=__doc__)
    parser.add_argument("--sockets", type=int, default=2000, help="audience sockets (default 2000)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between the joins and the census")
    parser.add_argument("--top", type=int, default=20, help="rows of each table (default 20)")
    parser.add_argument("--out", help="write the tables to this file, and the figures to FILE.json")
    options = parser.parse_args(argv)
    raise_open_files()
    figures = asyncio.run(measure(options))
    print_and_write(report(figures), figures, options.out)
    return 0
