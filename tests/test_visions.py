"""Visions that develop (docs/rules.md, "Visions that develop"): each battler's own link, its
revisions between rounds, and the history after the show, on the app in this process on both
stores, and on two server processes sharing one Redis."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import pytest
from starlette.testclient import WebSocketDenialResponse
from websockets.exceptions import InvalidStatus

from battles import protocol, rooms
from tests.clients import Client
from tests.helpers import FOUR
from tests.inprocess import InProcess
from tests.servers import Server


def token(link: str) -> str:
    return link.split("#", 1)[1]


def revision(
    battler: str = "b2", vision: str = "Every roof a forest, and a grid", changed: str = "Roofs store power"
) -> dict[str, Any]:
    return {"type": "revise_vision", "battler": battler, "vision": vision, "changed": changed}


async def revise(client: Client, **fields: Any) -> dict[str, Any]:
    return await client.request({**revision(**fields), "seq": client.seq})


async def test_each_battlers_link_opens_as_that_battler_and_sees_what_a_screen_sees(app: InProcess) -> None:
    created = app.create_battle(title="Links", battlers=FOUR)
    code, links = created["code"], created["battler_links"]
    assert sorted(links) == ["b1", "b2", "b3", "b4"]
    assert all(link.startswith(f"http://testserver/battler/{code}#") for link in links.values())
    bo = await app.connect("battler", code, token(links["b2"]))
    assert bo.welcome["role"] == "battler" and bo.snapshot["battler"] == "b2"
    assert "log" not in bo.snapshot["battle"] and "banned_words" not in bo.snapshot["battle"]["rules"]
    assert "links" not in bo.snapshot and "battler_links" not in bo.snapshot
    host = await app.connect("host", code, created["host_token"])
    assert host.snapshot["battler_links"] == links
    await host.until_presence(battler=1)
    for wrong in (
        created["host_token"],
        created["screen_token"],
        created["cohost_token"],
        "a-guess-of-32-characters-xxxxxxx",
    ):
        with pytest.raises(WebSocketDenialResponse) as refused:
            app.open("battler", code, wrong)
        assert refused.value.status_code == 401


async def test_a_battlers_link_is_refused_every_host_command_and_another_battlers_vision(
    app_on_each_store: InProcess,
) -> None:
    app = app_on_each_store
    created = app.create_battle(title="Refusals", battlers=FOUR)
    code = created["code"]
    bo = await app.connect("battler", code, token(created["battler_links"]["b2"]))
    version = bo.battle["version"]
    for kind in (*protocol.HOST_COMMANDS, "moderate", "vote", "react", "submit", "set_nickname"):
        if kind == "revise_vision":
            continue
        reply = await bo.request({"type": kind, "seq": bo.seq})
        assert (reply["type"], reply["reason"], reply["params"]) == ("error", "not_allowed", {"role": "battler"}), kind
    reply = await revise(bo, battler="b1")
    assert (reply["type"], reply["reason"]) == ("error", "not_your_vision")
    host = await app.connect("host", code, created["host_token"])
    assert host.battle["version"] == version  # nothing moved
    assert [b["versions"] for b in host.battle["battlers"]] == [[], [], [], []]
    # Its updates, its own command's too, are the public ones: what happened, never the host's
    # log entry (who, when, the details). Whichever comes first, the announcement or the
    # update sent with the ack, both are made for the role's view (rooms.view_of).
    assert rooms.view_of("battler") == "public"
    await bo.send({**revision(), "seq": bo.seq})
    mine = await bo.expect("update")
    assert mine["events"] == [{"action": "revise_vision"}]
    assert (await bo.expect("ack"))["seq"] == mine["seq"]
    await host.run("revise_vision", battler="b3", vision="Every roof a forest, and a pond")
    assert (await bo.expect("update"))["events"] == [{"action": "revise_vision"}]


async def test_a_revision_in_each_phase_between_rounds_and_a_refusal_in_every_other(
    app_on_each_store: InProcess,
) -> None:
    app = app_on_each_store
    created = app.create_battle(title="Phases", battlers=FOUR, rules={"debate_seconds": 60})
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    bo = await app.connect("battler", code, token(created["battler_links"]["b2"]))
    accepted: list[str] = []

    async def try_in(phase: str) -> None:
        await bo.wait_for(lambda b: b["phase"] == phase and b["version"] == host.seq)
        reply = await revise(bo, vision=f"Every roof a forest ({phase})")
        if reply["type"] == "ack":
            accepted.append(phase)
            await host.wait_for(lambda b: b["version"] >= reply["seq"])
        else:
            assert (reply["reason"], reply["params"]) == ("wrong_phase", {"phase": phase}), reply

    await try_in("lobby")
    await host.run("start_round")
    await try_in("challenge")
    await host.run("next")
    await try_in("turn")
    for _ in FOUR[1:]:
        await host.run("next")
    await host.run("next")
    await try_in("debate")
    await host.run("open_vote")
    await try_in("vote")
    await host.run("close_vote")
    await host.run("reveal_results")
    await try_in("reveal")
    await host.run("override_elimination", battlers=["b4"], reason="A test")
    await try_in("elimination")
    await host.run("end_battle")
    await try_in("finished")
    assert accepted == ["lobby", "challenge", "elimination"]
    b2 = host.battle["battlers"][1]
    assert [(v["vision"], v["round"], v["by"]) for v in b2["versions"]] == [
        ("Every roof a forest", 1, None),
        ("Every roof a forest (lobby)", 1, "battler"),
        ("Every roof a forest (challenge)", 1, "battler"),
        ("Every roof a forest (elimination)", 2, "battler"),
    ]
    revised = [e for e in host.battle["log"] if e["action"] == "revise_vision"]
    assert [(e["actor"], e["details"]["version"]) for e in revised] == [("battler", 2), ("battler", 3), ("battler", 4)]
    # The battler's own updates are the public view: the host's log entries never reach it.
    assert "log" not in bo.battle


async def test_the_host_revises_for_a_battler_and_undoes_the_latest(app_on_each_store: InProcess) -> None:
    app = app_on_each_store
    created = app.create_battle(title="Undo", battlers=FOUR)
    host = await app.connect("host", created["code"], created["host_token"])
    await host.run("revise_vision", battler="b3", vision="A three-day week", changed="Robots took a day")
    assert host.battle["battlers"][2]["vision"] == "A three-day week"
    await host.run("undo_revision", battler="b3")
    assert (host.battle["battlers"][2]["vision"], host.battle["battlers"][2]["versions"]) == ("A four-day week", [])
    reply = await host.command("undo_revision", battler="b3")
    assert (reply["type"], reply["reason"]) == ("error", "no_revision")
    await host.run("edit_battle", rules={"vision_revisions": False})
    reply = await host.command("revise_vision", battler="b3", vision="Again")
    assert (reply["type"], reply["reason"]) == ("error", "revisions_off")


async def test_a_revoked_battler_link_is_closed_on_every_process(two_servers: tuple[Server, Server]) -> None:
    one, two = two_servers
    created = one.create_battle(title="Revoked", battlers=FOUR)
    code, links = created["code"], created["battler_links"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])
    bo_here = await Client.connect(one.ws_url, "battler", code, token(links["b2"]))
    bo_there = await Client.connect(two.ws_url, "battler", code, token(links["b2"]))
    asha = await Client.connect(two.ws_url, "battler", code, token(links["b1"]))
    cohost = await Client.connect(one.ws_url, "host", code, created["cohost_token"])
    refused = await cohost.command("revoke_battler", battler="b2")
    assert (refused["type"], refused["reason"]) == ("error", "not_allowed")

    revoked = await host.run("revoke_battler", battler="b2")
    new_link = revoked["battler_links"]["b2"]
    assert new_link != links["b2"] and revoked["battler_links"]["b1"] == links["b1"]
    for socket in (bo_here.socket, bo_there.socket):
        await asyncio.wait_for(socket.wait_closed(), 10)
        assert socket.close_code == 4401
    for server in (one, two):
        with pytest.raises(InvalidStatus) as refusal:
            await Client.connect(server.ws_url, "battler", code, token(links["b2"]))
        assert refusal.value.response.status_code == 401
    # The other battler's link goes on; the new link opens, and revises.
    assert (await revise(asha, battler="b1", vision="A harbour that floats"))["type"] == "ack"
    bo = await Client.connect(two.ws_url, "battler", code, token(new_link))
    assert bo.snapshot["battler"] == "b2"
    assert (await revise(bo))["type"] == "ack"
    await host.wait_for(lambda b: b["battlers"][1]["vision"] == "Every roof a forest, and a grid")
    for client in (host, asha, bo, cohost):
        await client.close()


THREE = FOUR[:3]


class Side(Protocol):
    """Where clients connect: the app in this process, or one server process."""

    async def connect(self, role: str, code: str, token: str | None = None, device: str | None = None) -> Client: ...


async def play_an_evening(console: Side, hall: Side, created: dict[str, Any], get: Callable[..., Any]) -> None:
    """Every battler revises twice, from its own phone and from the console; the exports give
    each version with its round, its line, and the engagement and votes it drew while it stood.
    ``console``: where the host connects; ``hall``: the battlers' and the audience's phones."""
    code, links = created["code"], created["battler_links"]
    host = await console.connect("host", code, created["host_token"])
    asha, bo, camille = [await hall.connect("battler", code, token(links[b])) for b in ("b1", "b2", "b3")]
    phones = [await hall.connect("audience", code) for _ in range(3)]

    assert (await revise(asha, battler="b1", vision="A harbour that floats", changed="Pontoons, not dikes"))[
        "type"
    ] == "ack"
    await host.run("revise_vision", battler="b3", vision="A four-day week, paid", changed="Wages kept")
    await host.run("start_round")
    await bo.wait_for(lambda b: b["phase"] == "challenge")
    assert (await revise(bo, battler="b2", vision="Roofs that farm", changed="Food, not only trees"))["type"] == "ack"
    await host.wait_for(lambda b: b["battlers"][1]["vision"] == "Roofs that farm")
    await camille.wait_for(lambda b: b["version"] == host.seq)
    assert (await revise(camille, battler="b3", vision="A three-day week", changed="Robots took a day"))[
        "type"
    ] == "ack"
    await host.wait_for(lambda b: b["battlers"][2]["vision"] == "A three-day week")
    await host.run("next")  # b1 speaks
    await phones[0].send({"type": "react", "kind": "applause"})
    await host.expect("engagement", lambda m: m["battlers"].get("b1", {}).get("score") == 1)
    await host.run("next")
    await host.run("next")
    await host.run("open_vote")
    vote_id = host.battle["rounds"][0]["votes"][0]["id"]
    for phone, choice in zip(phones, ("b1", "b1", "b2"), strict=True):
        assert (await phone.vote(vote_id, choice))["type"] == "ballot"
    await host.run("close_vote")
    await host.run("reveal_results")
    await host.run("confirm_elimination")  # b3 drew none
    await asha.wait_for(lambda b: b["phase"] == "elimination")
    assert (await revise(asha, battler="b1", vision="A harbour that floats and fishes", changed="Fish farms under it"))[
        "type"
    ] == "ack"
    await host.wait_for(lambda b: b["battlers"][0]["vision"].endswith("fishes"))
    await host.run("revise_vision", battler="b2", vision="Roofs that farm and cool", changed="Shade for the streets")
    await camille.wait_for(lambda b: b["version"] == host.seq)  # on another process, it may lag
    refused = await revise(camille, battler="b3", vision="Out but still trying")
    assert (refused["type"], refused["reason"]) == ("error", "battler_out")
    await host.run("start_round")
    while host.battle["phase"] != "vote":
        await host.run("next")
    await host.run("open_vote")
    final = host.battle["rounds"][1]["votes"][0]["id"]
    assert (await phones[1].vote(final, "b2"))["type"] == "ballot"
    await host.run("close_vote")
    await host.run("reveal_results")
    await host.run("confirm_elimination")
    await host.run("end_battle")

    exported = get(
        f"/api/battles/{code}/export.json", headers={"authorization": f"Bearer {created['host_token']}"}
    ).json()
    history = {b: [(v["version"], v["vision"], v["changed"], v["round"], v["by"], v["rounds"]) for v in versions]
               for b, versions in exported["visions"].items()}  # fmt: skip
    assert history == {
        "b1": [(1, "A floating harbour town", "", 1, None, []),
               (2, "A harbour that floats", "Pontoons, not dikes", 1, "battler", [1]),
               (3, "A harbour that floats and fishes", "Fish farms under it", 2, "battler", [2])],
        "b2": [(1, "Every roof a forest", "", 1, None, []),
               (2, "Roofs that farm", "Food, not only trees", 1, "battler", [1]),
               (3, "Roofs that farm and cool", "Shade for the streets", 2, "host", [2])],
        "b3": [(1, "A four-day week", "", 1, None, []),
               (2, "A four-day week, paid", "Wages kept", 1, "host", []),
               (3, "A three-day week", "Robots took a day", 1, "battler", [1])],
    }  # fmt: skip
    b1 = exported["visions"]["b1"]
    assert b1[1]["engagement"] == {"counts": {"applause": 1}, "score": 1} and b1[2]["engagement"]["score"] == 0
    assert b1[1]["votes"] == [{"vote": vote_id, "round": 1, "votes": 2, "ballots": 3}]
    assert exported["visions"]["b2"][2]["votes"] == [{"vote": final, "round": 2, "votes": 1, "ballots": 1}]
    assert exported["visions"]["b3"][2]["votes"] == [{"vote": vote_id, "round": 1, "votes": 0, "ballots": 3}]

    table = get(f"/api/battles/{code}/export.csv", headers={"authorization": f"Bearer {created['host_token']}"}).text
    rows = [row for row in csv.DictReader(io.StringIO(table)) if row["section"] == "version"]
    b1_v2 = {row["field"]: row["value"] for row in rows if (row["battler"], row["vote"]) == ("b1", "v2")}
    assert b1_v2 == {"vision": "A harbour that floats", "changed": "Pontoons, not dikes", "rounds": "1",
                     "engagement": "1", f"votes:{vote_id}": "2"}  # fmt: skip
    assert {(row["battler"], row["vote"]) for row in rows} == {
        (b, f"v{n}") for b in ("b1", "b2", "b3") for n in (1, 2, 3)
    }
    # The results link reads the same history.
    shared = get(
        f"/api/battles/{code}/export.json", headers={"authorization": f"Bearer {token(created['links']['results'])}"}
    )
    assert shared.json()["visions"] == exported["visions"]


async def test_an_evening_of_two_revisions_each_exports_every_versions_history(app_on_each_store: InProcess) -> None:
    app = app_on_each_store
    await play_an_evening(app, app, app.create_battle(title="An evening", battlers=THREE), app.get)


async def test_an_evening_of_two_revisions_each_on_two_processes(two_servers: tuple[Server, Server]) -> None:
    one, two = two_servers

    def get(path: str, **options: Any) -> httpx.Response:
        return httpx.get(f"{two.url}{path}", timeout=10, **options)

    await play_an_evening(one, two, one.create_battle(title="An evening", battlers=THREE), get)


async def test_a_battlers_qr_code_is_for_the_host_and_the_cohost_only(app: InProcess) -> None:
    created = app.create_battle(title="Codes", battlers=FOUR)
    path = f"/api/battles/{created['code']}/battlers/b2/qr.svg"

    def qr(given: str | None, where: str = path) -> Any:
        return app.get(where, headers={"authorization": f"Bearer {given}"} if given else {})

    for wrong in (
        None,
        created["screen_token"],
        token(created["battler_links"]["b2"]),
        token(created["links"]["results"]),
    ):
        assert qr(wrong).status_code == 401
    for right in (created["host_token"], created["cohost_token"]):
        answer = qr(right)
        assert (answer.status_code, answer.headers["content-type"]) == (200, "image/svg+xml")
        assert answer.text.startswith("<svg") and answer.headers["cache-control"] == "no-store"
    assert qr(created["host_token"], path.replace("b2", "b9")).status_code == 404
    # After a revoke, the code draws the new link: the old co-host token is refused too.
    host = await app.connect("host", created["code"], created["host_token"])
    before = qr(created["host_token"]).text
    await host.run("revoke_battler", battler="b2")
    await host.run("revoke_cohost")
    assert qr(created["host_token"]).text != before
    assert qr(created["cohost_token"]).status_code == 401
