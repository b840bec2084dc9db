"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from battles.stores import open_store
from battles.stores.base import Store
from tests.servers import Server

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A real redis-server of the tests' own, on a free port, that a test may kill and
    restart (same port, empty: it keeps nothing on disk), or freeze and thaw.

    ``persistence``: its redis-server options for keeping data; by default none, so a
    restart starts empty. With for example ``("--appendonly", "yes", "--appendfsync",
    "always")`` a restart reloads what ``directory`` holds.
    """

    def __init__(
        self, directory: Path, persistence: tuple[str, ...] = ("--appendonly", "no"), options: tuple[str, ...] = ()
    ) -> None:
        self.directory = directory
        self.persistence = persistence
        self.options = options  # any other redis-server options, e.g. ("--replicaof", HOST, PORT)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", *self.persistence, *self.options, "--dir", str(self.directory)]  # fmt: skip

    def start(self) -> None:
        if self._process is not None:
            return
        log = open(self.directory / "redis.log", "ab")
        self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"redis-server did not come up on port {self.port}; see {self.directory / 'redis.log'}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Kill it, as a crash would: no goodbye to its clients."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait()
        self._process = None

    def freeze(self) -> None:
        """Stop it answering while its connections stay open, as a network partition or
        a hung host would: only timeouts can tell."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def flush(self) -> None:
        with redis.Redis(port=self.port) as client:
            client.flushall()


class SentinelServer(RedisServer):
    """A real ``redis-server --sentinel`` watching ``primary`` as ``service``, with a
    config file of its own (Sentinel rewrites it) and short failover timings."""

    def __init__(self, directory: Path, primary: RedisServer, service: str, quorum: int = 2) -> None:
        super().__init__(directory)
        self.primary, self.service, self.quorum = primary, service, quorum

    def command(self) -> list[str]:
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
            f"sentinel parallel-syncs {self.service} 2\n"
        )
        return [REDIS_SERVER, str(config), "--sentinel"]


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
