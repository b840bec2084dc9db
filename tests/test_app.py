"""The HTTP API, the pages and bad input, on a real server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.clients import Client
from tests.servers import Server

MARKUP = "<img src=x onerror=alert(1)>"
BATTLERS = [
    {"name": MARKUP, "vision": "<script>alert('v')</script>"},
    {"name": "Bo", "vision": "Every roof a forest"},
    {"name": "Camille", "vision": "A four-day week"},
]


def test_healthz_says_the_store_is_reachable(server: Server) -> None:
    response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["store"] == "reachable"


def test_creating_a_battle_answers_with_its_code_and_links(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS, language="da", rules={"vote_mode": "out"})
    code = created["code"]
    assert len(code) == 6 and code.isalnum()
    assert created["links"]["join"] == f"{server.url}/join/{code}"
    assert created["links"]["host"].startswith(f"{server.url}/host/{code}#")
    assert len(created["host_token"]) >= 40 and created["host_token"] != created["screen_token"]
    public = httpx.get(f"{server.url}/api/battles/{code}").json()
    assert public["language"] == "da" and public["rules"]["vote_mode"] == "out"
    assert "log" not in public


@pytest.mark.parametrize(
    "draft, problem",
    [
        ({"battlers": []}, "title"),
        ({"title": "T", "rules": {"vote_mode": "loudest"}}, "vote_mode"),
        ({"title": "T", "rules": {"turn_seconds": 0}}, "turn_seconds"),
        ({"title": "x" * 500}, "title"),
        ({"title": "T", "admin": True}, "admin"),
    ],
)
def test_a_bad_battle_is_refused_with_the_reason(server: Server, draft: dict[str, object], problem: str) -> None:
    response = httpx.post(f"{server.url}/api/battles", json=draft)
    assert response.status_code == 422
    assert problem in json.dumps(response.json()["details"])


def test_an_oversized_request_body_is_refused(server: Server) -> None:
    response = httpx.post(f"{server.url}/api/battles", content=b"{" + b" " * 70_000 + b"}")
    assert response.status_code == 413


def test_the_export_needs_the_host_token_or_the_results_token(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS)
    url = f"{server.url}/api/battles/{created['code']}/export.json"
    results_token = created["links"]["results"].split("#", 1)[1]
    assert httpx.get(url).status_code == 401
    for token in (created["screen_token"], created["cohost_token"], "wrong"):
        assert httpx.get(url, headers={"authorization": f"Bearer {token}"}).status_code == 401
    for token in (created["host_token"], results_token):
        assert httpx.get(url, headers={"authorization": f"Bearer {token}"}).status_code == 200
    assert httpx.get(f"{server.url}/api/battles/NOPE22/export.json").status_code == 404


async def test_the_results_link_does_not_carry_the_host_token_nor_open_the_console(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS)
    results_token = created["links"]["results"].split("#", 1)[1]
    assert created["links"]["results"] == f"{server.url}/results/{created['code']}#{results_token}"
    assert len(results_token) >= 43  # 256 bits
    assert results_token not in (created["host_token"], created["cohost_token"], created["screen_token"])
    for role in ("host", "cohost", "screen"):
        with pytest.raises(InvalidStatus) as refused:
            await Client.connect(server.ws_url, role, created["code"], results_token)
        assert refused.value.response.status_code == 401
    # A battle's results token reads only that battle's export.
    other = server.create_battle(title="Other", battlers=BATTLERS)
    response = httpx.get(
        f"{server.url}/api/battles/{other['code']}/export.json", headers={"authorization": f"Bearer {results_token}"}
    )
    assert response.status_code == 401


def test_markup_in_names_comes_back_as_text_on_every_page(server: Server) -> None:
    created = server.create_battle(title=f"Title {MARKUP}", battlers=BATTLERS)
    for page in ("join", "screen", "host", "results"):
        response = httpx.get(f"{server.url}/{page}/{created['code']}")
        assert response.status_code == 200
        assert MARKUP not in response.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    # The API is data: it returns the name exactly as typed, for pages to show as text.
    public = httpx.get(f"{server.url}/api/battles/{created['code']}").json()
    assert public["battlers"][0]["name"] == MARKUP


def test_the_qr_code_encodes_the_join_link(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS)
    response = httpx.get(f"{server.url}/qr/{created['code']}.svg")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.lstrip().startswith("<svg")


async def test_bad_messages_get_a_clear_error_and_the_socket_stays_usable(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS)
    code = created["code"]
    host = await Client.connect(server.ws_url, "host", code, created["host_token"])
    phone = await Client.connect(server.ws_url, "audience", code)

    await phone.socket.send("{not json")
    assert (await phone.expect("error"))["reason"] == "bad_json"
    assert (await phone.request({"type": "teleport"}))["reason"] == "unknown_type"
    refused = await phone.request({"type": "start_round", "seq": phone.seq})
    assert refused["reason"] == "not_allowed" and refused["message"]
    assert (await phone.request({"type": "react", "kind": "tomato"}))["reason"] == "bad_message"
    assert (await host.request({"type": "next"}))["reason"] == "seq_required"
    assert (await host.request({"type": "vote", "vote_id": "r1v1", "choice": "b1", "ballot_id": "abcdefgh"}))["reason"] == "not_allowed"
    assert (await host.command("next"))["reason"] == "wrong_phase"
    assert host.battle["version"] == 0  # nothing changed

    vote_id = await _open_vote(host)
    assert (await phone.vote(vote_id, "b9"))["reason"] == "bad_choice"
    assert (await phone.vote("r7v1", "b1"))["reason"] == "wrong_vote"
    assert (await phone.vote(vote_id, "b1"))["status"] == "counted"
    await host.run("close_vote")
    late = await phone.vote(vote_id, "b2")
    assert late["reason"] == "vote_closed"
    # Errors come in the connection's language.
    assert (await phone.request({"type": "set_language", "language": "da"}))["type"] == "ack"
    assert (await phone.vote(vote_id, "b2"))["message"] == "Afstemningen er lukket."
    await host.run("reveal_results")
    assert host.battle["rounds"][-1]["votes"][-1]["totals"] == {"b1": 1, "b2": 0, "b3": 0}
    # The pong still flows: the socket survived every refusal.
    assert (await phone.request({"type": "ping", "t": 1.5}))["type"] == "pong"


async def test_a_vote_for_an_eliminated_battler_is_refused(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS)
    host = await Client.connect(server.ws_url, "host", created["code"], created["host_token"])
    phone = await Client.connect(server.ws_url, "audience", created["code"])
    await _open_vote(host)
    await host.run("close_vote")
    await host.run("reveal_results")
    await host.run("override_elimination", battlers=["b2"], reason="test")
    vote_id = await _open_vote(host)
    assert (await phone.vote(vote_id, "b2"))["reason"] == "bad_choice"


async def test_an_oversized_frame_closes_the_socket_with_1009(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS)
    phone = await Client.connect(server.ws_url, "audience", created["code"])
    await phone.socket.send(json.dumps({"type": "set_nickname", "nickname": "x" * 40_000}))
    async with asyncio.timeout(5):
        await phone.socket.wait_closed()
    assert phone.socket.close_code == 1009


async def test_wrong_tokens_and_unknown_battles_are_refused_at_the_handshake(server: Server) -> None:
    created = server.create_battle(title="T", battlers=BATTLERS)
    code = created["code"]
    for role, offer in [
        ("host", ["battles.v1"]),
        ("host", ["battles.v1", f"auth.{created['screen_token']}"]),
        ("screen", ["battles.v1", "auth.guess"]),
        ("admin", ["battles.v1"]),
    ]:
        with pytest.raises(InvalidStatus):
            await connect(f"{server.ws_url}/ws/{role}/{code}", subprotocols=offer)  # type: ignore[list-item]
    with pytest.raises(InvalidStatus):
        await connect(f"{server.ws_url}/ws/audience/NOPE22")


async def _open_vote(host: Client) -> str:
    if host.battle["phase"] in ("lobby", "elimination"):
        await host.run("start_round")
    while host.battle["phase"] in ("challenge", "turn", "debate"):
        await host.run("next")
    await host.run("open_vote")
    return str(host.battle["rounds"][-1]["votes"][-1]["id"])
