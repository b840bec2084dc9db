"""Where the battles are kept: ``open_store`` picks the store that a URL names.

    redis://HOST:PORT/DB, rediss://...       RedisStore: any number of processes and machines
    redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]
                                             RedisStore on the primary that these Sentinels
                                             name, following it through failovers
    sqlite:///battles.db                     EmbeddedStore on battles.db, relative to the
                                             working directory
    sqlite:////var/lib/battles/battles.db    EmbeddedStore on an absolute path
    sqlite://:memory:                        EmbeddedStore in memory: gone when the process ends

The SQLite spelling is SQLAlchemy's: what follows ``sqlite:///`` is the path, so
``f"sqlite:///{path}"`` is right for relative and absolute paths alike.
"""

from __future__ import annotations

from battles.settings import Settings
from battles.stores.base import Store
from battles.stores.embedded import EmbeddedStore
from battles.stores.redis import SENTINEL_SCHEME, RedisStore

__all__ = ["EmbeddedStore", "RedisStore", "Store", "open_store", "shared", "store_for"]

_MEMORY = "sqlite://:memory:"
_FILE = "sqlite:///"


_REDIS = ("redis://", "rediss://", SENTINEL_SCHEME)


def shared(url: str) -> bool:
    """Whether several processes can share the store ``url`` names."""
    return url.startswith(_REDIS)


def open_store(
    url: str, *, presence_ttl_ms: int = 10_000, wait_replicas: int = 0, wait_timeout_ms: int = 1000
) -> Store:
    """The store ``url`` names (see the module docstring), not started yet.

    ``presence_ttl_ms``: a process's connection counts are dropped when it has not
    reported them for this long (it died, or lost the store). ``wait_replicas`` and
    ``wait_timeout_ms``: Redis only, see ``RedisStore``.
    """
    if shared(url):
        return RedisStore(
            url, presence_ttl_ms=presence_ttl_ms, wait_replicas=wait_replicas, wait_timeout_ms=wait_timeout_ms
        )
    if wait_replicas:
        raise ValueError("wait_replicas needs the Redis store: the embedded store has no replicas")
    if url == _MEMORY:
        return EmbeddedStore(":memory:", presence_ttl_ms=presence_ttl_ms)
    if url.startswith(_FILE) and len(url) > len(_FILE):
        return EmbeddedStore(url[len(_FILE) :], presence_ttl_ms=presence_ttl_ms)
    raise ValueError(
        f"unsupported store URL {url!r}: use redis://HOST:PORT/DB, rediss://..., "
        "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB], sqlite:///PATH (sqlite:////ABSOLUTE/PATH) or sqlite://:memory:"
    )


def store_for(settings: Settings) -> Store:
    """The store the settings name, with their options."""
    return open_store(
        settings.store,
        presence_ttl_ms=settings.presence_ttl_ms,
        wait_replicas=settings.wait_replicas,
        wait_timeout_ms=settings.wait_timeout_ms,
    )
