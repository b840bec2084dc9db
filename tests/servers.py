"""Real server processes for the tests, each on a free port: `battles serve`, killable and
restartable, and redis-server (and Sentinel), which a test may also kill, freeze and thaw."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.clients import Client
from tests.helpers import with_tokens

# Fast loops so the tests see deadlines and live figures quickly; each is a real setting.
TEST_SETTINGS = {
    "BATTLES_TIMER_POLL_MS": "50",
    "BATTLES_LIVE_TICK_MS": "50",
    "BATTLES_AUDIENCE_TICK_MS": "100",
    "BATTLES_PRESENCE_INTERVAL_MS": "200",
    "BATTLES_PRESENCE_TTL_MS": "2000",
    "BATTLES_REACTION_COOLDOWN_MS": "100",
}


# The addresses Server.create_battle speaks from: the shared address space (RFC 6598),
# which no other test uses.
_creators = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortTaken(Exception):
    pass


class Server:
    """One `battles serve` process (with ``workers`` uvicorn workers)."""

    def __init__(self, store: str, log_path: Path, workers: int = 1, **settings: Any) -> None:
        self.store, self.log_path, self.workers = store, log_path, workers
        self.port = free_port()
        self.env = {**os.environ, **TEST_SETTINGS, **{f"BATTLES_{k.upper()}": str(v) for k, v in settings.items()}}
        self.process: subprocess.Popen[bytes] | None = None
        self.started = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> Server:
        """Start (or restart, on the same port) and wait until /healthz answers.

        A first start whose free port was taken in the meantime (by another test's
        client socket, say) tries again on a new port; a restart keeps its port,
        since its clients reconnect to it.
        """
        for _ in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                if self.started:
                    raise
                self.port = free_port()
        raise RuntimeError("no free port after three tries")

    def _start(self, timeout: float) -> Server:
        logged = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            sys.executable, "-m", "battles.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--store", self.store, "--workers", str(self.workers),
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log_path.read_text()[logged:]
                if "address already in use" in output:
                    raise PortTaken(self.port)
                raise RuntimeError(f"server exited: {output[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    self.started = True
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer in {timeout} s: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9 the whole process group (uvicorn's workers too)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    async def connect(self, role: str, code: str, token: str | None = None, device: str | None = None) -> Client:
        """A client of this server (as ``tests.inprocess.InProcess.connect`` of the app in
        the test process)."""
        return await Client.connect(self.ws_url, role, code, token, device)

    def create_battle(self, **draft: Any) -> dict[str, Any]:
        """Create a battle, each from an address of its own (named through the trusted
        proxy header), so tests that create many do not share the per-address budget
        on new battles; tests of that budget post themselves."""
        n = next(_creators)
        address = f"100.64.{n // 256 % 256}.{n % 256}"
        response = httpx.post(f"{self.url}/api/battles", json=draft, timeout=10, headers={"x-forwarded-for": address})
        assert response.status_code == 201, response.text
        return with_tokens(response.json())


REDIS_SERVER = "/usr/bin/redis-server"


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
        with open(self.directory / "redis.log", "ab") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
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
            f"sentinel down-after-milliseconds {self.service} 3000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
            f"sentinel parallel-syncs {self.service} 2\n"
        )
        return [REDIS_SERVER, str(config), "--sentinel"]


def server_on_store(request: pytest.FixtureRequest, folder: Path, **settings: Any) -> Server:
    """A real server on the store a fixture's ``request.param`` names: ``embedded`` (a file in
    ``folder``) or ``redis`` (the tests' own Redis server, the ``redis_server`` fixture)."""
    if request.param == "embedded":
        url = f"sqlite:///{folder / 'battles.sqlite3'}"
    else:
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        redis_server.start()
        url = redis_server.url
    return Server(url, folder / "server.log", **settings).start()
