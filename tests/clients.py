"""A real websocket client of the battles protocol, as the tests drive it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import secrets
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.wire import follow

Match = Callable[[dict[str, Any]], bool]


def offer(
    token: str | None = None, device: str | None = None, page: str | None = None, remote: bool = False
) -> list[str]:
    """The subprotocols a client offers: the protocol, and its token or device id, and the
    join page's mark for a phone that loaded the page, and for a phone of the stream's
    audience ``battles.remote`` (docs/protocol.md, Connecting)."""
    return [
        "battles.v1",
        *([f"auth.{token}"] if token else []),
        *([f"device.{device}"] if device else []),
        *([f"page.{page}"] if page else []),
        *(["battles.remote"] if remote else []),
    ]


class Waiting:
    """What a test waits on: the messages a client received and the newest state it holds."""

    inbox: asyncio.Queue[dict[str, Any]]
    battle: dict[str, Any]
    presence: dict[str, int]

    async def expect(self, kind: str, where: Match = lambda m: True, timeout: float = 10) -> dict[str, Any]:
        """The next message of this type that matches; earlier other messages are dropped."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.inbox.get()
                if message["type"] == kind and where(message):
                    return message

    async def until_presence(self, timeout: float = 10, **counts: int) -> None:
        """Wait until the newest presence figures this client has seen include ``counts``."""
        async with asyncio.timeout(timeout):
            while any(self.presence.get(role) != count for role, count in counts.items()):
                await asyncio.sleep(0.02)

    async def wait_for(self, condition: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        """Wait until the newest battle state satisfies ``condition``."""
        async with asyncio.timeout(timeout):
            while not (self.battle and condition(self.battle)):
                await asyncio.sleep(0.02)
        return self.battle


class Client(Waiting):
    """One socket. A reader task keeps the newest battle state and queues every message."""

    _ids = itertools.count(1)

    def __init__(self, socket: ClientConnection, role: str) -> None:
        self.socket, self.role = socket, role
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.battle: dict[str, Any] = {}
        self.seq = -1
        self.device: str | None = None
        self.my_ballot: dict[str, Any] | None = None
        self.welcome: dict[str, Any] = {}
        self.snapshot: dict[str, Any] = {}  # the first, that the connection opened with
        self.presence: dict[str, int] = {}
        # Every snapshot and update in the order they arrived: (type, seq).
        self.received: list[tuple[str, int]] = []
        self.gaps = 0  # updates that did not apply to the version held: each asked for a resync
        self.awaiting_snapshot = False
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls,
        ws_url: str,
        role: str,
        code: str,
        token: str | None = None,
        device: str | None = None,
        page: str | None = None,
        remote: bool = False,
        **options: Any,
    ) -> Client:
        subprotocols = offer(token, device, page, remote)
        socket = await connect(f"{ws_url}/ws/{role}/{code}", subprotocols=subprotocols, open_timeout=10, **options)  # type: ignore[arg-type]
        return await cls.joined(socket, role, device)

    @classmethod
    async def joined(cls, socket: ClientConnection, role: str, device: str | None = None) -> Client:
        """A client on a socket just opened, once it has its welcome and snapshot."""
        client = cls(socket, role)
        client.welcome = welcome = await client.expect("welcome")
        client.device = welcome.get("device") or device
        client.snapshot = await client.expect("snapshot")
        return client

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.socket:
                message = json.loads(raw)
                if message["type"] in ("snapshot", "update"):
                    self.received.append((message["type"], message["seq"]))
                    await self._take(message)
                if message["type"] == "snapshot" and "my_ballot" in message:
                    self.my_ballot = message["my_ballot"]
                if message["type"] == "snapshot":
                    self.presence = message.get("presence") or {}
                elif message["type"] == "presence":
                    self.presence = {k: v for k, v in message.items() if k != "type"}
                await self.inbox.put(message)

    async def _take(self, message: dict[str, Any]) -> None:
        if message["type"] == "update" and (message["seq"] <= self.seq or self.awaiting_snapshot):
            return  # already held, or a snapshot is on its way
        battle = follow(self.seq, self.battle, message)
        if battle is not None:
            self.seq, self.battle, self.awaiting_snapshot = message["seq"], battle, False
        else:
            self.gaps += 1
            self.awaiting_snapshot = True
            await self.socket.send(json.dumps({"type": "resync"}))

    async def send(self, message: dict[str, Any]) -> str:
        request_id = message.setdefault("id", f"m{next(self._ids)}")
        await self.socket.send(json.dumps(message))
        return str(request_id)

    async def request(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send and wait for the reply that carries the same id."""
        request_id = await self.send(message)
        async with asyncio.timeout(timeout):
            while True:
                reply = await self.inbox.get()
                if reply.get("id") == request_id and reply["type"] != "update":
                    return reply

    async def command(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A host command decided on the newest state this client has seen."""
        return await self.request({"type": kind, "seq": self.seq, **fields})

    async def run(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A host command that must succeed; waits until this client has seen its result."""
        reply = await self.command(kind, **fields)
        assert reply["type"] == "ack", reply
        await self.wait_for(lambda battle: battle["version"] >= reply["seq"])
        return reply

    async def vote(self, vote_id: str, choice: str, ballot_id: str | None = None) -> dict[str, Any]:
        return await self.request(
            {"type": "vote", "vote_id": vote_id, "choice": choice, "ballot_id": ballot_id or secrets.token_urlsafe(12)}
        )

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


class ReconnectingClient(Waiting):
    """A client that comes back by itself, as docs/protocol.md ("Reconnecting") asks.

    It follows the ``reconnect`` policy of the last ``welcome`` it got: after a lost
    connection the first try waits a random time up to ``base_ms`` (or ``max_ms`` when
    the server closed with 1012, a restart), every later try up to ``max_ms``. Each try
    goes to the next of ``ws_urls`` (several processes behind no load balancer). A
    phone keeps its device id and its unacknowledged ballot, resends that ballot with
    the same ``ballot_id`` once it is back, and checks that ``my_ballot`` in the new
    snapshot is a choice it made; on ``service`` ``ok`` it forgets its ``seq`` and
    sends ``resync``.
    """

    def __init__(
        self,
        ws_urls: list[str],
        role: str,
        code: str,
        token: str | None = None,
        device: str | None = None,
        *,
        rng: random.Random | None = None,
        **options: Any,
    ) -> None:
        self.ws_urls, self.role, self.code, self.token, self.device = ws_urls, role, code, token, device
        self.options = {"open_timeout": 10, "proxy": None, "compression": None, **options}
        self.rng = rng or random.Random()
        self.policy: dict[str, Any] = {}
        self.battle: dict[str, Any] = {}
        self.seq = -1
        self.my_ballot: dict[str, Any] | None = None
        self.tally: dict[str, Any] | None = None
        self.presence: dict[str, int] = {}
        self.service: list[str] = []  # the store states that `service` messages told, in order
        self.url_index = 0
        self.socket: ClientConnection | None = None
        self.connected = asyncio.Event()
        self.connections = 0  # successful connections, the first included
        self.connected_at: list[float] = []  # loop times of every successful connection
        self.tried_at: list[float] = []  # loop times at which those successful tries began
        self.planned_at: list[float] = []  # and the times the policy had drawn for them
        self.close_codes: list[int | None] = []
        self.failed_tries = 0
        self.offline_until = 0.0  # loop time before which it stays away (a test's outage)
        self._back = asyncio.Event()  # set by back(): the outage ends early
        # Ballots: the last acknowledged choice and the one in flight, per vote.
        self.acked: dict[str, str] = {}
        self.acked_ids: list[tuple[str, str]] = []  # (vote_id, ballot_id) of every `ballot` reply
        self.pending: dict[str, str] | None = None  # {"vote_id", "choice", "ballot_id"}
        self.surprises: list[str] = []  # a restored my_ballot that is none of our choices
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._lost = asyncio.Event()
        self._store_ok = asyncio.Event()  # cleared by `service` "unavailable", set by "ok"
        self._store_ok.set()
        self._closing = False
        self._runner: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)

    async def start(self, timeout: float = 30) -> ReconnectingClient:
        self._runner = asyncio.create_task(self._run())
        async with asyncio.timeout(timeout):
            await self.connected.wait()
        return self

    # --- the connection's life -------------------------------------------------------

    def _window_s(self, first: bool, restart: bool) -> float:
        base = self.policy.get("base_ms", 500) / 1000
        longest = self.policy.get("max_ms", 15_000) / 1000
        return float(base if first and not restart else longest)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        tries = 0  # since the last successful connection; 0: the very first connect
        restart = False
        while not self._closing:
            planned_at = loop.time()
            if tries > 0:
                delay = self.rng.uniform(0, self._window_s(tries == 1, restart))
                planned_at += delay
                await asyncio.sleep(delay)
            if loop.time() < self.offline_until:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._back.wait(), self.offline_until - loop.time())
                planned_at = loop.time()
            url = self.ws_urls[self.url_index % len(self.ws_urls)]
            tried_at = loop.time()
            try:
                socket = await connect(
                    f"{url}/ws/{self.role}/{self.code}",
                    subprotocols=offer(self.token, self.device),  # type: ignore[arg-type]
                    **self.options,
                )
            except Exception:
                self.failed_tries += 1
                tries += 1
                self.url_index += 1
                continue
            tries = 1
            self.tried_at.append(tried_at)
            self.planned_at.append(planned_at)
            code = await self._serve(socket)
            restart = code == 1012
            if not self._closing:
                self.close_codes.append(code)
                # The next try goes to the next process: the one that dropped us is the
                # least likely to be back first.
                self.url_index += 1

    async def _serve(self, socket: ClientConnection) -> int | None:
        """Read one connection until it ends; returns its close code."""
        self.socket, self._lost = socket, asyncio.Event()
        first_snapshot = True
        self.seq = -1  # a new connection's snapshot decides, even at a lower version
        self.gap = False
        self._store_ok.set()  # until this server says otherwise
        try:
            async for raw in socket:
                message = json.loads(raw)
                kind = message["type"]
                if kind == "welcome":
                    self.policy = message.get("reconnect") or self.policy
                    self.device = message.get("device") or self.device
                elif kind == "snapshot" or (kind == "update" and message["seq"] > self.seq):
                    battle = follow(self.seq, self.battle, message)
                    if battle is not None:
                        self.seq, self.battle = message["seq"], battle
                    elif not self.gap:
                        self.gap = True  # one resync at a time: its snapshot clears this
                        await socket.send(json.dumps({"type": "resync", "id": f"resync{next(self._ids)}"}))
                if kind == "snapshot":
                    self.gap = False
                if kind == "snapshot":
                    if "tally" in message:
                        self.tally = message["tally"]
                    self.presence = message.get("presence") or self.presence
                    if self.role == "audience":
                        self._check_restored(message.get("my_ballot"))
                    if first_snapshot:
                        first_snapshot = False
                        self.connections += 1
                        self.connected_at.append(asyncio.get_running_loop().time())
                        self.connected.set()
                elif kind == "tally":
                    self.tally = message
                elif kind == "presence":
                    self.presence = {k: v for k, v in message.items() if k != "type"}
                elif kind == "service":
                    self.service.append(message["store"])
                    if message["store"] == "ok":
                        self.seq = -1
                        self._store_ok.set()
                        await socket.send(json.dumps({"type": "resync", "id": f"resync{next(self._ids)}"}))
                    else:
                        self._store_ok.clear()
                reply = self._replies.pop(message.get("id") or "", None)
                if reply is not None and not reply.done() and kind != "update":
                    reply.set_result(message)
                await self.inbox.put(message)
        except Exception:
            pass
        finally:
            self.connected.clear()
            self.socket = None
            self._lost.set()
        return socket.close_code

    def _check_restored(self, restored: dict[str, Any] | None) -> None:
        self.my_ballot = restored
        rounds = self.battle.get("rounds") or [{}]
        votes = rounds[-1].get("votes") or [{}]
        vote_id = votes[-1].get("id")
        if restored is None:
            if vote_id in self.acked:
                self.surprises.append(f"my acknowledged ballot in {vote_id} ({self.acked[vote_id]}) is gone")
            return
        known = {self.acked.get(restored["vote_id"])}
        if self.pending is not None and self.pending["vote_id"] == restored["vote_id"]:
            known.add(self.pending["choice"])
        if restored["choice"] not in known:
            self.surprises.append(f"my_ballot {restored} is none of my choices {known}")

    # --- requests ----------------------------------------------------------------------

    def away_at_most_s(self) -> float:
        """How long the reconnect policy may keep this client away once the server is
        up again: a failed try, then a wait of up to ``max_ms``, then a try that
        succeeds (each try bounded by ``open_timeout``)."""
        return 2 * float(self.options["open_timeout"]) + self._window_s(False, True)

    async def request(
        self, message: dict[str, Any], timeout: float = 10, connect_timeout: float | None = None
    ) -> dict[str, Any] | None:
        """Send on the current connection and wait ``timeout`` for the reply; None when
        the connection was lost first (the caller decides whether to send again).

        While the client is away it first waits for its next connection, up to
        ``connect_timeout`` (by default what the reconnect policy allows,
        ``away_at_most_s``): a fixed wait shorter than the policy's ``max_ms`` would
        give up on a client that does exactly what the protocol asks."""
        async with asyncio.timeout(self.away_at_most_s() if connect_timeout is None else connect_timeout):
            await self.connected.wait()
        socket, lost = self.socket, self._lost
        assert socket is not None
        request_id = f"r{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        try:
            try:
                await socket.send(json.dumps({**message, "id": request_id}))
            except Exception:
                await lost.wait()  # the reader sees the end too; then try on the next one
                return None
            lost_wait: asyncio.Future[Any] = asyncio.ensure_future(lost.wait())
            waiting: list[asyncio.Future[Any]] = [future, lost_wait]
            try:
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost_wait.cancel()
        except Exception:
            return None
        finally:
            self._replies.pop(request_id, None)
        if future in done:
            return future.result()
        if not done:
            raise TimeoutError(f"no reply to {message['type']} in {timeout} s")
        return None

    async def vote(
        self, vote_id: str, choice: str, ballot_id: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Cast a ballot until the server answers it: resent with the same id after a
        lost connection or ``store_unavailable``. Returns the ``ballot`` or ``error``."""
        ballot_id = ballot_id or secrets.token_urlsafe(12)
        self.pending = {"vote_id": vote_id, "choice": choice, "ballot_id": ballot_id}
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            until = loop.time() + timeout
            while True:
                # Back within the vote's own time, however long the server took to return.
                ballot = {"type": "vote", "vote_id": vote_id, "choice": choice, "ballot_id": ballot_id}
                reply = await self.request(ballot, connect_timeout=max(0.0, until - loop.time()))
                if reply is None:
                    continue  # lost on the way: resent once the connection is back
                if reply["type"] == "ballot":
                    self.pending = None
                    self.acked[vote_id] = reply["choice"]
                    self.acked_ids.append((vote_id, ballot_id))
                    return reply
                if reply["type"] == "error" and reply["reason"] == "store_unavailable":
                    # It may or may not be recorded: the same ballot again, once a
                    # `service` message says the store is back (or after max_ms), or,
                    # when none said it was away, after the policy's first window.
                    if self._store_ok.is_set():
                        await asyncio.sleep(self.rng.uniform(0, self._window_s(True, False)))
                    else:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self.rng.uniform(0, self._window_s(False, False))):
                                await self._store_ok.wait()
                    continue
                self.pending = None
                return reply

    async def command(self, kind: str, **fields: Any) -> dict[str, Any] | None:
        return await self.request({"type": kind, "seq": self.seq, **fields})

    # --- a test's faults -----------------------------------------------------------------

    def drop(self, offline_s: float = 0.0) -> None:
        """Lose the connection abruptly (no close frame, as when Wi-Fi goes), and stay
        away ``offline_s`` seconds before the policy's first try."""
        self.offline_until = asyncio.get_running_loop().time() + offline_s
        self._back.clear()
        if self.socket is not None:
            self.socket.transport.abort()

    def back(self) -> None:
        """End the outage ``drop`` began: the next try is now."""
        self.offline_until = asyncio.get_running_loop().time()
        self._back.set()

    async def close(self) -> None:
        self._closing = True
        if self.socket is not None:
            with contextlib.suppress(Exception):
                await self.socket.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
