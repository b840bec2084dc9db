"""Late in an evening: what one change costs on the wire (``python -m bench late``).

    .venv/bin/python -m bench late

The engine as it is deployed (``battles serve --workers 2`` on its own redis-server on a
free port) and one battle of 10 battlers (names of about 10 characters, visions of about
110), played by a host with ``--phones`` phones voting in every round, to round 6; the
host pauses and resumes the clock in the turns until the log holds at least 150 entries.
Then the host presses ``next`` in round 6, and the figures are the bytes of that one
change:

- the ``update`` frame a phone, the screen and the host receive;
- the announcement between processes, as published on the battle's Redis channel.

The baseline, in the same run on the same battle: the whole view each of them would get
in a ``snapshot`` of that version (what every update carried before updates carried
changes: docs/architecture.md, "Changes, not states"), and the whole state with its log
that every announcement carried. The targets (docs/performance.md): a phone and the
screen 512 bytes or less, the host 1,500 or less, the announcement 2 KB or less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from bench.run import load_average, log, print_and_write
from bench.targets import Engine, RedisServer
from bench.wire import encode, follow

BATTLERS = [(f"Battler {n:02}", f"Vision {n:02}: " + "a city that " * 9) for n in range(1, 11)]
TARGETS = {"phone": 512, "screen": 512, "host": 1500, "announcement": 2048}


class Socket:
    """One client: the battle it built from its snapshot and updates, and the bytes of
    every frame it received, by type and seq."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seq = -1
        self.battle: dict[str, Any] = {}
        self.frames: dict[tuple[str, int], int] = {}
        self.changed = asyncio.Event()
        self.replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.count = 0
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, role: str, code: str, token: str | None = None) -> Socket:
        offer = ["battles.v1", *([f"auth.{token}"] if token else [])]
        socket = cls(await connect(f"{url}/ws/{role}/{code}", subprotocols=offer, compression=None))  # type: ignore[arg-type]
        await socket.until(lambda battle: bool(battle))
        return socket

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.socket:
                message = json.loads(raw)
                kind = message.get("type")
                if kind in ("snapshot", "update"):
                    self.frames[(kind, message["seq"])] = len(raw.encode() if isinstance(raw, str) else raw)
                    battle = follow(self.seq, self.battle, message)
                    if battle is not None:
                        self.seq, self.battle = message["seq"], battle
                        self.changed.set()
                reply = self.replies.pop(str(message.get("id")), None)
                if reply is not None and kind != "update":
                    reply.set_result(message)

    async def until(self, condition: Any, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not condition(self.battle):
                self.changed.clear()
                await self.changed.wait()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        request_id = f"r{self.count}"
        reply = self.replies[request_id] = asyncio.get_running_loop().create_future()
        await self.socket.send(encode({**message, "id": request_id}))
        async with asyncio.timeout(10):
            answer: dict[str, Any] = await reply
        return answer

    async def run(self, kind: str, **fields: Any) -> int:
        """A host command that must succeed; waits until this socket shows it."""
        reply = await self.request({"type": kind, "seq": self.seq, **fields})
        while reply.get("reason") == "rate_limited":  # a console's burst is bounded (docs/security.md)
            await asyncio.sleep(0.5)
            reply = await self.request({"type": kind, "seq": self.seq, **fields})
        if reply["type"] != "ack":
            raise RuntimeError(f"{kind} refused: {reply}")
        seq = int(reply["seq"])
        await self.until(lambda battle: battle["version"] >= seq)
        return seq

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()


async def play_a_round(host: Socket, phones: list[Socket]) -> None:
    """Start a round, hear every turn, vote with every phone (the last speaker gets no
    vote: no tie), and confirm the elimination."""
    await host.run("start_round")
    while host.battle["phase"] != "vote":
        await host.run("next")
    await host.run("open_vote")
    vote = host.battle["rounds"][-1]["votes"][-1]
    kept = vote["choices"][:-1]
    ballots = [
        phone.request({"type": "vote", "vote_id": vote["id"], "choice": kept[n % len(kept)], "ballot_id": f"b{n:08}"})
        for n, phone in enumerate(phones)
    ]
    await asyncio.gather(*ballots)
    await host.run("close_vote")
    await host.run("reveal_results")
    await host.run("confirm_elimination")


async def measure(options: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="battles-late-"))
    redis_server = RedisServer(folder)
    engine = Engine(redis_server, folder, folder / "unused.json")
    engine.start()
    sockets: list[Socket] = []
    try:
        body = {
            "title": "Aarhus 2079: the sea has risen",
            "battlers": [{"name": name, "vision": vision} for name, vision in BATTLERS],
            "rules": {"vote_seconds": 600, "turn_seconds": 600},
        }
        async with httpx.AsyncClient() as client:
            created = (await client.post(f"http://127.0.0.1:{engine.port}/api/battles", json=body, timeout=10)).json()
        code = created["code"]
        token = {name: link.split("#", 1)[1] for name, link in created["links"].items() if "#" in link}
        host = await Socket.open(engine.url, "host", code, token["host"])
        screen = await Socket.open(engine.url, "screen", code, token["screen"])
        phones = [await Socket.open(engine.url, "audience", code) for _ in range(options.phones)]
        sockets = [host, screen, *phones]
        for number in range(1, 6):
            log(f"late evening: round {number}, log {len(host.battle['log'])} entries")
            await play_a_round(host, phones)
        await host.run("start_round")
        await host.run("next")  # the first turn of round 6
        while len(host.battle["log"]) < 149:  # 150 with the change measured
            await host.run("pause_timer")
            await host.run("resume_timer")
        async with aioredis.Redis.from_url(redis_server.url) as subscriber, subscriber.pubsub() as channel:
            await channel.psubscribe(f"*{code}*")
            await asyncio.sleep(0.2)
            seq = await host.run("next")  # the change measured
            announcement = None
            async with asyncio.timeout(5):
                while announcement is None:
                    message = await channel.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None and message["type"] == "pmessage":
                        announcement = message["data"]
        for socket in (screen, phones[0]):
            await socket.until(lambda battle: battle["version"] >= seq)
        log_entries = len(host.battle["log"])
        whole = {
            role: len(encode({"type": "update", "seq": seq, "server_ms": 0, "battle": socket.battle, "events": []}))
            for role, socket in (("phone", phones[0]), ("screen", screen), ("host", host))
        }
        state_and_log = len(json.dumps({"state": host.battle, "events": []}))
        return {
            "load_average": load_average(),
            "battlers": len(BATTLERS),
            "round": len(host.battle["rounds"]),
            "log_entries": log_entries,
            "phones": options.phones,
            "update_bytes": {
                "phone": phones[0].frames[("update", seq)],
                "screen": screen.frames[("update", seq)],
                "host": host.frames[("update", seq)],
                "announcement": len(announcement),
            },
            "whole_view_bytes": whole | {"announcement": state_and_log},
        }
    finally:
        for socket in sockets:
            with contextlib.suppress(Exception):
                await socket.close()
        engine.stop()
        redis_server.stop()


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"Late evening: {figures['battlers']} battlers, round {figures['round']}, a log of "
        f"{figures['log_entries']} entries, {figures['phones']} phones; `next` in round 6; "
        f"load average {figures['load_average']:.1f}",
        "",
        "| bytes of one change | carrying the whole view (before) | carrying the change | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for who, target in TARGETS.items():
        before, after = figures["whole_view_bytes"][who], figures["update_bytes"][who]
        lines.append(
            f"| {who} | {before:,} | {after:,} | {after / before:.3f} | <= {target:,} | {'yes' if after <= target else 'NO'} |"
        )
    return "\n".join(lines)


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench late", description=__doc__)
    parser.add_argument("--phones", type=int, default=60, help="phones voting in every round (default 60)")
    parser.add_argument("--out", help="write the table to this file, and the figures to FILE.json")
    options = parser.parse_args(argv)
    if options.phones < len(BATTLERS) - 1:
        parser.error(f"--phones: at least {len(BATTLERS) - 1}, a vote for each battler but the one who leaves")
    figures = asyncio.run(measure(options))
    print_and_write(report(figures), figures, options.out)
    return 0
