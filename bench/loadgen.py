"""One load generator process: thousands of audience sockets on picows, driven by the runner.

The runner (bench/run.py) starts several of these and sends each a command at a
time over a pipe; each command is bounded in time and answers with what it saw.
Clocks: every time is ``time.time()``, which all processes of the machine share,
so a send in one process and a receipt in another can be compared.

Each process may hold at most the hard RLIMIT_NOFILE of open files (20,000 here):
the soft limit is raised to it on start.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import resource
import secrets
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import picows
import uvloop

from bench.wire import Kind, head_seq, head_type, parse_ack, vote_message


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Ballot:
    sent: float
    acked: float | None = None
    status: str = ""
    choice: str = ""


class Audience(picows.WSListener):
    """One phone: keeps its device id, the time each update arrived, its ballots."""

    def __init__(self, generator: Generator, number: int) -> None:
        self.generator, self.number = generator, number
        self.transport: picows.WSTransport | None = None
        self.device = secrets.token_urlsafe(12)  # B0 and P1: chosen by the phone
        self.signed_device: str | None = None  # the engine's signed device id
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.updates: dict[int, float] = {}
        self.update_bytes: dict[int, int] = {}
        self.ballots: dict[int, Ballot] = {}
        self.lost_at: float | None = None
        self.back_at: float | None = None
        self.closing = False

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        now = time.time()
        if frame.msg_type == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != picows.WSMsgType.TEXT:
            return
        payload: bytes = frame.get_payload_as_bytes()
        kind = self.generator.kind
        generator = self.generator
        generator.frames += 1
        if kind == "p1" and not payload.startswith(b"4"):
            if payload == b"2":  # engine.io ping
                transport.send(picows.WSMsgType.TEXT, b"3")
            elif payload.startswith(b"0"):  # engine.io open: join the default namespace
                transport.send(picows.WSMsgType.TEXT, b"40")
            return
        what = head_type(payload)
        if what == b"update":
            seq = head_seq(payload)
            if seq is not None and seq not in self.updates:
                self.updates[seq] = now
                self.update_bytes[seq] = len(payload)
        elif what == b"tally" or what == b"presence":
            pass
        elif what == b"snapshot":
            if not self.ready.done():
                self.ready.set_result(None)
        elif what == b"welcome" and kind == "engine":
            signed = generator.parse_device(payload)
            if signed:
                self.signed_device = signed
        else:
            reply = parse_ack(kind, payload)
            if reply is not None and reply.get("id") is not None:
                ballot = self.ballots.get(int(reply["id"]))
                if ballot is not None and ballot.acked is None:
                    ballot.acked = now
                    ballot.status = str(reply.get("status") or reply.get("reason"))
                    ballot.choice = str(reply.get("choice") or "")

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the snapshot"))
        if not self.closing:
            self.generator.lost(self)

    def send(self, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.send(picows.WSMsgType.TEXT, payload)


@dataclass
class Generator:
    """The sockets of this process and the commands the runner sends."""

    index: int
    kind: Kind = "engine"
    url: str = ""
    code: str = ""
    clients: list[Audience] = field(default_factory=list)
    reconnect_jitter_s: float = 1.0
    frames: int = 0
    reconnect_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @staticmethod
    def parse_device(payload: bytes) -> str | None:
        import json

        device = json.loads(payload).get("device")
        return str(device) if device else None

    def address(self, client: Audience) -> tuple[str, list[tuple[str, str]]]:
        if self.kind == "p1":
            query = f"EIO=4&transport=websocket&role=audience&code={self.code}&device={client.device}"
            return f"{self.url}/socket.io/?{query}", []
        offer = ["battles.v1"]
        if self.kind == "engine" and client.signed_device:
            offer.append(f"device.{client.signed_device}")
        elif self.kind == "b0":
            offer.append(f"device.{client.device}")
        return f"{self.url}/ws/audience/{self.code}", [("Sec-WebSocket-Protocol", ", ".join(offer))]

    async def open(self, client: Audience, timeout: float) -> None:
        client.ready = asyncio.get_running_loop().create_future()
        url, headers = self.address(client)
        await picows.ws_connect(
            lambda: client, url, extra_headers=headers, websocket_handshake_timeout=timeout, enable_auto_pong=True
        )
        await asyncio.wait_for(client.ready, timeout)

    # --- commands -----------------------------------------------------------------------

    async def connect(
        self, kind: Kind, url: str, code: str, count: int, concurrency: int, timeout: float, deadline_s: float = 100
    ) -> dict[str, Any]:
        self.kind, self.url, self.code = kind, url, code
        gate = asyncio.Semaphore(concurrency)
        failures: list[str] = []

        async def one(client: Audience) -> None:
            async with gate:
                try:
                    await self.open(client, timeout)
                except Exception as error:  # counted and reported, never hidden
                    failures.append(f"{type(error).__name__}: {error}"[:200])

        started = time.time()
        before = len(self.clients)
        new = [Audience(self, len(self.clients) + n) for n in range(count)]
        joins = [asyncio.ensure_future(one(client)) for client in new]
        # Bounded: what has not joined by the deadline is given up and counted as failed.
        _, late = await asyncio.wait(joins, timeout=deadline_s)
        for join in late:
            join.cancel()
        if late:
            failures.append(f"{len(late)} not joined within {deadline_s} s")
            await asyncio.wait(late)
        # Only the sockets that joined take part; the others are dropped for good.
        for client in new:
            if client.ready.done() and not client.ready.cancelled() and client.ready.exception() is None:
                self.clients.append(client)
            else:
                client.closing = True
                if client.transport is not None and not client.transport.is_disconnected:
                    client.transport.disconnect()
        joined = len(self.clients) - before
        return {"connected": joined, "failed": count - joined, "errors": failures[:5], "seconds": time.time() - started}

    def have(self, seq: int) -> dict[str, Any]:
        return {"have": sum(1 for c in self.clients if seq in c.updates), "frames": self.frames}

    def update_times(self, seq: int) -> dict[str, Any]:
        sizes = [c.update_bytes[seq] for c in self.clients if seq in c.update_bytes]
        return {"times": [c.updates.get(seq) for c in self.clients], "bytes": sizes[0] if sizes else None}

    async def vote(
        self,
        vote_id: str,
        choices: list[str],
        start_at: float,
        spread_s: float,
        first: int,
        total: int,
        shift: int,
        timeout: float,
    ) -> dict[str, Any]:
        """Every socket votes once, device ``first + i`` at ``start_at + spread_s * (first + i) / total``."""
        loop = asyncio.get_running_loop()
        offset = loop.time() - time.time()
        ballots: list[tuple[Audience, int]] = []
        for i, client in enumerate(self.clients):
            number = next(self._ids)
            device = first + i
            choice = choices[(device + shift) % len(choices)]
            payload = vote_message(self.kind, number, vote_id, choice, secrets.token_urlsafe(12))
            ballots.append((client, number))
            loop.call_at(start_at + spread_s * device / max(total, 1) + offset, self._cast, client, number, payload)
        deadline = start_at + spread_s + timeout
        while time.time() < deadline:
            await asyncio.sleep(0.05)
            if all(number in c.ballots and c.ballots[number].acked is not None for c, number in ballots):
                break
        rows = [c.ballots.get(number) for c, number in ballots]
        return {
            "sent": [b.sent if b else None for b in rows],
            "acked": [b.acked if b else None for b in rows],
            "status": [b.status if b else "" for b in rows],
            "choice": [b.choice if b else "" for b in rows],
        }

    def _cast(self, client: Audience, number: int, payload: bytes) -> None:
        client.ballots[number] = Ballot(sent=time.time())
        client.send(payload)

    def mark_storm(self, jitter_s: float) -> dict[str, Any]:
        self.reconnect_jitter_s = jitter_s
        self.reconnect_errors.clear()
        for client in self.clients:
            client.lost_at = client.back_at = None
        return {}

    def lost(self, client: Audience) -> None:
        client.lost_at = time.time()
        delay = random.uniform(0, self.reconnect_jitter_s)
        asyncio.get_running_loop().call_later(delay, lambda: asyncio.ensure_future(self._come_back(client)))

    async def _come_back(self, client: Audience) -> None:
        """Reconnect as a phone does: with its device id, trying again until it is back."""
        for attempt in range(20):
            try:
                await self.open(client, 10)
                client.back_at = time.time()
                return
            except Exception as error:
                self.reconnect_errors[f"{type(error).__name__}: {error}"[:120]] += 1
                if client.closing:
                    return
                await asyncio.sleep(0.2 + random.uniform(0, 0.3 * attempt))

    def storm_report(self) -> dict[str, Any]:
        return {
            "lost": [c.lost_at for c in self.clients],
            "back": [c.back_at for c in self.clients],
            "errors": dict(self.reconnect_errors.most_common(5)),
        }

    async def close(self) -> dict[str, Any]:
        for client in self.clients:
            client.closing = True
            if client.transport is not None and not client.transport.is_disconnected:
                client.transport.disconnect()
        self.clients = []
        await asyncio.sleep(0.2)
        return {}


async def _serve(pipe: Connection, index: int) -> None:
    generator = Generator(index)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    while True:
        command = await commands.get()
        op = command.pop("op")
        if op == "quit":
            await generator.close()
            pipe.send({})
            return
        try:
            method = getattr(generator, op)
            result = method(**command)
            if asyncio.iscoroutine(result):
                result = await result
            pipe.send(result)
        except Exception as error:
            pipe.send({"error": f"{type(error).__name__}: {error}"})


def main(pipe: Connection, index: int) -> None:
    """The entry point of a load generator process (multiprocessing, spawn)."""
    raise_open_files()
    uvloop.run(_serve(pipe, index))
