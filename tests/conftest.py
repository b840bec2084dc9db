"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from battles.stores import open_store
from battles.stores.base import Store
from tests.inprocess import InProcess
from tests.servers import REDIS_SERVER, RedisServer, Server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Never the Redis at 127.0.0.1:6379: the tests own theirs."""
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.fail(f"{REDIS_SERVER} is missing: .ci/run installs it (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["embedded", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of fresh, empty backing data for each kind of store."""
    if request.param == "embedded":
        return f"sqlite:///{tmp_path / 'battles.sqlite3'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    server.start()  # in case a test before this one stopped it and failed
    server.flush()
    return server.url


@pytest.fixture
def published() -> list[tuple[str, bytes]]:
    """What the ``store`` fixture's listener was given, in order."""
    return []


@pytest.fixture
async def store(store_url: str, published: list[tuple[str, bytes]]) -> AsyncIterator[Store]:
    """A started store of each kind, its listener appending to ``published``."""
    opened = open_store(store_url)
    await opened.start(lambda code, message: published.append((code, message)))
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on the embedded store, shared by one test module."""
    folder = tmp_path_factory.mktemp("server")
    running = Server(f"sqlite:///{folder / 'battles.sqlite3'}", folder / "server.log").start()
    yield running
    running.stop()


@pytest.fixture
def two_servers(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two server processes sharing one real Redis."""
    servers = [Server(redis_server.url, tmp_path / f"server-{n}.log").start() for n in (1, 2)]
    yield servers[0], servers[1]
    for running in servers:
        running.stop()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcess]:
    """The app in this process (tests.inprocess), on a fresh embedded store."""
    with InProcess(f"sqlite:///{tmp_path / 'battles.sqlite3'}") as running:
        yield running


@pytest.fixture
def app_on_each_store(store_url: str) -> Iterator[InProcess]:
    """The app in this process on fresh backing data of each kind of store."""
    with InProcess(store_url) as running:
        yield running
