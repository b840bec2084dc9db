"""Every websocket, from its handshake to its end (docs/architecture.md, Who may connect).

A handshake does not go through Starlette's middleware and router: ``app.Battles`` hands
it here, and the checks those wrappers make for a page are made here in turn, as plain
calls that return. A wrapper's frame lives as long as what it wraps, and a socket lives
for the evening: through the eight wrappers and the router, a phone held 23 coroutine
frames, their closures and cells, about 6 KB of the 26 that Python allocates per socket
(docs/performance.md, "Where a socket's memory goes"). Here it holds three.
"""

from __future__ import annotations

import contextlib
import re
import time

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from battles import protocol
from battles.admission import NO_BATTLE, Refusal, admit
from battles.anomalies import Trail
from battles.errors import Refused
from battles.fanout import Connection
from battles.protocol import PROTOCOL_VERSION
from battles.ratelimit import MessageLimiter, client_address, lookup_missed, lookup_wait, too_many
from battles.rooms import now_ms
from battles.security import WRONG_HOST
from battles.services import Services, base_url

PATH = re.compile(r"/ws/(?P<role>[^/]+)/(?P<code>[^/]+)/?")

NO_ENDPOINT = Refusal(404, "no websocket endpoint at this path")
FOREIGN_ORIGIN = Refusal(403, "origin not allowed")
WRONG_HOST_NAME = Refusal(400, WRONG_HOST)


async def socket(house: Services, scope: Scope, receive: Receive, send: Send) -> None:
    """/ws/ROLE/CODE: refused or admitted at the handshake, then the socket's messages,
    each past the per-socket rate limit, to the hub. Refusals are HTTP answers to the
    handshake, before anything is set up (docs/protocol.md, Connecting)."""
    path = PATH.fullmatch(scope["path"])
    refusal = await _at_the_edge(house, scope, path is not None)
    if refusal is not None or path is None:
        await (refusal or NO_ENDPOINT).send(scope, send)
        return
    websocket = WebSocket(scope, receive, send)
    role, code = path["role"], path["code"].upper()
    # A hall joining at once (after a restart) is let in join_concurrency at a time; a
    # join ends when the socket has its welcome and snapshot (battles.admission).
    async with house.joins:
        admitted = await admit(house.store, house.mints, scope, role, code)
        if isinstance(admitted, Refusal):
            if admitted.status == NO_BATTLE.status:
                await lookup_missed(house.lookups, scope)
            await admitted.send(scope, send)
            return
        subprotocol = PROTOCOL_VERSION if PROTOCOL_VERSION in scope.get("subprotocols", []) else None
        await websocket.accept(subprotocol=subprotocol)
        connection = Connection(
            websocket,
            admitted.role,
            admitted.code,
            admitted.language,
            house.settings.send_queue,
            admitted.device,
            admitted.new_device,
        )
        connection.cohost_generation = admitted.cohost_generation
        connection.receipt_key = admitted.receipt_key
        connection.battler, connection.battler_generation = admitted.battler, admitted.battler_generation
        if admitted.role == "audience":
            connection.trail = Trail(client_address(scope), admitted.from_page, 0, now_ms())
            connection.remote = admitted.remote
        here = base_url(websocket, house.settings)
        try:
            await house.hub.enter(connection, here)
        except BaseException:
            await house.hub.leave(connection)
            raise
    await converse(websocket, connection, house, here)


async def _at_the_edge(house: Services, scope: Scope, names_a_code: bool) -> Refusal | None:
    """What the wrappers around the app refuse a page for, in their order: a foreign
    Origin (a socket only), a Host that is not the server's, an address out of failed
    lookups (docs/security.md)."""
    if not house.origins.allow(scope):
        return FOREIGN_ORIGIN
    if not house.hosts.allow(scope):
        return WRONG_HOST_NAME
    wait = await lookup_wait(house.lookups, scope) if names_a_code else 0.0
    return Refusal(429, too_many(), retry_after_s=wait) if wait > 0 else None


async def converse(websocket: WebSocket, connection: Connection, house: Services, here: str) -> None:
    """An entered socket's life: its frames read until it goes, then out of the hub's room."""
    hub, settings = house.hub, house.settings
    limiter = MessageLimiter(settings.message_rate, settings.message_burst, settings.message_flood, time.monotonic())
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            raw = text if text is not None else message.get("bytes") or b""
            verdict = limiter.check(time.monotonic())
            if verdict == "flood":
                await connection.stop()
                with contextlib.suppress(Exception):
                    await websocket.close(1008, "too many messages")
                break
            if verdict == "limited":
                # Dropped unread: only its id is looked up, for the client's sake.
                refusal = Refused("rate_limited")
                connection.send(hub.error(connection.language, refusal, protocol.request_id(raw)))
                continue
            await hub.handle(connection, raw, here)
    except WebSocketDisconnect:
        pass
    finally:
        await hub.leave(connection)
