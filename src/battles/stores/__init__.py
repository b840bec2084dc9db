"""Where the battles are kept: ``open_store`` picks the store that a URL names.

    redis://HOST:PORT/DB, rediss://...       RedisStore: any number of processes and machines
    sqlite:///battles.db                     EmbeddedStore on battles.db, relative to the
                                             working directory
    sqlite:////var/lib/battles/battles.db    EmbeddedStore on an absolute path
    sqlite://:memory:                        EmbeddedStore in memory: gone when the process ends

The SQLite spelling is SQLAlchemy's: what follows ``sqlite:///`` is the path, so
``f"sqlite:///{path}"`` is right for relative and absolute paths alike.
"""

from __future__ import annotations

from battles.stores.base import Store
from battles.stores.embedded import EmbeddedStore
from battles.stores.redis import RedisStore

__all__ = ["EmbeddedStore", "RedisStore", "Store", "open_store"]

_MEMORY = "sqlite://:memory:"
_FILE = "sqlite:///"


def open_store(url: str, *, presence_ttl_ms: int = 10_000) -> Store:
    """The store ``url`` names (see the module docstring), not started yet.

    ``presence_ttl_ms``: a process's connection counts are dropped when it has not
    reported them for this long (it died, or lost the store).
    """
    if url.startswith(("redis://", "rediss://")):
        return RedisStore(url, presence_ttl_ms=presence_ttl_ms)
    if url == _MEMORY:
        return EmbeddedStore(":memory:", presence_ttl_ms=presence_ttl_ms)
    if url.startswith(_FILE) and len(url) > len(_FILE):
        return EmbeddedStore(url[len(_FILE) :], presence_ttl_ms=presence_ttl_ms)
    raise ValueError(
        f"unsupported store URL {url!r}: use redis://HOST:PORT/DB, rediss://..., "
        "sqlite:///PATH (sqlite:////ABSOLUTE/PATH) or sqlite://:memory:"
    )
