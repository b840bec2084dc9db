"""B0, the ceiling: a bare ``websockets`` server with no game logic.

It does the wire work the engine does with the least server work there is: the same
``welcome``/``snapshot`` on join, a ballot stored with one Redis command and then
acknowledged, a host's ``next`` published once on Redis and broadcast by every
process with ``websockets.broadcast`` (the frame built once, the same bytes to every
socket), live tallies and presence on the same ticks as the engine. No checks, no
state machine, no views per role.

    python -m bench.bare --port P --redis URL --payload FILE   (one process; start two)

Each process binds the port with SO_REUSEPORT, so two of them share one port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import redis.asyncio as aioredis
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.wire import BASELINE_VOTE, encode, peer_update, text, update_sizes

LIVE_TICK_S = 0.1
AUDIENCE_TICK_S = 0.25
PRESENCE_S = 1.0
CHANNEL = "b0:updates"


class Bare:
    def __init__(self, redis_url: str, battle: dict[str, Any]) -> None:
        # The engine's pool: at most 64 connections per process, callers beyond wait.
        self.redis = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=10)
        )
        self.battle = battle
        self.sizes = update_sizes()
        self.process = f"{os.getpid()}"
        self.audience: set[ServerConnection] = set()
        self.staff: set[ServerConnection] = set()
        self.vote_id: str | None = None

    async def handler(self, socket: ServerConnection) -> None:
        assert socket.request is not None
        role = socket.request.path.split("/")[2]
        group = self.audience if role == "audience" else self.staff
        offer = socket.request.headers.get("Sec-WebSocket-Protocol", "")
        device = next((p.strip()[7:] for p in offer.split(",") if p.strip().startswith("device.")), "")
        now = int(time.time() * 1000)
        await socket.send(encode({"type": "welcome", "protocol": "battles.v1", "role": role, "code": "BENCH2",
                                  "server_ms": now, "language": "en", "device": None,
                                  "limits": {"max_message_bytes": 16384, "reaction_cooldown_ms": 800}}))  # fmt: skip
        version = int(await self.redis.get("b0:version") or 0)
        await socket.send(encode({"type": "snapshot", "id": None, "seq": version, "server_ms": now,
                                  "battle": {**self.battle, "version": version}, "tally": None,
                                  "engagement": None, "presence": {}, "my_ballot": None}))  # fmt: skip
        group.add(socket)
        try:
            async for raw in socket:
                message = json.loads(raw)
                reply = await self.on_message(message, device)
                await socket.send(encode(reply))
        finally:
            group.discard(socket)

    async def on_message(self, message: dict[str, Any], device: str) -> dict[str, Any]:
        kind = message["type"]
        if kind == "vote":
            await self.redis.hset(f"b0:ballots:{message['vote_id']}", device, message["choice"])
            return {"type": "ballot", "id": message.get("id"), "vote_id": message["vote_id"],
                    "ballot_id": message["ballot_id"], "choice": message["choice"], "status": "counted"}  # fmt: skip
        # A host's step: bump the version, and publish the update every process sends on.
        if kind == "open_vote":
            await self.redis.set("b0:vote", BASELINE_VOTE)
        version = int(await self.redis.incr("b0:version"))
        now = int(time.time() * 1000)
        update = peer_update(version, now, kind, self.sizes)
        await self.redis.publish(CHANNEL, update)
        return {"type": "ack", "id": message.get("id"), "seq": version}

    async def fan_out(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)
        async for message in pubsub.listen():
            if message["type"] == "message":
                text = message["data"].decode()
                broadcast(self.staff, text)
                broadcast(self.audience, text)

    async def live(self) -> None:
        sent: dict[str, Any] = {}
        audience_sent = 0.0
        while True:
            await asyncio.sleep(LIVE_TICK_S)
            stored = await self.redis.get("b0:vote")
            if stored is None:
                continue
            vote_id = text(stored)
            ballots = int(await self.redis.hlen(f"b0:ballots:{vote_id}"))
            frame = encode({"type": "tally", "vote_id": vote_id, "ballots": ballots, "totals": None})
            if sent.get("staff") != ballots:
                sent["staff"] = ballots
                broadcast(self.staff, frame)
            if time.monotonic() - audience_sent >= AUDIENCE_TICK_S and sent.get("audience") != ballots:
                sent["audience"], audience_sent = ballots, time.monotonic()
                broadcast(self.audience, frame)

    async def presence(self) -> None:
        shown: dict[str, int] = {}
        while True:
            await asyncio.sleep(PRESENCE_S)
            counts = {"audience": len(self.audience), "screen": len(self.staff), "host": 0, "cohost": 0}
            await self.redis.hset("b0:presence", self.process, json.dumps(counts))
            total: dict[str, int] = {}
            for raw in (await self.redis.hgetall("b0:presence")).values():
                for role, n in json.loads(raw).items():
                    total[role] = total.get(role, 0) + n
            if total != shown:
                shown = total
                frame = encode({"type": "presence", **total})
                broadcast(self.staff, frame)
                broadcast(self.audience, frame)


async def main(port: int, redis_url: str, payload: str) -> None:
    with open(payload) as file:
        bare = Bare(redis_url, json.load(file))
    tasks = [asyncio.create_task(job()) for job in (bare.fan_out, bare.live, bare.presence)]
    async with serve(bare.handler, "127.0.0.1", port, reuse_port=True, compression=None, ping_interval=20,
                     ping_timeout=20, max_size=16384):  # fmt: skip
        print("ready", flush=True)
        await asyncio.gather(*tasks)


if __name__ == "__main__":
    from bench.loadgen import raise_open_files

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--payload", required=True)
    args = parser.parse_args()
    raise_open_files()
    uvloop.run(main(args.port, args.redis, args.payload))
