"""What a server process counts, and ``GET /metrics`` in the Prometheus text format.

The figures (all names start with ``battles_``):

    connections{role}                   sockets open now (a gauge)
    ballots_total{outcome}              ballots answered: counted, changed, unchanged,
                                        duplicate, or the refusal's reason
    reactions_total                     reactions counted
    submissions_total{outcome}          challenges and questions from phones: stored
                                        ``pending`` or ``held``, or the refusal's reason
    messages_out_total{path}            frames to sockets: ``direct`` (written at once,
                                        battles.fanout) or ``queued`` (behind a socket
                                        that is slow, or under another server)
    broadcast_lag_seconds               from a state change's publish to the moment its
                                        update was handed to every socket of this process
    catch_ups_total                     rooms brought to the stored version by the live
                                        tick, because an announcement did not arrive
    store_outages_total                 times the store was unreachable and came back
    store_outage_seconds_total          how long those outages lasted, summed
    redis_roundtrip_seconds{operation}  each store call on Redis, from send to answer
    gc_pause_seconds{generation}        each garbage collection: the process stands still

Several processes (``battles serve --workers N``): uvicorn's workers are separate
processes, and a scrape reaches one of them, so each worker writes its figures to
memory-mapped files in one directory (prometheus_client's multiprocess mode) and any
worker answers ``/metrics`` with the sum over all of them. ``battles serve`` makes a
fresh directory per invocation and sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start (prometheus_client picks its storage when it is first imported, so the variable
must be there by then); a fresh directory, because files left by an earlier run would
be added in. Counters of a worker that died stay in the sum, as they should (they
count what happened). The connection gauge counts live processes only
(``multiprocess_mode="livesum"``): a scrape first drops the gauge files of workers
that no longer exist, so the sockets of a killed worker stop counting at once.

Without ``PROMETHEUS_MULTIPROC_DIR`` (one process, as under the tests' app or an
embedding), the figures live in this process's default registry.
"""

from __future__ import annotations

import gc
import os
import re
import time
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

connections = Gauge("battles_connections", "Sockets open now, by role.", ["role"], multiprocess_mode="livesum")
ballots = Counter("battles_ballots", "Ballots answered, by outcome (a status or a refusal's reason).", ["outcome"])
reactions = Counter("battles_reactions", "Reactions counted.")
submissions = Counter(
    "battles_submissions",
    "Challenges and questions from phones, by outcome (pending, held, or a refusal's reason).",
    ["outcome"],
)
catch_ups = Counter("battles_catch_ups", "Rooms brought to the stored version because an announcement was lost.")
store_outages = Counter("battles_store_outages", "Times the store was unreachable and came back.")
store_outage_seconds = Counter("battles_store_outage_seconds", "How long the store outages lasted, summed.")


class BatchedCounter:
    """A counter bumped per frame, written to Prometheus in batches.

    A Prometheus counter write costs about a microsecond in multiprocess mode (a lock
    and a write to its memory-mapped file), as much as writing the frame itself on
    the fast path (battles.fanout). Frames are counted in a plain integer and moved
    to the counter by ``flush``, which the hub calls every live tick and a scrape
    calls before reading: at most one tick behind.
    """

    def __init__(self, counter: Counter) -> None:  # a Counter, or one labelled child of one
        self.counter, self.pending = counter, 0

    def add(self, amount: int = 1) -> None:
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, 0
            self.counter.inc(pending)


_messages_out = Counter("battles_messages_out", "Frames to sockets: written at once (direct) or queued.", ["path"])
frames_direct = BatchedCounter(_messages_out.labels("direct"))
frames_queued = BatchedCounter(_messages_out.labels("queued"))


def flush() -> None:
    """Move the batched counts to Prometheus (the hub calls it every live tick)."""
    frames_direct.flush()
    frames_queued.flush()


broadcast_lag = Histogram(
    "battles_broadcast_lag_seconds",
    "From a state change's publish to its update handed to every socket of the process.",
    buckets=_LATENCY_BUCKETS,
)
redis_roundtrip = Histogram(
    "battles_redis_roundtrip_seconds",
    "Each store call on Redis, from send to answer.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)

gc_pause = Histogram(
    "battles_gc_pause_seconds",
    "Garbage collections, by generation: the whole process waits.",
    ["generation"],
    buckets=_LATENCY_BUCKETS,
)


_watching_gc = False


def watch_gc() -> None:
    """Time every garbage collection of this process (``battles_gc_pause_seconds``), once."""
    global _watching_gc
    if _watching_gc:
        return
    _watching_gc = True
    started: list[float] = [0.0]

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            gc_pause.labels(str(info["generation"])).observe(time.perf_counter() - started[0])

    gc.callbacks.append(on_collection)


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")


def render() -> bytes:
    """The text of ``GET /metrics``: this process's figures, or all workers' summed."""
    flush()
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY)
    _forget_dead_workers(Path(MULTIPROCESS_DIR))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


async def metrics_page(request: Request) -> Response:
    """``GET /metrics``: Prometheus text, summed over the workers of this ``battles serve``."""
    return Response(render(), media_type=CONTENT_TYPE)


def _forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of workers that are gone (killed, or restarted by uvicorn)."""
    for file in directory.glob("gauge_live*.db"):
        found = _LIVE_GAUGE_FILE.match(file.name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, under another user
