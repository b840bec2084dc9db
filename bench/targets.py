"""The three servers under test, each as two processes on one port sharing one Redis,
and the host and screen sockets the runner drives them with.

- ``engine``: ``battles serve --workers 2 --store redis://...`` (uvicorn's workers);
- ``b0``: two ``python -m bench.bare`` processes on one port (SO_REUSEPORT);
- ``p1``: ``uvicorn bench.sio:create_app --workers 2``.

Every server runs as its own process group, so the runner can stop all of it, and
kill one worker to start a reconnect storm (uvicorn's supervisor starts a new worker;
the runner starts B0's killed process again itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis
from websockets.asyncio.client import ClientConnection, connect

from bench.wire import BASELINE_VOTE, CODE, Kind, draft, encode, follow, text

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def tree(pid: int) -> list[int]:
    pids = [pid]
    for child in children(pid):
        pids += tree(child)
    return pids


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def open_sockets(pid: int) -> int:
    count = 0
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                count += os.readlink(fd).startswith("socket:")
    return count


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


class RedisServer:
    """The benchmark's own redis-server on a free port: never the one on 6379."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder), "--maxclients", "10000"],
            stdout=(folder / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.client = redis.Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if self.client.ping():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        self.process.kill()
        self.process.wait()


class Control:
    """A host or screen socket of the runner: requests with replies, and tallies seen."""

    def __init__(self, kind: Kind, socket: ClientConnection) -> None:
        self.kind, self.socket = kind, socket
        self.seq = 0
        self.battle: dict[str, Any] = {}
        self.tallies: list[tuple[float, int]] = []
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, kind: Kind, url: str, role: str, code: str, token: str | None = None) -> Control:
        if kind == "p1":
            ws = await connect(f"{url}/socket.io/?EIO=4&transport=websocket&role={role}&code={code}", compression=None)
            await ws.recv()  # engine.io open
            await ws.send("40")
        else:
            offer = ["battles.v1"] + ([f"auth.{token}"] if token else [])
            ws = await connect(f"{url}/ws/{role}/{code}", subprotocols=offer, compression=None)  # type: ignore[arg-type]
        control = cls(kind, ws)
        await control.wait(lambda: bool(control.battle))
        return control

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.socket:
                now = time.time()
                text = str(raw)
                if self.kind == "p1":
                    if text == "2":
                        await self.socket.send("3")
                        continue
                    if text.startswith("43"):
                        digits = "".join(itertools.takewhile(str.isdigit, text[2:]))
                        self._reply(digits, json.loads(text[2 + len(digits) :])[0])
                        continue
                    if not text.startswith("42["):
                        continue
                    message = json.loads(text[2:])[1]
                else:
                    message = json.loads(text)
                kind = message.get("type")
                if kind == "snapshot" or (kind == "update" and message["seq"] > self.seq):
                    battle = follow(self.seq, self.battle, message)
                    if battle is not None:
                        self.seq, self.battle = message["seq"], battle
                    elif self.kind == "engine":
                        await self.socket.send(encode({"type": "resync"}))  # a gap: the whole view again
                elif kind == "tally":
                    self.tallies.append((now, int(message["ballots"])))
                elif kind in ("ack", "ballot", "error") and message.get("id"):
                    self._reply(str(message["id"]), message)

    def _reply(self, request_id: str, message: dict[str, Any]) -> None:
        waiting = self._waiting.pop(request_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(message)

    async def request(self, message: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        number = str(next(self._ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        body = {**message, "id": number}
        if self.kind == "p1":
            event = "open_vote" if message["type"] == "open_vote" else "next"
            await self.socket.send(f'42{number}["{event}",{encode(body)}]')
        else:
            await self.socket.send(encode(body))
        return await asyncio.wait_for(future, timeout)

    async def wait(self, condition: Any, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(Exception):
            await self.socket.close()


class Target:
    """One server under test: start, drive, read its store, kill a worker, stop."""

    kind: Kind

    def __init__(self, redis_server: RedisServer, folder: Path, payload: Path) -> None:
        self.redis, self.folder, self.payload = redis_server, folder, payload
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.code = CODE
        self.processes: list[subprocess.Popen[bytes]] = []
        self.host: Control | None = None
        self.screen: Control | None = None
        self.vote_id = BASELINE_VOTE

    # --- processes ------------------------------------------------------------------------

    def spawn(self, command: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{self.kind}-{name}.log").open("ab")
        return subprocess.Popen(
            command, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self) -> None:
        raise NotImplementedError

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"{self.kind} server exited; see {self.folder}")
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} server did not come up in {timeout} s; see {self.folder}")

    def ready(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False

    def pids(self) -> list[int]:
        return [pid for p in self.processes for pid in tree(p.pid)]

    def workers(self) -> list[int]:
        """The processes that hold sockets."""
        return [p.pid for p in self.processes]

    def kill_one(self) -> int:
        victim = self.workers()[0]
        os.kill(victim, signal.SIGKILL)
        return victim

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    # --- the show -------------------------------------------------------------------------

    async def setup(self) -> None:
        self.host = await Control.open(self.kind, self.url, "host", self.code)
        self.screen = await Control.open(self.kind, self.url, "screen", self.code)

    async def step(self, kind: str) -> tuple[float, int]:
        """A host action that changes the phase: when it was sent, and the new seq."""
        assert self.host is not None
        sent = time.time()
        reply = await self.host.request({"type": kind, "seq": self.host.seq})
        if reply.get("type") != "ack":
            raise RuntimeError(f"{self.kind}: {kind} refused: {reply}")
        return sent, int(reply["seq"])

    async def open_vote(self) -> tuple[float, int]:
        return await self.step("open_vote")

    def stored_choices(self) -> Counter[str]:
        """What the store counts per choice in the vote: the other side of the loss check."""
        values = self.redis.client.hvals(f"{self.kind}:ballots:{self.vote_id}")
        return Counter(text(v) for v in values)

    def lose(self, count: int) -> None:
        """Fault injection for the bench's own test: drop ``count`` stored ballots."""
        key = f"{self.kind}:ballots:{self.vote_id}"
        devices = self.redis.client.hkeys(key)[:count]
        if devices:
            self.redis.client.hdel(key, *devices)

    async def metrics(self) -> dict[str, Any]:
        """The server's own figures, where it has them (the engine's /metrics)."""
        return {}

    async def close(self) -> None:
        for control in (self.host, self.screen):
            if control is not None:
                await control.close()


class Engine(Target):
    kind: Kind = "engine"

    def start(self) -> None:
        # Every phone of the bench comes from 127.0.0.1: lift the per-address limit on new
        # device ids (battles.ratelimit), which is there to stop scripts, not halls.
        env = {"BATTLES_LOG_LEVEL": "warning", "BATTLES_MINT_BURST": "1000000", "BATTLES_MINTS_PER_MINUTE": "1000000"}
        command = [sys.executable, "-m", "battles.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--store", self.redis.url, "--workers", "2"]  # fmt: skip
        self.processes = [self.spawn(command, env, "serve")]
        self.wait_ready()
        deadline = time.monotonic() + 30
        while len(self.workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)  # both workers serving

    def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        return False

    def workers(self) -> list[int]:
        return [pid for pid in children(self.processes[0].pid) if "spawn_main" in cmdline(pid)]

    async def setup(self) -> None:
        body = json.loads(draft().model_dump_json())
        async with httpx.AsyncClient() as client:
            response = await client.post(f"http://127.0.0.1:{self.port}/api/battles", json=body, timeout=10)
        created = response.json()
        self.code = created["code"]
        token = {name: link.split("#", 1)[1] for name, link in created["links"].items() if "#" in link}
        self.host = await Control.open("engine", self.url, "host", self.code, token["host"])
        self.screen = await Control.open("engine", self.url, "screen", self.code, token["screen"])

    async def open_vote(self) -> tuple[float, int]:
        sent, seq = await self.step("open_vote")
        assert self.host is not None
        await self.host.wait(lambda: self.host is not None and self.host.seq >= seq)
        self.vote_id = str(self.host.battle["rounds"][-1]["votes"][-1]["id"])
        return sent, seq

    def stored_choices(self) -> Counter[str]:
        totals = self.redis.client.hgetall(f"battle:{{{self.code}}}:totals:{self.vote_id}")
        return Counter({text(k): int(v) for k, v in totals.items() if int(v) > 0})

    async def metrics(self) -> dict[str, Any]:
        """A few sums from GET /metrics (both workers, and the killed one's counters)."""
        from prometheus_client.parser import text_string_to_metric_families

        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10)).text
        found: dict[str, Any] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = sample.name + "".join(
                    f"[{v}]" for k, v in sorted(sample.labels.items()) if k not in ("pid", "le")
                )
                if sample.name.endswith(("_count", "_sum", "_total")) or family.type == "gauge":
                    found[key] = round(found.get(key, 0.0) + sample.value, 3)
        wanted = ("battles_gc_pause", "battles_broadcast_lag", "battles_messages_out", "battles_ballots_total",
                  "battles_connections", "battles_redis_roundtrip_seconds_count[cast_ballot]",
                  "battles_redis_roundtrip_seconds_sum[cast_ballot]")  # fmt: skip
        return {k: v for k, v in sorted(found.items()) if k.startswith(wanted)}

    def lose(self, count: int) -> None:
        self.redis.client.hincrby(f"battle:{{{self.code}}}:totals:{self.vote_id}", "b1", -count)


class Bare(Target):
    kind: Kind = "b0"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.bare", "--port", str(self.port), "--redis", self.redis.url,
                "--payload", str(self.payload)]  # fmt: skip

    def start(self) -> None:
        self.processes = [self.spawn(self.command(), {}, f"worker-{n}") for n in (1, 2)]
        self.wait_ready()
        time.sleep(0.5)  # both processes listening

    def kill_one(self) -> int:
        """Kill the first process and start it again at once, as uvicorn's supervisor does."""
        victim = self.processes[0]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        self.processes[0] = self.spawn(self.command(), {}, "worker-1-restarted")
        return victim.pid


class SocketIO(Target):
    kind: Kind = "p1"

    def start(self) -> None:
        env = {"BENCH_REDIS": self.redis.url, "BENCH_PAYLOAD": str(self.payload)}
        command = [sys.executable, "-m", "uvicorn", "bench.sio:create_app", "--factory", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "2", "--ws-per-message-deflate", "false",
                   "--log-level", "warning", "--no-access-log"]  # fmt: skip
        self.processes = [self.spawn(command, env, "uvicorn")]
        self.wait_ready()
        time.sleep(0.5)  # both workers up

    def workers(self) -> list[int]:
        return [pid for pid in children(self.processes[0].pid) if "spawn_main" in cmdline(pid)]


TARGETS: dict[Kind, type[Target]] = {"engine": Engine, "b0": Bare, "p1": SocketIO}
