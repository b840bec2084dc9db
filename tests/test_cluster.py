"""Two server processes on one real Redis (started by the tests on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.clients import Client
from tests.helpers import FOUR, to_the_vote
from tests.servers import RedisServer, Server


def vote_status(battle: dict[str, Any]) -> str | None:
    """The status of the round's newest vote, as a client sees it (None before one opens)."""
    votes = battle["rounds"][-1]["votes"] if battle["rounds"] else []
    return str(votes[-1]["status"]) if votes else None


async def test_a_ballot_cast_on_one_process_reaches_a_screen_on_the_other(two_servers: tuple[Server, Server]) -> None:
    one, two = two_servers
    created = one.create_battle(title="Two halls, one Redis", battlers=FOUR, rules={"live_totals": True})
    code = created["code"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])
    screen = await Client.connect(two.ws_url, "screen", code, created["screen_token"])
    phone = await Client.connect(one.ws_url, "audience", code)

    # A host command on process one reaches the screen on process two (pub/sub).
    vote_id = await to_the_vote(host)
    await screen.wait_for(lambda b: vote_status(b) == "open")
    assert screen.seq == host.seq

    # The ballot, acknowledged by process one, shows on the screen of process two.
    assert (await phone.vote(vote_id, "b3"))["status"] == "counted"
    tally = await screen.expect("tally", lambda m: m["ballots"] == 1)
    assert tally["totals"] == {"b1": 0, "b2": 0, "b3": 1, "b4": 0}
    await screen.until_presence(audience=1, host=1, screen=1)


async def test_a_vote_closes_exactly_once_across_processes(two_servers: tuple[Server, Server]) -> None:
    one, _ = two_servers
    created = one.create_battle(title="Timers", battlers=FOUR, rules={"vote_seconds": 5})
    code = created["code"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])
    # A screen on each process keeps the battle live in both, so both timer loops watch it.
    screens = [await Client.connect(s.ws_url, "screen", code, created["screen_token"]) for s in two_servers]
    await to_the_vote(host)
    await host.close()
    for screen in screens:
        await screen.wait_for(lambda b: vote_status(b) == "closed", timeout=10)
    await asyncio.sleep(0.5)  # give a second closer every chance to show up
    log = httpx.get(
        f"{one.url}/api/battles/{code}/export.json", headers={"authorization": f"Bearer {created['host_token']}"}
    ).json()["battle"]["log"]
    closes = [entry for entry in log if entry["action"] == "close_vote"]
    assert [entry["actor"] for entry in closes] == ["timer"]


async def test_a_device_reacts_once_per_cooldown_across_processes(redis_server: RedisServer, tmp_path: Path) -> None:
    # The cooldown is the device's (docs/protocol.md, react), not the socket's: before, every
    # socket of a device had its own. A device holds one socket in the whole hall, so the
    # cooldown follows it to the other process (a phone whose tab moved there).
    one, two = (
        Server(redis_server.url, tmp_path / f"server-{n}.log", reaction_cooldown_ms=5000).start() for n in (1, 2)
    )
    try:
        created = one.create_battle(title="One device, two processes", battlers=FOUR)
        code = created["code"]
        host = await Client.connect(one.ws_url, "host", code, created["host_token"])
        await host.run("start_round")
        await host.run("next")  # b1 speaks
        here = await Client.connect(one.ws_url, "audience", code)
        await here.send({"type": "react", "kind": "applause"})

        def reactions(meter: dict[str, Any]) -> int:
            return sum(meter["battlers"].get("b1", {}).get("counts", {}).values())

        await host.expect("engagement", lambda m: reactions(m) == 1)
        there = await Client.connect(two.ws_url, "audience", code, device=here.device)
        await there.send({"type": "react", "kind": "fire"})
        refused = await there.expect("error")
        assert refused["reason"] == "cooldown" and 0 < refused["params"]["wait_ms"] <= 5000, refused
        with pytest.raises(TimeoutError):  # live ticks are 50 ms in the tests
            await host.expect("engagement", lambda m: reactions(m) > 1, timeout=0.5)
        await asyncio.gather(*(client.close() for client in (host, here, there)))
    finally:
        one.stop()
        two.stop()


async def test_a_device_has_one_socket_in_the_whole_hall(two_servers: tuple[Server, Server]) -> None:
    # Seen on main before: a phone's second tab on the other process was not replaced (no
    # 4409), and the hall counted the device once on each process.
    one, two = two_servers
    created = one.create_battle(title="One phone, two tabs", battlers=FOUR)
    code = created["code"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])
    first = await Client.connect(one.ws_url, "audience", code)
    await host.until_presence(audience=1)
    second = await Client.connect(two.ws_url, "audience", code, device=first.device)
    async with asyncio.timeout(5):
        await first.socket.wait_closed()
    assert first.socket.close_code == 4409
    await host.until_presence(audience=1)
    assert second.socket.close_code is None

    # Two more tabs of the device in the same instant, one on each process: one of the three
    # sockets stays, whichever entered last in the order every process hears it (a tab may be
    # replaced before its snapshot: these read what comes, not a whole join).
    offer = ["battles.v1", f"device.{first.device}"]
    tabs = [
        second.socket,
        *await asyncio.gather(*(connect(f"{s.ws_url}/ws/audience/{code}", subprotocols=offer) for s in (one, two))),
    ]  # type: ignore[arg-type]
    readers = [asyncio.create_task(drain(tab)) for tab in tabs[1:]]
    async with asyncio.timeout(5):
        while sum(tab.close_code is None for tab in tabs) > 1:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # and no later announcement closes the last one
    assert [tab.close_code for tab in tabs].count(None) == 1
    assert all(tab.close_code in (None, 4409) for tab in tabs)
    await host.until_presence(audience=1)
    for tab in tabs:
        await tab.close()
    await asyncio.gather(*readers)
    await asyncio.gather(*(client.close() for client in (host, first, second)))


async def drain(socket: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async for _ in socket:
            pass
