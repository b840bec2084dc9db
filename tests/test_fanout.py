"""battles.fanout on the wire, under a real `battles serve`: no compression, whole frames in order."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from tests.clients import Client
from tests.helpers import FOUR
from tests.servers import Server


async def test_per_message_compression_is_declined_when_a_client_offers_it(server: Server) -> None:
    created = server.create_battle(title="Plain frames", battlers=FOUR)
    # websockets offers permessage-deflate by default; a frame built once for every
    # socket cannot be compressed per socket, so the server must not take the offer.
    async with connect(f"{server.ws_url}/ws/audience/{created['code']}", subprotocols=["battles.v1"]) as socket:  # type: ignore[list-item]
        assert socket.response is not None
        assert "Sec-WebSocket-Extensions" not in socket.response.headers
        assert json.loads(await socket.recv())["type"] == "welcome"
        assert json.loads(await socket.recv())["type"] == "snapshot"


async def test_every_phone_gets_every_update_whole_and_in_order(server: Server) -> None:
    created = server.create_battle(title="In order", battlers=FOUR)
    code = created["code"]
    host = await Client.connect(server.ws_url, "host", code, created["host_token"])
    phones = list(await asyncio.gather(*(Client.connect(server.ws_url, "audience", code) for _ in range(30))))
    await host.run("start_round")
    for _ in range(4):
        await host.run("next")
    for phone in phones:
        seqs = []
        while len(seqs) < 5:
            update = await phone.expect("update")
            seqs.append(update["seq"])
            assert update["base"] == update["seq"] - 1 and update["patch"]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
    for client in [host, *phones]:
        await client.close()


async def test_a_text_frame_that_is_not_utf8_is_closed_with_1007_and_one_short_log_line(server: Server) -> None:
    """uvicorn logged a traceback at ERROR for every such frame: a log flood anyone could
    start. It is a client's mistake, answered 1007 (RFC 6455, 7.4.1) and logged in one line."""
    created = server.create_battle(title="Not UTF-8", battlers=FOUR)
    logged = server.log_path.stat().st_size
    url = f"{server.ws_url}/ws/audience/{created['code']}"
    async with connect(url, subprotocols=["battles.v1"], compression=None) as socket:  # type: ignore[list-item]
        assert json.loads(await socket.recv())["type"] == "welcome"
        assert json.loads(await socket.recv())["type"] == "snapshot"
        # websockets' client only sends valid text: the frame is written as raw bytes,
        # masked as a client's must be.
        socket.transport.write(Frame(Opcode.TEXT, b'{"type": "ping", "t": "\xff\xfe"}').serialize(mask=True))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                async for _ in socket:
                    pass
    assert socket.close_code == 1007
    await asyncio.sleep(0.2)
    log = server.log_path.read_bytes()[logged:].decode()
    assert "Traceback" not in log and "ERROR" not in log, log
    told = [line for line in log.splitlines() if "UTF-8" in line]
    assert len(told) == 1 and len(told[0]) < 200, log
