"""Cues from the crew's desk (battles.cues; docs/protocol.md, "Cues from the crew's desk"):
host commands over HTTP and OSC, to real servers on both stores, with a real OSC client."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from battles.cues import osc_address
from battles.settings import Settings
from tests.clients import Client
from tests.helpers import FOUR
from tests.servers import RedisServer, Server, server_on_store


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["embedded", "redis"], scope="module")
def desk_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on each store, its OSC listener on a free UDP port."""
    running = server_on_store(request, tmp_path_factory.mktemp("cues"), osc_listen=f"127.0.0.1:{free_udp_port()}")
    yield running
    running.stop()


def osc_port(server: Server) -> int:
    return int(server.env["BATTLES_OSC_LISTEN"].rpartition(":")[2])


def cue(server: Server, code: str, token: str | None, body: Any) -> httpx.Response:
    """``POST /api/battles/CODE/commands``, as Companion's generic HTTP module sends it."""
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}/api/battles/{code}/commands", content=content, headers=headers, timeout=10)


async def acue(client: httpx.AsyncClient, code: str, token: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/api/battles/{code}/commands", json=body, headers={"authorization": f"Bearer {token}"})


def osc_cue(server: Server, address: str, *arguments: Any, timeout: float = 10) -> OscMessage:
    """One OSC message from a real UDP client, and the listener's reply to its address."""
    client = SimpleUDPClient("127.0.0.1", osc_port(server))
    try:
        client.send_message(address, list(arguments))
        reply = client.receive(timeout)
        assert reply, f"no OSC reply to {address}"
        return OscMessage(reply)
    finally:
        client.close()


async def open_battle(server: Server) -> tuple[dict[str, Any], Client]:
    created = server.create_battle(title="Desk", battlers=FOUR)
    host = await Client.connect(server.ws_url, "host", created["code"], created["host_token"])
    return created, host


async def test_an_http_cue_is_a_console_command_logged_as_its_tokens_and_seen_by_every_socket(
    desk_server: Server,
) -> None:
    created, host = await open_battle(desk_server)
    code = created["code"]
    screen = await Client.connect(desk_server.ws_url, "screen", code, created["screen_token"])
    seq = host.seq
    answer = cue(desk_server, code, created["host_token"], {"type": "start_round", "seq": seq, "id": "deck-1"})
    assert (answer.status_code, answer.json()) == (200, {"type": "ack", "id": "deck-1", "seq": seq + 1})
    assert answer.headers["content-type"] == "application/json"
    # The fan-out: the console and the screen get the update as from a console's command.
    await host.wait_for(lambda battle: battle["version"] == seq + 1)
    await screen.wait_for(lambda battle: battle["version"] == seq + 1 and battle["phase"] == "challenge")
    assert (host.battle["log"][-1]["action"], host.battle["log"][-1]["actor"]) == ("start_round", "host")
    # The co-host's token: the co-host is the actor, and "current" needs no seq known.
    answer = cue(desk_server, code, created["cohost_token"], {"type": "next", "seq": "current"})
    assert (answer.status_code, answer.json()["seq"]) == (200, seq + 2)
    await host.wait_for(lambda battle: battle["version"] == seq + 2)
    assert (host.battle["log"][-1]["action"], host.battle["log"][-1]["actor"]) == ("next", "cohost")
    await host.close()
    await screen.close()


async def test_a_refused_cue_says_why_with_its_status_and_changes_nothing(desk_server: Server) -> None:
    created, host = await open_battle(desk_server)
    await host.run("edit_battle", topic="Cities")  # so that a version before this one exists
    code, token, seq = created["code"], created["host_token"], host.seq
    refusals: list[tuple[str | None, Any, int, str]] = [
        ("wrong-token-123", {"type": "start_round", "seq": seq}, 401, "bad_token"),
        (created["screen_token"], {"type": "start_round", "seq": seq}, 401, "bad_token"),
        (None, {"type": "start_round", "seq": seq}, 401, "bad_token"),
        (token, {"type": "start_round", "seq": seq + 5}, 409, "conflict"),
        (token, {"type": "start_round", "seq": seq - 1}, 409, "conflict"),
        (token, {"type": "open_vote", "seq": seq}, 409, "wrong_phase"),
        (token, b"{not json", 422, "bad_json"),
        (token, b"\xff\xfe", 422, "bad_json"),
        (token, {"type": "launch", "seq": seq}, 422, "unknown_type"),
        (token, {"type": "start_round"}, 422, "seq_required"),
        (token, {"type": "start_round", "seq": str(seq)}, 422, "seq_required"),
        (token, {"type": "start_round", "seq": "Current"}, 422, "seq_required"),
        (token, {"type": "extend_timer", "seq": seq, "seconds": "30"}, 422, "bad_message"),
        (token, {"type": "edit_battle", "seq": seq, "title": "x" * 5000}, 422, "bad_message"),
        (token, {"type": "moderate", "submission": "s1", "action": "approve"}, 403, "not_a_cue"),
        (token, {"type": "ping", "t": 1}, 403, "not_a_cue"),
        (created["cohost_token"], {"type": "revoke_cohost", "seq": seq}, 403, "not_allowed"),
    ]
    for given, body, status, reason in refusals:
        answer = cue(desk_server, code, given, body)
        assert (answer.status_code, answer.json()["type"], answer.json()["reason"]) == (status, "error", reason), (
            body,
            answer.text,
        )
        assert answer.json()["message"]
    assert cue(desk_server, code, token, {"type": "start_round", "seq": seq + 5}).json()["params"] == {"version": seq}
    assert cue(desk_server, "NOSUCH", token, {"type": "next", "seq": 0}).status_code == 404
    assert cue(desk_server, code, token, b" " * (Settings().max_message_bytes + 1)).status_code == 413
    # Nothing of it changed the battle.
    battle = httpx.get(f"{desk_server.url}/api/battles/{code}").json()
    assert (battle["version"], battle["phase"], battle["title"]) == (seq, "lobby", "Desk")
    await host.close()


async def test_a_revoked_co_host_token_opens_no_desk_and_the_new_one_does(desk_server: Server) -> None:
    created, host = await open_battle(desk_server)
    code, old = created["code"], created["cohost_token"]
    cohost = await Client.connect(desk_server.ws_url, "host", code, old)
    revoked = cue(desk_server, code, created["host_token"], {"type": "revoke_cohost", "seq": "current"})
    # As on the socket, the ack of a revocation carries the new links, to the host who asked.
    assert revoked.status_code == 200 and revoked.json()["seq"] == host.seq + 1
    new = revoked.json()["links"]["cohost"].split("#", 1)[1]
    assert new != old
    refused = cue(desk_server, code, old, {"type": "start_round", "seq": "current"})
    assert (refused.status_code, refused.json()["reason"]) == (401, "bad_token")
    assert cue(desk_server, code, new, {"type": "start_round", "seq": "current"}).status_code == 200
    await host.wait_for(lambda battle: battle["phase"] == "challenge")
    assert [(e["action"], e["actor"]) for e in host.battle["log"][-2:]] == [
        ("revoke_cohost", "host"),
        ("start_round", "cohost"),
    ]
    await host.close()
    await cohost.close()


def test_a_desk_sending_faster_than_a_socket_may_is_refused_and_changes_nothing(desk_server: Server) -> None:
    created = desk_server.create_battle(title="Fast", battlers=FOUR)
    # An address of its own (named through the trusted proxy header): its own budget.
    headers = {"authorization": f"Bearer {created['host_token']}", "x-forwarded-for": "100.64.250.7"}
    burst, answers = Settings().message_burst, []
    with httpx.Client(base_url=desk_server.url, timeout=10) as client:
        for _ in range(burst + 40):
            # open_vote in the lobby: refused by the rules, so nothing changes either way.
            answer = client.post(
                f"/api/battles/{created['code']}/commands", json={"type": "open_vote", "seq": 0}, headers=headers
            )
            answers.append((answer.status_code, answer.json()["reason"]))
    assert set(answers[:burst]) == {(409, "wrong_phase")}
    assert (429, "rate_limited") in answers[burst:]
    assert set(answers) == {(409, "wrong_phase"), (429, "rate_limited")}
    assert httpx.get(f"{desk_server.url}/api/battles/{created['code']}").json()["version"] == 0


async def test_a_cue_and_the_consoles_command_on_the_same_seq_are_never_both_applied(desk_server: Server) -> None:
    """The race of docs/protocol.md: a cue decided on a version (a number, or "current")
    and the console's command on the same version, at once: exactly one is applied."""
    created, host = await open_battle(desk_server)
    code, token = created["code"], created["host_token"]
    await host.run("start_round")
    await host.run("next")  # the first turn: its clock runs, and extend_timer may repeat
    # A fresh schedule each run; a failure names the seed, BATTLES_TEST_SEED=N replays it.
    top = int(os.environ.get("BATTLES_TEST_SEED") or random.randrange(1 << 30))
    rng, applied = random.Random(top), 0
    async with httpx.AsyncClient(base_url=desk_server.url, timeout=10) as client:
        for seed in [rng.randrange(2**31) for _ in range(12)]:
            order = random.Random(seed)
            seq = host.seq
            body = {"type": "extend_timer", "seq": order.choice([seq, "current"]), "seconds": 5}

            async def console() -> dict[str, Any]:
                await asyncio.sleep(order.uniform(0, 0.01))
                return await host.request({"type": "extend_timer", "seq": seq, "seconds": 5})

            async def desk() -> dict[str, Any]:
                await asyncio.sleep(order.uniform(0, 0.01))
                return (await acue(client, code, token, body)).json()

            replies = await asyncio.gather(console(), desk())
            kinds = sorted(reply["type"] for reply in replies)
            applied += kinds.count("ack")
            current = httpx.get(f"{desk_server.url}/api/battles/{code}").json()["version"]
            if body["seq"] == "current" and kinds == ["ack", "ack"]:
                # The cue read the version after the console's command landed: one after the
                # other, each on its own version, as two clicks would be (docs/protocol.md).
                assert sorted(r["seq"] for r in replies) == [seq + 1, seq + 2], f"BATTLES_TEST_SEED={top}, round {seed}"
            else:
                assert kinds == ["ack", "error"], f"BATTLES_TEST_SEED={top}, round {seed}: {replies}"
                refused = next(r for r in replies if r["type"] == "error")
                assert refused["reason"] == "conflict" and current == seq + 1, (
                    f"BATTLES_TEST_SEED={top}, round {seed}: {replies}"
                )
            await host.wait_for(lambda battle: battle["version"] == current)
    # Every command acknowledged is in the log once, and nothing refused is.
    assert sum(e["action"] == "extend_timer" for e in host.battle["log"]) == applied
    await host.close()


async def test_a_double_press_of_a_fixed_button_runs_twice_only_one_after_the_other(desk_server: Server) -> None:
    created, host = await open_battle(desk_server)
    code, token, seq = created["code"], created["host_token"], host.seq
    body = {"type": "edit_battle", "seq": "current", "title": "Pressed"}
    async with httpx.AsyncClient(base_url=desk_server.url, timeout=10) as client:
        # At once, both read the same version: the store's compare-and-set lets one in.
        replies = [r.json() for r in await asyncio.gather(*(acue(client, code, token, body) for _ in range(2)))]
    kinds = sorted(r["type"] for r in replies)
    battle = httpx.get(f"{desk_server.url}/api/battles/{code}").json()
    assert kinds in (["ack", "error"], ["ack", "ack"])
    assert battle["version"] == seq + kinds.count("ack")
    if "error" in kinds:
        assert next(r for r in replies if r["type"] == "error")["reason"] == "conflict"
    await host.close()


async def test_an_osc_cue_from_a_real_client_is_answered_to_its_address(desk_server: Server) -> None:
    created, host = await open_battle(desk_server)
    code, token, seq = created["code"], created["host_token"], host.seq
    reply = await asyncio.to_thread(osc_cue, desk_server, f"/battles/{code}/start_round", token, "current")
    assert (reply.address, reply.params) == (f"/battles/{code}/ack", [seq + 1])
    await host.wait_for(lambda battle: battle["version"] == seq + 1)
    assert (host.battle["log"][-1]["action"], host.battle["log"][-1]["actor"]) == ("start_round", "host")
    # Fields as name and value pairs, a numeric seq, an id; the co-host's token.
    reply = await asyncio.to_thread(
        osc_cue, desk_server, f"/battles/{code.lower()}/next", created["cohost_token"], seq + 1, "id", "eos-7"
    )
    assert (reply.address, reply.params) == (f"/battles/{code}/ack", [seq + 2, "eos-7"])
    reply = await asyncio.to_thread(
        osc_cue, desk_server, f"/battles/{code}/extend_timer", token, "current", "seconds", 45
    )
    assert reply.params == [seq + 3]
    await host.wait_for(lambda battle: battle["version"] == seq + 3)
    assert host.battle["log"][-1]["actor"] == "host"

    refusals = [
        ((f"/battles/{code}/next", "not-the-token", "current"), "bad_token"),
        ((f"/battles/{code}/next", token, seq), "conflict"),
        ((f"/battles/{code}/next", token), "seq_required"),
        ((f"/battles/{code}/next", token, "current", "seconds"), "bad_message"),
        ((f"/battles/{code}/next", token, "current", "type", "revoke_cohost"), "bad_message"),
        ((f"/battles/{code}/next", token, "current", "seq", seq), "bad_message"),
        ((f"/battles/{code}/extend_timer", token, "current", "seconds", "45"), "bad_message"),
        ((f"/battles/{code}/launch", token, "current"), "unknown_type"),
        ((f"/battles/{code}/moderate", token, "current", "submission", "s1", "action", "approve"), "not_a_cue"),
        (("/battles/NOSUCH/next", token, "current"), "no_battle"),
    ]
    for (address, *arguments), reason in refusals:
        reply = await asyncio.to_thread(osc_cue, desk_server, address, *arguments)
        # Answered at the battle the address names, however the cue was wrong.
        named = address.split("/")[2]
        assert (reply.address, reply.params[0]) == (f"/battles/{named}/error", reason), (address, reply)
        assert isinstance(reply.params[1], str) and reply.params[1]
    reply = await asyncio.to_thread(osc_cue, desk_server, "/lights/1/level", 5)
    assert (reply.address, reply.params[0]) == ("/battles/error", "unknown_type")
    battle = httpx.get(f"{desk_server.url}/api/battles/{code}").json()
    assert battle["version"] == seq + 3
    await host.close()


@pytest.fixture(params=["embedded", "redis-two-processes"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Server]]:
    """The embedded store's one process, or two processes sharing the tests' Redis."""
    if request.param == "embedded":
        servers = [Server(f"sqlite:///{tmp_path / 'battles.sqlite3'}", tmp_path / "server.log")]
    else:
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        redis_server.start()
        redis_server.flush()
        servers = [Server(redis_server.url, tmp_path / f"server-{n}.log") for n in (1, 2)]
    yield [server.start() for server in servers]
    for server in servers:
        server.stop()


async def test_a_whole_evening_runs_on_http_cues_alone(deployment: list[Server]) -> None:
    """No console: every step of three rounds is a fixed button's body ("current"), sent to
    each process in turn; five phones vote and every screen follows."""
    first = deployment[0]
    created = first.create_battle(title="Desk only", battlers=FOUR, rules={"vote_seconds": 300})
    code, token = created["code"], created["cohost_token"]
    screens = [await s.connect("screen", code, created["screen_token"]) for s in deployment]
    phones = [await deployment[n % len(deployment)].connect("audience", code) for n in range(5)]
    presses = 0

    async def press(kind: str) -> None:
        nonlocal presses
        server = deployment[presses % len(deployment)]
        presses += 1
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            answer = await acue(client, code, token, {"type": kind, "seq": "current"})
        assert answer.status_code == 200, answer.text
        for screen in screens:
            await screen.wait_for(lambda battle: battle["version"] >= answer.json()["seq"])

    plans = [{"b1": 2, "b2": 2, "b3": 1, "b4": 0}, {"b1": 3, "b2": 2, "b3": 0}, {"b1": 3, "b2": 2}]
    leaving = [["b4"], ["b3"], ["b2"]]
    for plan, out in zip(plans, leaving, strict=True):
        await press("start_round")
        while screens[0].battle["phase"] != "vote":
            await press("next")
        await press("open_vote")
        vote_id = screens[0].battle["rounds"][-1]["votes"][-1]["id"]
        choices = [choice for choice, count in plan.items() for _ in range(count)]
        ballots = await asyncio.gather(*(p.vote(vote_id, c) for p, c in zip(phones, choices, strict=True)))
        assert {b["status"] for b in ballots} == {"counted"}
        for kind in ("close_vote", "reveal_results", "confirm_elimination"):
            await press(kind)
        assert screens[-1].battle["rounds"][-1]["votes"][-1]["totals"] == plan
        assert screens[-1].battle["rounds"][-1]["eliminated"] == out
    assert (screens[0].battle["winner"], screens[-1].battle["winner"]) == ("b1", "b1")
    await press("end_battle")
    exported = httpx.get(
        f"{first.url}/api/battles/{code}/export.json", headers={"authorization": f"Bearer {created['host_token']}"}
    ).json()["battle"]
    cued = [entry for entry in exported["log"] if entry["actor"] == "cohost"]
    assert len(cued) == presses and not any(entry["actor"] == "host" for entry in exported["log"][1:])
    for client in [*screens, *phones]:
        await client.close()


def test_with_two_workers_every_osc_cue_is_answered_once(redis_server: RedisServer, tmp_path: Any) -> None:
    """Both workers bind the listener (SO_REUSEPORT), the kernel hands each datagram to one:
    every cue from many senders is answered once and applied once."""
    redis_server.start()
    server = Server(redis_server.url, tmp_path / "server.log", workers=2, osc_listen=f"127.0.0.1:{free_udp_port()}")
    server.start()
    try:
        created = server.create_battle(title="Two", battlers=FOUR)
        code, token = created["code"], created["host_token"]
        start = httpx.get(f"{server.url}/api/battles/{code}").json()["version"]
        replies = [
            osc_cue(server, f"/battles/{code}/edit_battle", token, "current", "title", f"Take {n}") for n in range(12)
        ]
        assert [r.params for r in replies] == [[start + n + 1] for n in range(12)]
        battle = httpx.get(f"{server.url}/api/battles/{code}").json()
        assert (battle["version"], battle["title"]) == (start + 12, "Take 11")
        # Both workers hold the listener: neither failed to bind it.
        log = server.log_path.read_text()
        assert log.count("OSC cues on udp") == 2 and "Traceback" not in log
    finally:
        server.stop()


def test_the_osc_address_is_a_host_and_a_port() -> None:
    assert osc_address("127.0.0.1:53100") == ("127.0.0.1", 53100)
    assert osc_address("[::1]:53100") == ("::1", 53100)
    assert Settings(osc_listen="desk.local:9000").osc_listen == "desk.local:9000"
    assert Settings().osc_listen is None  # off by default
    for wrong in ("53100", "127.0.0.1", "127.0.0.1:port", "::1:53100", "a b:1"):
        with pytest.raises(ValidationError):
            Settings(osc_listen=wrong)
