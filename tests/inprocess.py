"""The app in the test process: ``create_app`` under Starlette's ``TestClient``.

The fast layer of the tests (as datasette has one beside its real servers): no process to
start, no port, no network; the app's lifespan runs (the hub, its timers and fan-out) on
the test client's event loop in its own thread for as long as the ``with`` lasts. Pages,
the HTTP API, refused handshakes and whole evenings over sockets run here. Where the
network, processes or faults are the point (uvicorn's frame size limit and header
deadline, kill -9, Redis going away, several processes, a browser, the benchmarks), the
tests use a real ``battles serve`` (``tests.servers``).

``InProcess.connect`` hands out the same ``tests.clients.Client`` the real-server tests
use, over an ``InProcessSocket``: what a websockets client connection offers the
``Client``, on Starlette's test session.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from starlette.testclient import TestClient, WebSocketTestSession
from starlette.types import ASGIApp, Receive, Scope, Send

from battles.app import create_app
from battles.settings import Settings
from tests.clients import Client, offer
from tests.helpers import with_tokens
from tests.servers import TEST_SETTINGS

# The real servers' fast loops (tests.servers.TEST_SETTINGS), as settings.
FAST = {name.removeprefix("BATTLES_").lower(): int(value) for name, value in TEST_SETTINGS.items()}
# The scope keys under which ``Watched`` tells that the app is done with a socket, and
# ``let_go`` that the session has ended.
DONE, RELEASED = "tests.done", "tests.released"


class Watched:
    """The app, telling when it has finished with each socket (``scope[DONE]``): a
    socket is only let go once the app has run its goodbyes (the hub's ``leave``), as a
    real server lets them run after the close."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        done = scope.setdefault(DONE, threading.Event())
        try:
            await self.app(scope, receive, send)
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

    The session's reads block, so a thread of its own reads them into an asyncio queue. A
    close from the server is answered as a real client answers it (the app then hears
    the disconnect); a close from here waits until the app has finished with the socket.
    """

    def __init__(self, session: WebSocketTestSession, loop: asyncio.AbstractEventLoop) -> None:
        self.session, self.loop = session, loop
        self.close_code: int | None = None
        self._frames: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._closed = asyncio.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        code = 1006  # the session ended without a close: as a cut connection
        with contextlib.suppress(Exception):  # the session was let go
            while True:
                message = self.session.receive()
                if message["type"] == "websocket.send":
                    frame = message["text"] if message.get("text") is not None else message["bytes"]
                    self.loop.call_soon_threadsafe(self._frames.put_nowait, frame)
                elif message["type"] == "websocket.close":
                    code = message.get("code", 1000)
                    self.session.send({"type": "websocket.disconnect", "code": code})
                    break
        with contextlib.suppress(RuntimeError):  # the test's loop is gone: nobody waits
            self.loop.call_soon_threadsafe(self._ended, code)

    def _ended(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
        self._frames.put_nowait(None)
        self._closed.set()

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
        if isinstance(frame, str):
            self.session.send_text(frame)
        else:
            self.session.send_bytes(frame)

    async def close(self, code: int = 1000) -> None:
        if self.close_code is None:
            self.close_code = code
        await asyncio.to_thread(let_go, self.session, code)
        await asyncio.to_thread(self._reader.join, 10)
        self._frames.put_nowait(None)
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
