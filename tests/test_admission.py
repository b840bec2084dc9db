"""Who is let into a battle's socket (battles.admission), each refusal at the handshake with
its HTTP status, on the app in this process (tests.inprocess)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse

from tests.helpers import FOUR
from tests.inprocess import InProcess
from tests.servers import RedisServer


def refusal(app: InProcess, role: str, code: str, token: str | None = None, **options: Any) -> WebSocketDenialResponse:
    with pytest.raises(WebSocketDenialResponse) as refused:
        app.open(role, code, token, **options)
    return refused.value


def connections(app: InProcess) -> int:
    return int(app.get("/healthz").json()["connections"])


@pytest.fixture
def created(app: InProcess) -> dict[str, Any]:
    return app.create_battle(title="Doors", battlers=FOUR)


@pytest.mark.parametrize("role", ["admin", "Host", "results", "audiences"])
def test_a_role_the_protocol_does_not_know_is_404(app: InProcess, created: dict[str, Any], role: str) -> None:
    answer = refusal(app, role, created["code"], created["host_token"])
    assert answer.status_code == 404


@pytest.mark.parametrize("role", ["host", "cohost", "screen", "audience"])
def test_a_code_that_names_no_battle_is_404_for_every_role(app: InProcess, created: dict[str, Any], role: str) -> None:
    answer = refusal(app, role, "NOPE22", created["host_token"])
    assert (answer.status_code, answer.content) == (404, b"no battle has that code")


@pytest.mark.parametrize(
    "role, token",
    [
        ("host", None),
        ("host", "screen_token"),
        ("host", "results"),
        ("cohost", "host_token"),
        ("cohost", "screen_token"),
        ("screen", "host_token"),
        ("screen", "cohost_token"),
        ("screen", "guess"),
    ],
)
def test_a_missing_or_other_roles_token_is_401(
    app: InProcess, created: dict[str, Any], role: str, token: str | None
) -> None:
    given = created["links"]["results"].split("#", 1)[1] if token == "results" else created.get(token or "", token)
    answer = refusal(app, role, created["code"], given)
    assert (answer.status_code, answer.content) == (401, b"a valid token is required")
    assert connections(app) == 0


async def test_each_token_opens_its_role_and_the_host_endpoint_knows_a_cohost(
    app: InProcess, created: dict[str, Any]
) -> None:
    code = created["code"]
    for endpoint, token, role in [
        ("host", created["host_token"], "host"),
        ("host", created["cohost_token"], "cohost"),  # the co-host's link is /host/CODE#TOKEN
        ("cohost", created["cohost_token"], "cohost"),
        ("screen", created["screen_token"], "screen"),
        ("audience", None, "audience"),
    ]:
        client = await app.connect(endpoint, code, token)
        assert (client.welcome["role"], client.welcome["code"]) == (role, code)
        await client.close()


async def test_a_revoked_cohost_token_is_401_and_the_new_one_opens(app: InProcess, created: dict[str, Any]) -> None:
    host = await app.connect("host", created["code"], created["host_token"])
    revoked = await host.run("revoke_cohost")
    new_token = revoked["links"]["cohost"].split("#", 1)[1]
    for endpoint in ("host", "cohost"):
        assert refusal(app, endpoint, created["code"], created["cohost_token"]).status_code == 401
    cohost = await app.connect("host", created["code"], new_token)
    assert cohost.welcome["role"] == "cohost"
    await host.close()
    await cohost.close()


async def test_a_phone_keeps_its_signed_device_and_a_forged_one_is_a_new_device(
    app: InProcess, created: dict[str, Any]
) -> None:
    first = await app.connect("audience", created["code"])
    signed = first.welcome["device"]
    assert signed and first.device == signed
    again = await app.connect("audience", created["code"], device=signed)
    assert again.welcome["device"] is None  # known: nothing new to keep
    forged = await app.connect("audience", created["code"], device=signed[:-2] + "xx")
    assert forged.welcome["device"] not in (None, signed)


async def test_new_devices_past_the_address_budget_are_429_and_known_ones_still_join(tmp_path: Path) -> None:
    with InProcess(f"sqlite:///{tmp_path / 'b.sqlite3'}", mint_burst=2, mints_per_minute=1) as app:
        created = app.create_battle(title="Doors", battlers=FOUR)
        code = created["code"]
        phones = [await app.connect("audience", code) for _ in range(2)]
        answer = refusal(app, "audience", code)
        assert (answer.status_code, answer.content) == (429, b"too many new devices")
        assert 0 < int(answer.headers["retry-after"]) <= 60
        # A device that has its id needs no new one: the budget does not stop it.
        back = await app.connect("audience", code, device=phones[0].welcome["device"])
        assert back.device == phones[0].device
        # Screens are not devices: the budget does not stop them.
        screen = await app.connect("screen", code, created["screen_token"])
        assert screen.welcome["role"] == "screen"


@pytest.mark.parametrize("path", ["/ws/audience", "/ws/audience/CODE/more", "/socket", "/ws"])
def test_a_websocket_to_a_path_that_is_no_endpoint_is_404(app: InProcess, path: str) -> None:
    # Websockets do not pass through Starlette's router (battles.sockets): the path is ours to check.
    with pytest.raises(WebSocketDenialResponse) as refused:
        app.websocket_connect(path, subprotocols=["battles.v1"]).__enter__()
    assert (refused.value.status_code, refused.value.content) == (404, b"no websocket endpoint at this path")


def test_a_foreign_origin_is_403_before_the_battle_is_read(app: InProcess, created: dict[str, Any]) -> None:
    for code in (created["code"], "NOPE22"):
        answer = refusal(app, "audience", code, headers={"origin": "https://evil.example"})
        assert (answer.status_code, answer.content) == (403, b"origin not allowed")


async def test_with_the_store_away_a_handshake_is_503_not_404(redis_server: RedisServer) -> None:
    redis_server.start()
    redis_server.flush()
    with InProcess(redis_server.url) as app:
        code = app.create_battle(title="Doors", battlers=FOUR)["code"]
        redis_server.stop()
        try:
            for role in ("audience", "screen"):
                answer = refusal(app, role, code)
                assert (answer.status_code, answer.content) == (503, b"the store is unreachable")
        finally:
            redis_server.start()
