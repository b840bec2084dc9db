"""Whole evenings with real websocket clients: on the app in this process (tests.inprocess),
and on a real server (uvicorn on a free port) for a hall of 100 phones through its fan-out
and an evening that outlives the process."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import httpx
from websockets.frames import CloseCode

from battles.model import SUBMISSION_MAX_CHARS
from battles.rooms import CLOSE_REPLACED, CLOSE_REVOKED
from tests.clients import Client
from tests.helpers import FOUR, to_the_vote
from tests.inprocess import InProcess
from tests.servers import Server


async def connect_all(
    place: InProcess | Server, created: dict[str, Any], phones: int
) -> tuple[Client, Client, list[Client]]:
    """A host, a screen and ``phones`` phones, on the app in this process or a real server."""
    code = created["code"]
    host = await place.connect("host", code, created["host_token"])
    screen = await place.connect("screen", code, created["screen_token"])
    audience = list(await asyncio.gather(*(place.connect("audience", code) for _ in range(phones))))
    return host, screen, audience


def ballots_for(plan: dict[str, int]) -> list[str]:
    return [choice for choice, count in plan.items() for _ in range(count)]


async def test_a_full_evening_with_100_phones(server: Server) -> None:
    # On a real server: 100 sockets through battles serve's fan-out (battles.fanout).
    created = server.create_battle(title="Aarhus 2079", battlers=FOUR, rules={"vote_seconds": 120})
    host, screen, phones = await connect_all(server, created, 100)
    await host.until_presence(audience=100, screen=1)

    # Keep mode: fewest votes leaves. Round 3 is the final of two: most votes wins.
    plans = [
        {"b1": 40, "b2": 30, "b3": 20, "b4": 10},
        {"b1": 20, "b2": 45, "b3": 35},
        {"b2": 45, "b3": 55},
    ]
    expected_out = [["b4"], ["b1"], ["b2"]]
    commands_sent = 0
    for number, (plan, out) in enumerate(zip(plans, expected_out), start=1):
        before = host.battle["version"]
        vote_id = await to_the_vote(host, challenge=f"Card {number}")
        # Everyone first taps the first choice, then changes to the planned one.
        first = next(iter(plan))
        taps = await asyncio.gather(*(phone.vote(vote_id, first) for phone in phones))
        assert {t["status"] for t in taps} == {"counted"}
        finals = await asyncio.gather(
            *(phone.vote(vote_id, choice) for phone, choice in zip(phones, ballots_for(plan)))
        )
        assert all(f["type"] == "ballot" and f["choice"] == c for f, c in zip(finals, ballots_for(plan)))
        # The screen gets the count (not the totals: live_totals is off), the host the totals.
        await screen.expect("tally", lambda m: m["vote_id"] == vote_id and m["ballots"] == 100 and m["totals"] is None)
        await host.expect("tally", lambda m: m["vote_id"] == vote_id and m["totals"] == plan)
        await host.run("close_vote")
        await host.run("reveal_results")
        revealed = host.battle["rounds"][-1]
        assert revealed["votes"][-1]["totals"] == plan
        assert revealed["proposal"]["leaving"] == out
        await host.run("confirm_elimination")
        commands_sent += host.battle["version"] - before
        phase = "final" if number == 3 else "elimination"
        for client in [screen, *phones]:
            await client.wait_for(
                lambda b: b["phase"] == phase and all(x["status"] != "in" for x in b["battlers"] if x["id"] in out)
            )

    assert host.battle["winner"] == "b3"
    await host.run("end_battle")
    assert host.battle["ended_reason"] == "completed"

    response = httpx.get(
        f"{server.url}/api/battles/{created['code']}/export.json",
        headers={"authorization": f"Bearer {created['host_token']}"},
    )
    exported = response.json()["battle"]
    assert [r["number"] for r in exported["rounds"]] == [1, 2, 3]
    assert [r["votes"][-1]["totals"] for r in exported["rounds"]] == plans
    assert [r["eliminated"] for r in exported["rounds"]] == expected_out
    assert [r["challenge"] for r in exported["rounds"]] == ["Card 1", "Card 2", "Card 3"]
    host_actions = [e for e in exported["log"] if e["actor"] == "host"]
    assert len(host_actions) == 1 + commands_sent + 1  # create, the rounds, end
    assert all(isinstance(e["at_ms"], int) for e in exported["log"])
    csv_text = httpx.get(
        f"{server.url}/api/battles/{created['code']}/export.csv",
        headers={"authorization": f"Bearer {created['host_token']}"},
    ).text
    assert csv_text.count("\nvote,3,r3v1,b3,Camille,votes,55,") == 1
    for client in [host, screen, *phones]:
        await client.close()


async def test_end_battle_with_an_open_vote_counts_every_acknowledged_ballot(app_on_each_store: InProcess) -> None:
    app = app_on_each_store
    created = app.create_battle(title="Fire alarm", battlers=FOUR, rules={"vote_seconds": 300})
    host, _, phones = await connect_all(app, created, 3)
    vote_id = await to_the_vote(host)
    receipts = await asyncio.gather(*(p.vote(vote_id, c) for p, c in zip(phones, ["b1", "b1", "b3"])))
    assert {r["status"] for r in receipts} == {"counted"}
    await host.run("end_battle", reason="Fire alarm")
    expected = {"b1": 2, "b2": 0, "b3": 1, "b4": 0}
    vote = host.battle["rounds"][-1]["votes"][-1]
    assert (host.battle["phase"], vote["status"], vote["totals"], vote["ballots"]) == (
        "finished",
        "closed",
        expected,
        3,
    )
    # The vote was closed (its tally frozen) before it was counted, both in the log.
    assert [e["action"] for e in host.battle["log"][-2:]] == ["close_vote", "end_battle"]
    auth = {"authorization": f"Bearer {created['host_token']}"}
    exported = app.get(f"/api/battles/{created['code']}/export.json", headers=auth).json()
    assert exported["battle"]["rounds"][-1]["votes"][-1] | {"closed_ms": None} == vote | {"closed_ms": None}
    csv_text = app.get(f"/api/battles/{created['code']}/export.csv", headers=auth).text
    assert f"\nvote,1,{vote_id},b1,Asha,votes,2," in csv_text
    assert f"\nvote,1,{vote_id},,,ballots,3," in csv_text
    for client in [host, *phones]:
        await client.close()


async def test_edit_battle_with_some_rules_keeps_the_others_over_a_socket(app: InProcess) -> None:
    rules = {"vote_seconds": 120, "debate_seconds": 30, "reactions": ["fire"]}
    created = app.create_battle(title="Partial", battlers=FOUR, rules=rules)
    host = await app.connect("host", created["code"], created["host_token"])
    before = host.battle["rules"]
    await host.run("edit_battle", rules={"turn_seconds": 120, "ties": "host"})
    assert host.battle["rules"] == before | {"turn_seconds": 120, "ties": "host"}
    stored = app.get(f"/api/battles/{created['code']}").json()["rules"]  # the public rules: no word list
    assert stored | {"banned_words": before["banned_words"]} == before | {"turn_seconds": 120, "ties": "host"}
    assert stored["vote_seconds"] == 120
    await host.close()


async def test_a_phone_that_reconnects_keeps_its_ballot(app: InProcess) -> None:
    created = app.create_battle(title="Reconnect", battlers=FOUR)
    host, _, (phone,) = await connect_all(app, created, 1)
    vote_id = await to_the_vote(host)
    acknowledged = await phone.vote(vote_id, "b2")
    assert acknowledged["status"] == "counted"
    device = phone.device
    assert device
    await phone.close()

    again = await app.connect("audience", created["code"], device=device)
    assert again.my_ballot == {"vote_id": vote_id, "choice": "b2", "receipt": acknowledged["receipt"]}
    assert (await again.vote(vote_id, "b2"))["status"] == "unchanged"
    # A forged device id is not that device: it gets a new one and no ballot.
    stranger = await app.connect("audience", created["code"], device=device[:-2] + "xx")
    assert stranger.device != device and stranger.my_ballot is None
    await host.run("close_vote")
    await host.run("reveal_results")
    assert host.battle["rounds"][-1]["votes"][-1]["totals"]["b2"] == 1


async def test_two_hosts_pressing_at_once_advance_the_show_once(app_on_each_store: InProcess) -> None:
    app = app_on_each_store
    created = app.create_battle(title="Race", battlers=FOUR)
    host = await app.connect("host", created["code"], created["host_token"])
    cohost = await app.connect("cohost", created["code"], created["cohost_token"])
    await host.run("start_round")
    await cohost.wait_for(lambda b: b["phase"] == "challenge")
    replies = await asyncio.gather(host.command("next"), cohost.command("next"))
    assert sorted(r["type"] for r in replies) == ["ack", "error"]
    assert [r["reason"] for r in replies if r["type"] == "error"] == ["conflict"]
    await host.wait_for(lambda b: b["phase"] == "turn")
    assert host.battle["turn_index"] == 0
    actors = [e["actor"] for e in host.battle["log"]]
    assert actors.count("cohost") + actors.count("host") == 3  # create, start_round, one next


async def test_a_vote_closes_on_time_with_no_host_connected(app: InProcess) -> None:
    created = app.create_battle(title="Timer", battlers=FOUR, rules={"vote_seconds": 5})
    host = await app.connect("host", created["code"], created["host_token"])
    screen = await app.connect("screen", created["code"], created["screen_token"])
    await to_the_vote(host)
    deadline = host.battle["timer"]["deadline_ms"]
    await host.close()
    update = await screen.expect("update", lambda m: m["events"][-1]["action"] == "close_vote", timeout=10)
    assert screen.seq == update["seq"] and screen.battle["rounds"][-1]["votes"][-1]["status"] == "closed"
    assert deadline <= update["server_ms"] < deadline + 2000
    battle = app.get(f"/api/battles/{created['code']}").json()
    assert battle["phase"] == "vote" and battle["timer"] is None


async def test_the_embedded_evening_survives_a_server_restart(tmp_path: Path) -> None:
    running = Server(f"sqlite:///{tmp_path / 'battles.sqlite3'}", tmp_path / "server.log").start()
    try:
        created = running.create_battle(title="Reboot", battlers=FOUR, rules={"vote_seconds": 300})
        host, _, phones = await connect_all(running, created, 5)
        vote_id = await to_the_vote(host)
        choices = ["b1", "b1", "b1", "b2", "b3"]
        acks = await asyncio.gather(*(phone.vote(vote_id, choice) for phone, choice in zip(phones, choices)))
        devices = [phone.device for phone in phones]
        running.kill()  # the laptop dies, no goodbye
        running.start()
        host = await Client.connect(running.ws_url, "host", created["code"], created["host_token"])
        assert host.battle["phase"] == "vote"
        phone = await Client.connect(running.ws_url, "audience", created["code"], device=devices[0])
        # The receipt outlives the process too: it is computed again with the stored key.
        assert phone.my_ballot == {"vote_id": vote_id, "choice": "b1", "receipt": acks[0]["receipt"]}
        await host.run("close_vote")
        await host.run("reveal_results")
        assert host.battle["rounds"][-1]["votes"][-1]["totals"] == {"b1": 3, "b2": 1, "b3": 1, "b4": 0}
        await host.run("confirm_elimination")
        assert host.battle["phase"] == "elimination"
    finally:
        running.stop()


async def test_the_welcome_names_the_close_codes_and_the_submission_bound_the_server_holds(tmp_path: Path) -> None:
    # The pages copy none of them (docs/protocol.md, `welcome`): the welcome of a real server
    # carries each, equal to its Python source, and the server then closes and refuses by it.
    running = Server(f"sqlite:///{tmp_path / 'battles.sqlite3'}", tmp_path / "server.log", submission_cooldown_ms=0)
    running.start()
    try:
        created = running.create_battle(title="Codes", battlers=FOUR)
        code = created["code"]
        host = await running.connect("host", code, created["host_token"])
        cohost = await running.connect("host", code, created["cohost_token"])
        phone = await running.connect("audience", code)
        codes = {"restart": CloseCode.SERVICE_RESTART, "revoked": CLOSE_REVOKED, "replaced": CLOSE_REPLACED}
        for client in (host, cohost, phone):
            assert client.welcome["close_codes"] == codes
            assert client.welcome["limits"]["submission_max_chars"] == SUBMISSION_MAX_CHARS
        closes = phone.welcome["close_codes"]

        longest = "x" * phone.welcome["limits"]["submission_max_chars"]
        refused = await phone.request({"type": "submit", "kind": "challenge", "text": f"{longest}x"})
        assert refused["type"] == "error" and refused["reason"] == "bad_message", refused
        assert (await phone.request({"type": "submit", "kind": "challenge", "text": longest}))["type"] == "ack"

        tab = await running.connect("audience", code, device=phone.device)
        await phone.socket.wait_closed()
        assert phone.socket.close_code == closes["replaced"]
        await host.run("revoke_cohost")
        await cohost.socket.wait_closed()
        assert cohost.socket.close_code == closes["revoked"]
        await asyncio.to_thread(running.stop)  # graceful, as a restart is
        await tab.socket.wait_closed()
        assert tab.socket.close_code == closes["restart"]
    finally:
        running.stop()


async def test_a_device_has_one_socket_a_newer_one_replaces_the_older(app: InProcess) -> None:
    # Before: 500 sockets offering one device id were 500 in the audience, and each
    # reacted on its own cooldown.
    created = app.create_battle(title="Tabs", battlers=FOUR)
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    tabs = [await app.connect("audience", code)]
    tabs += [await app.connect("audience", code, device=tabs[0].device) for _ in range(4)]
    for replaced in tabs[:-1]:
        await replaced.socket.wait_closed()
        assert replaced.socket.close_code == 4409
    await host.until_presence(audience=1)
    await host.run("start_round")
    await host.run("next")  # b1 speaks
    await tabs[-1].send({"type": "react", "kind": "applause"})
    await host.expect("engagement", lambda m: m["battlers"].get("b1", {}).get("counts") == {"applause": 1})
    await asyncio.gather(*(client.close() for client in (host, *tabs)))


async def test_each_turn_keeps_its_reactions_and_the_charts_draw_them(server: Server) -> None:
    created = server.create_battle(title="Aarhus 2079", battlers=FOUR[:2], rules={"debate_seconds": 60})
    host, screen, phones = await connect_all(server, created, 5)

    def total(battler: str) -> Any:
        return lambda m: sum(m["battlers"].get(battler, {}).get("counts", {}).values())

    await host.run("start_round")
    await host.run("next")  # Asha speaks
    for phone, kind in zip(phones, ["applause", "fire", "applause"]):
        await phone.send({"type": "react", "kind": kind})
    await host.expect("engagement", lambda m: total("b1")(m) == 3)
    await host.run("next")  # Bo speaks
    await phones[3].send({"type": "react", "kind": "yawn"})
    await host.expect("engagement", lambda m: total("b2")(m) == 1)
    await host.run("next")  # the debate: a reaction names its battler
    await phones[4].send({"type": "react", "kind": "idea", "battler": "b2"})
    await host.expect("engagement", lambda m: total("b2")(m) == 2)
    turns = host.battle["rounds"][0]["turns"]
    assert [(t["battler"], t["reactions"]) for t in turns] == [("b1", {"applause": 2, "fire": 1}), ("b2", {"yawn": 1})]

    # The chart of the evening, drawn from that record, by anyone (docs/protocol.md, charts).
    async with httpx.AsyncClient(base_url=server.url) as http:
        chart = await http.get(f"/api/battles/{created['code']}/charts/engagement.svg")
        danish = await http.get(f"/api/battles/{created['code'].lower()}/charts/votes.svg", params={"lang": "da"})
        auth = {"authorization": f"Bearer {created['host_token']}"}
        table = (await http.get(f"/api/battles/{created['code']}/export.csv", headers=auth)).text
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/svg+xml"
    assert chart.headers["cache-control"] == "no-store"
    for title in (
        "Asha, Round 1: 3 (Applause 2, Fire 1)",
        "Bo, Round 1: 1 (Yawn 1)",
        "Debate, Round 1: 1 (Good idea 1)",
    ):
        assert f"<title>{title}</title>" in chart.text
    assert "Ingen afstemning blev talt op." in danish.text
    rows = [row for row in csv.DictReader(io.StringIO(table)) if row["section"] == "turn"]
    assert sorted((r["battler"], r["name"], r["field"], r["value"]) for r in rows) == [
        ("b1", "Asha", "applause", "2"), ("b1", "Asha", "fire", "1"), ("b2", "Bo", "yawn", "1"),
    ]  # fmt: skip
    for client in (host, screen, *phones):
        await client.close()
