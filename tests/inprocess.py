"""The app in the test process: ``create_app`` under Starlette's ``TestClient``.

The fast layer of the tests (as datasette has one beside its real servers): no process to
start, no port, no network; the app's lifespan runs (the hub, its timers and fan-out) on
the test client's event loop in its own thread for as long as the ``with`` lasts. Pages,
the HTTP API, refused handshakes and evenings over sockets run here. Where the network,
processes or faults are the point (uvicorn's frame size limit and header deadline, the
frames ``battles serve`` writes straight to its sockets (``battles.fanout``; here frames
go through ``websocket.send``), kill -9, Redis going away, several processes, a browser,
the benchmarks), the tests use a real ``battles serve`` (``tests.servers``).

One process holds the tests and the app here, so a test that is mostly the app's work
(a hall of a hundred phones) runs no faster than against a server process, which has a
core of its own.

``InProcess.connect`` hands out the same ``tests.clients.Client`` the real-server tests
use, over an ``InProcessSocket``: what a websockets client connection offers the
``Client``, on Starlette's test session.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient, WebSocketTestSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from battles.app import create_app
from battles.settings import Settings
from tests.clients import Client, offer
from tests.helpers import with_tokens
from tests.servers import TEST_SETTINGS

# The real servers' fast loops (tests.servers.TEST_SETTINGS), as settings.
FAST = {name.removeprefix("BATTLES_").lower(): int(value) for name, value in TEST_SETTINGS.items()}
# The scope keys of a socket's ``Outbox``, of the event ``Watched`` sets once the app is
# done with the socket, and of the mark ``let_go`` leaves once the session has ended.
OUTBOX, DONE, RELEASED = "tests.outbox", "tests.done", "tests.released"


class Outbox:
    """Where the app's messages to one socket go once it has accepted: straight onto the
    test's event loop (``attach``), held until the test's socket attaches. Before the
    accept (the accept itself, or a refusal) they go to Starlette's test session, which
    answers the handshake."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted = False
        self._held: list[Message] = []
        self._to: tuple[asyncio.AbstractEventLoop, Callable[[Message], None]] | None = None

    def take(self, message: Message) -> bool:
        """Called in the app's thread: True when the message went to the test's socket."""
        if not self._accepted:
            self._accepted = message["type"] == "websocket.accept"
            return False
        with self._lock:
            if self._to is None:
                self._held.append(message)
                return True
            loop, deliver = self._to
        with contextlib.suppress(RuntimeError):  # the test's loop is gone: nobody listens
            loop.call_soon_threadsafe(deliver, message)
        return True

    def attach(self, loop: asyncio.AbstractEventLoop, deliver: Callable[[Message], None]) -> None:
        """Called on the test's loop: the held messages now, then each as it comes."""
        with self._lock:
            self._to = (loop, deliver)
            held, self._held = self._held, []
        for message in held:
            deliver(message)


