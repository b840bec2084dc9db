"""Real server processes for the tests: `battles serve` on a free port, killable and restartable."""

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
        self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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

    def create_battle(self, **draft: Any) -> dict[str, Any]:
        """Create a battle, each from an address of its own (named through the trusted
        proxy header), so tests that create many do not share the per-address budget
        on new battles; tests of that budget post themselves."""
        n = next(_creators)
        address = f"100.64.{n // 256 % 256}.{n % 256}"
        response = httpx.post(f"{self.url}/api/battles", json=draft, timeout=10, headers={"x-forwarded-for": address})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        created["host_token"] = created["links"]["host"].split("#", 1)[1]
        created["screen_token"] = created["links"]["screen"].split("#", 1)[1]
        created["cohost_token"] = created["links"]["cohost"].split("#", 1)[1]
        return created
