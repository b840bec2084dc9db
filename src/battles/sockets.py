"""The websocket endpoint and the loop of an accepted socket (docs/architecture.md, Who may
connect)."""

from __future__ import annotations

import contextlib
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from battles import protocol
from battles.admission import Refusal, admit
from battles.errors import Refused
from battles.fanout import Connection
from battles.protocol import PROTOCOL_VERSION
from battles.ratelimit import MessageLimiter
from battles.services import Services, base_url, services


async def socket(websocket: WebSocket) -> None:
    """/ws/ROLE/CODE: admitted or refused at the handshake (battles.admission), then the
    socket's messages, each past the per-socket rate limit, to the hub."""
    house = services(websocket)
    role, code = websocket.path_params["role"], websocket.path_params["code"].upper()
    admitted = await admit(house.store, house.mints, websocket.scope, role, code)
    if isinstance(admitted, Refusal):
        # Refusals are HTTP answers to the handshake, before anything is set up
        # (docs/protocol.md, Connecting).
        await admitted.send(websocket.scope, websocket.send)
        return
    subprotocol = PROTOCOL_VERSION if PROTOCOL_VERSION in websocket.scope.get("subprotocols", []) else None
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
    await converse(websocket, connection, house)


async def converse(websocket: WebSocket, connection: Connection, house: Services) -> None:
    """An accepted socket's life: in the hub's room, its frames read until it goes."""
    hub, settings = house.hub, house.settings
    here = base_url(websocket, settings)
    limiter = MessageLimiter(settings.message_rate, settings.message_burst, settings.message_flood, time.monotonic())
    try:
        await hub.enter(connection, here)
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
