"""A hall that joins at once is let in a few at a time: ``JoinGate``.

When a server process restarts, every phone it held reconnects within a second or
two, all to the processes left. Each join is a handful of store reads and a
snapshot to build. Taken all at once, thousands of joins share the event loop:
each one crawls, store replies sit unread past the store's timeout, joins fail with
an error and are retried, and the hall takes a minute to come back while the phones
already in the room wait for their updates too (measured: docs/performance.md).

``JoinGate`` wraps the app (as ``security.OriginGuard`` does) and lets at most
``join_concurrency`` websocket joins run in a process; the others wait their turn,
their handshake simply not answered yet. A join ends when the app, having accepted
the socket and sent it its welcome and snapshot, first waits for what the client
sends (or when it refuses the handshake, or fails).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class JoinGate:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.turns = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        await self.turns.acquire()
        accepted = done = False

        def finish() -> None:
            nonlocal done
            if not done:
                done = True
                self.turns.release()

        async def send_watched(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept":
                accepted = True
            await send(message)

        async def receive_watched() -> Message:
            # The app reads "websocket.connect" before it accepts; the first read
            # after its accept means it has joined and now waits for the client.
            if accepted:
                finish()
            return await receive()

        try:
            await self.app(scope, receive_watched, send_watched)
        finally:
            finish()
