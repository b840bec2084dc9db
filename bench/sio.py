"""P1, the peer: python-socketio on uvicorn with its ``AsyncRedisManager``.

This is how ClassQuiz serves its games: ``socketio.AsyncServer(async_mode="asgi",
client_manager=socketio.AsyncRedisManager(url))`` in an ``ASGIApp`` on uvicorn,
workers sharing Redis. It does the same work as B0 and the engine with the same JSON:
``welcome`` and ``snapshot`` on join, a ballot stored with one Redis command and then
acknowledged (a Socket.IO ack), a host's ``next`` emitted to the battle's room through
the Redis manager (so every worker sends it to its sockets), live tallies and presence
on the same ticks, each worker sending them to its own sockets (``ignore_queue``).

    uvicorn bench.sio:create_app --factory --workers 2   (BENCH_REDIS, BENCH_PAYLOAD set)
"""

# python-socketio's decorators are untyped.
# mypy: disable-error-code="untyped-decorator"
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

import redis.asyncio as aioredis
import socketio

from bench.wire import BASELINE_VOTE, CODE, peer_update, text, update_sizes

LIVE_TICK_S = 0.1
AUDIENCE_TICK_S = 0.25
PRESENCE_S = 1.0


def create_app() -> socketio.ASGIApp:
    redis_url = os.environ["BENCH_REDIS"]
    with open(os.environ["BENCH_PAYLOAD"]) as file:
        battle: dict[str, Any] = json.load(file)
    sizes = update_sizes()
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=socketio.AsyncRedisManager(redis_url),
        transports=["websocket"],
        ping_interval=20,
        ping_timeout=20,
        cors_allowed_origins="*",
    )
    # The engine's pool: at most 64 connections per process, callers beyond wait.
    redis = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=10)
    )
    process = str(os.getpid())
    devices: dict[str, str] = {}
    counts = {"audience": 0, "screen": 0, "host": 0, "cohost": 0}
    started: list[bool] = []

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        role = query.get("role", "audience")
        devices[sid] = query.get("device", sid)
        counts[role] = counts.get(role, 0) + 1
        await sio.enter_room(sid, CODE)
        await sio.enter_room(sid, "audience" if role == "audience" else "staff")
        await sio.save_session(sid, {"role": role})
        if not started:
            started.append(True)
            sio.start_background_task(live)
            sio.start_background_task(presence)
        now = int(time.time() * 1000)
        await sio.emit("welcome", {"type": "welcome", "protocol": "battles.v1", "role": role, "code": CODE,
                                   "server_ms": now, "language": "en", "device": None,
                                   "limits": {"max_message_bytes": 16384, "reaction_cooldown_ms": 800}}, to=sid)  # fmt: skip
        version = int(await redis.get("p1:version") or 0)
        await sio.emit("snapshot", {"type": "snapshot", "id": None, "seq": version, "server_ms": now,
                                    "battle": {**battle, "version": version}, "tally": None, "engagement": None,
                                    "presence": {}, "my_ballot": None}, to=sid)  # fmt: skip

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        session = await sio.get_session(sid)
        counts[session.get("role", "audience")] -= 1
        devices.pop(sid, None)

    @sio.event
    async def vote(sid: str, message: dict[str, Any]) -> dict[str, Any]:
        await redis.hset(f"p1:ballots:{message['vote_id']}", devices[sid], message["choice"])
        return {"type": "ballot", "id": message.get("id"), "vote_id": message["vote_id"],
                "ballot_id": message["ballot_id"], "choice": message["choice"], "status": "counted"}  # fmt: skip

    async def step(message: dict[str, Any]) -> dict[str, Any]:
        if message["type"] == "open_vote":
            await redis.set("p1:vote", BASELINE_VOTE)
        version = int(await redis.incr("p1:version"))
        now = int(time.time() * 1000)
        await sio.emit("update", json.loads(peer_update(version, now, message["type"], sizes)), room=CODE)
        return {"type": "ack", "id": message.get("id"), "seq": version}

    @sio.on("next")
    async def next_step(sid: str, message: dict[str, Any]) -> dict[str, Any]:
        return await step(message)

    @sio.on("open_vote")
    async def open_vote(sid: str, message: dict[str, Any]) -> dict[str, Any]:
        return await step(message)

    async def live() -> None:
        sent: dict[str, int] = {}
        audience_sent = 0.0
        while True:
            await asyncio.sleep(LIVE_TICK_S)
            stored = await redis.get("p1:vote")
            if stored is None:
                continue
            vote_id = text(stored)
            ballots = int(await redis.hlen(f"p1:ballots:{vote_id}"))
            tally = {"type": "tally", "vote_id": vote_id, "ballots": ballots, "totals": None}
            if sent.get("staff") != ballots:
                sent["staff"] = ballots
                await sio.emit("tally", tally, room="staff", ignore_queue=True)
            if time.monotonic() - audience_sent >= AUDIENCE_TICK_S and sent.get("audience") != ballots:
                sent["audience"], audience_sent = ballots, time.monotonic()
                await sio.emit("tally", tally, room="audience", ignore_queue=True)

    async def presence() -> None:
        shown: dict[str, int] = {}
        while True:
            await asyncio.sleep(PRESENCE_S)
            await redis.hset("p1:presence", process, json.dumps(counts))
            total: dict[str, int] = {}
            for raw in (await redis.hgetall("p1:presence")).values():
                for role, n in json.loads(raw).items():
                    total[role] = total.get(role, 0) + n
            if total != shown:
                shown = total
                await sio.emit("presence", {"type": "presence", **total}, room=CODE, ignore_queue=True)

    return socketio.ASGIApp(sio)
