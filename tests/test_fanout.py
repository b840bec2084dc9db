"""battles.fanout on the wire, under a real `battles serve`: no compression, whole frames in order."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

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
            assert {"op": "replace", "path": "/version", "value": update["seq"]} in update["patch"]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
    for client in [host, *phones]:
        await client.close()
