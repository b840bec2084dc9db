"""The garbage collector of a process that holds thousands of long-lived sockets
(docs/performance.md, What changed in the engine)."""

from __future__ import annotations

import gc

from battles import metrics

# Middle-generation collections between two full ones (Python's default: 10); see
# hold_many_sockets.
GC_FULL_EVERY = 1000


def hold_many_sockets() -> None:
    """Tune this process's garbage collector for thousands of long-lived sockets.

    Each open socket is a few hundred objects the collector tracks, and a full
    collection walks all of them: at 2,000 to 5,000 sockets per process, measured
    pauses of 0.2 to 2.5 s (docs/performance.md). They came when a hall joins or comes
    back after a restart, exactly when every phone waits, and a pause longer than the
    store's timeout even looked like Redis going away. So the objects of the imports
    are frozen out of every collection (``gc.freeze``), and a full collection is tried
    after ``GC_FULL_EVERY`` middle ones instead of 10: a hundred times less often.
    Young and middle collections, which are cheap, still take most cycles away.
    ``battles_gc_pause_seconds`` shows the pauses that are left.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GC_FULL_EVERY)
    metrics.watch_gc()