class Watched:
    """The app, its messages to each accepted socket going to that socket's ``Outbox``,
    and telling when it has finished with a socket (``scope[DONE]``): a socket is only
    let go once the app has run its goodbyes (the hub's ``leave``), as a real server
    lets them run after the close."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        outbox: Outbox = scope.setdefault(OUTBOX, Outbox())
        done = scope.setdefault(DONE, threading.Event())

        async def send_watched(message: Message) -> None:
            if not outbox.take(message):
                await send(message)

        try:
            await self.app(scope, receive, send_watched)
        finally:
            done.set()


class InProcess(TestClient):
    """``create_app(Settings(store=store, **settings))`` with the real servers' fast loops;
    use it as a context manager (that runs the lifespan). HTTP as ``TestClient`` has it
    (``get``, ``post``), sockets as ``Client``s (``connect``)."""

    url = "http://testserver"

    def __init__(self, store: str, **settings: Any) -> None:
        super().__init__(Watched(create_app(Settings(store=store, **(FAST | settings)))))
        self.sessions: list[WebSocketTestSession] = []

    def create_battle(self, **draft: Any) -> dict[str, Any]:
        response = self.post("/api/battles", json=draft)
        assert response.status_code == 201, response.text
        return with_tokens(response.json())

    def open(
        self, role: str, code: str, token: str | None = None, device: str | None = None, **options: Any
    ) -> WebSocketTestSession:
        """A session past its handshake (accepted); a refusal raises Starlette's
        ``WebSocketDenialResponse``, whose ``status_code`` is the HTTP status. ``options``
        go to ``websocket_connect`` (``headers``)."""
        session = self.websocket_connect(f"/ws/{role}/{code}", subprotocols=offer(token, device), **options)
        session.__enter__()
        self.sessions.append(session)  # let go at the end, whatever the test did with it
        return session

    async def connect(self, role: str, code: str, token: str | None = None, device: str | None = None) -> Client:
        session = await asyncio.to_thread(self.open, role, code, token, device)
        return await Client.joined(InProcessSocket(session, asyncio.get_running_loop()), role, device)  # type: ignore[arg-type]

    def __exit__(self, *args: Any) -> None:
        # Every session first: the lifespan ends only once no socket task is left.
        failures = []
        for session in self.sessions:
            try:
                let_go(session)
            except Exception as failure:  # the app failed on that socket: the test hears it
                failures.append(failure)
        super().__exit__(*args)
        if failures:
            raise failures[0]


def let_go(session: WebSocketTestSession, code: int = 1000) -> None:
    """End a session once the app has finished with its socket (blocking; once)."""
    if session.scope.get(RELEASED):
        return
    session.scope[RELEASED] = True
    with contextlib.suppress(Exception):  # the app may have gone already
        session.send({"type": "websocket.disconnect", "code": code})
    session.scope[DONE].wait(10)
    session.__exit__(None, None, None)


class InProcessSocket:
    """What ``Client`` uses of a websockets client connection, on a test session: ``send``,
    ``close``, ``wait_closed``, ``close_code`` and the frames received (``async for``).

    Frames from the app arrive through the socket's ``Outbox`` on the test's loop. A close
    from the server is answered as a real client answers it (the app then hears the
    disconnect); a close from here waits until the app has finished with the socket.
    """

    def __init__(self, session: WebSocketTestSession, loop: asyncio.AbstractEventLoop) -> None:
        self.session, self.loop = session, loop
        self.close_code: int | None = None
        self._frames: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._closed = asyncio.Event()
        session.scope[OUTBOX].attach(loop, self._deliver)

    def _deliver(self, message: Message) -> None:
        if message["type"] == "websocket.send":
            self._frames.put_nowait(message["text"] if message.get("text") is not None else message["bytes"])
        elif message["type"] == "websocket.close" and self.close_code is None:
            self.close_code = message.get("code", 1000)
            self.loop.run_in_executor(None, self._answer_close, self.close_code)
            self._frames.put_nowait(None)
            self._closed.set()

    def _answer_close(self, code: int) -> None:
        with contextlib.suppress(Exception):  # the session was let go meanwhile
            self.session.send({"type": "websocket.disconnect", "code": code})

    def __aiter__(self) -> InProcessSocket:
        return self

    async def __anext__(self) -> str | bytes:
        frame = await self._frames.get()
        if frame is None:
            raise StopAsyncIteration
        return frame

    async def send(self, frame: str | bytes) -> None:
        if self.close_code is not None:
            raise ConnectionError(f"the socket is closed ({self.close_code})")
        # Off the test's loop: the app's thread may be busy, and other clients go on meanwhile.
        await asyncio.to_thread(self.session.send_text if isinstance(frame, str) else self.session.send_bytes, frame)  # type: ignore[arg-type]

    async def close(self, code: int = 1000) -> None:
        if self.close_code is None:
            self.close_code = code
        await asyncio.to_thread(let_go, self.session, code)
        self._frames.put_nowait(None)
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
