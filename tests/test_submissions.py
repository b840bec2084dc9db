"""Challenges and questions from phones on the wire (docs/protocol.md, `submit`, `moderate`,
`show_submission`): real servers, both stores, and two processes sharing Redis."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.clients import Client
from tests.servers import Server, server_on_store

BATTLERS = [{"name": n, "vision": f"Vision of {n}"} for n in ("Asha", "Bo", "Camille")]
MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture(params=["embedded", "redis"], scope="module")
def any_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # A short cool-down keeps the test quick; its refusal is still tested.
    folder = tmp_path_factory.mktemp("voices")
    running = server_on_store(request, folder, submission_cooldown_ms=400, submissions_waiting_per_device=2)
    yield running
    running.stop()


async def submit(phone: Client, kind: str, text: str, **fields: Any) -> dict[str, Any]:
    return await phone.request({"type": "submit", "kind": kind, "text": text, **fields})


async def sent(phone: Client, kind: str, text: str, **fields: Any) -> str:
    """Submit until the cool-down lets it through; the submission's id."""
    for _ in range(20):
        reply = await submit(phone, kind, text, **fields)
        if reply.get("reason") != "too_soon":
            assert reply["type"] == "ack", reply
            return str(reply["submission"])
        await asyncio.sleep(reply["params"]["wait_ms"] / 1000 + 0.02)
    raise AssertionError("still too soon")


async def test_a_phone_sends_a_moderator_approves_and_the_screen_shows_it(any_server: Server) -> None:
    created = any_server.create_battle(title="Voices", battlers=BATTLERS)
    code = created["code"]
    host = await Client.connect(any_server.ws_url, "host", code, created["host_token"])
    queue = await host.expect("submissions")
    assert queue == {"type": "submissions", "items": [], "blocked": 0, "blocks": []}
    screen = await Client.connect(any_server.ws_url, "screen", code, created["screen_token"])
    phone = await Client.connect(any_server.ws_url, "audience", code)
    assert phone.welcome["limits"]["submission_cooldown_ms"] == 400
    assert "banned_words" not in phone.battle["rules"] and "banned_words" in host.battle["rules"]
    assert (await phone.request({"type": "set_nickname", "nickname": f"Ida{MARKUP}"}))["type"] == "error"
    assert (await phone.request({"type": "set_nickname", "nickname": "Ida\u200b <b>"}))["nickname"] == "Ida <b>"

    # In the lobby: challenges, not questions.
    assert (await submit(phone, "question", "Why?"))["reason"] == "submissions_closed"
    assert (await submit(phone, "challenge", "\u200b\n"))["reason"] == "bad_message"
    challenge = await sent(phone, "challenge", f"No cars {MARKUP}")
    assert (await submit(phone, "challenge", "Again"))["reason"] == "too_soon"
    item = (await host.expect("submission"))["item"]
    assert item["id"] == challenge and item["status"] == "pending" and item["nickname"] == "Ida <b>"
    assert item["text"] == f"No cars {MARKUP}" and "device" not in item

    # A co-host moderates; both consoles hear it, the phone and the screen do not.
    cohost = await Client.connect(any_server.ws_url, "host", code, created["cohost_token"])
    assert [i["id"] for i in (await cohost.expect("submissions"))["items"]] == [challenge]
    approved = await cohost.request({"type": "moderate", "submission": challenge, "action": "approve"})
    assert approved["type"] == "ack" and approved["item"]["status"] == "approved"
    assert (await host.expect("submission"))["item"]["status"] == "approved"
    assert approved["item"]["decisions"] == [
        {"action": "approve", "by": "cohost", "at_ms": approved["item"]["decisions"][0]["at_ms"]}
    ]
    # The phone that sent it is told, in its language; nobody else is.
    assert await phone.expect("your_submission") == {
        "type": "your_submission", "submission": challenge, "kind": "challenge", "text": f"No cars {MARKUP}",
        "outcome": "approved", "message": "Your challenge was approved: it may become a round's challenge card.",
    }  # fmt: skip
    assert (await screen.request({"type": "moderate", "submission": challenge, "action": "approve"}))[
        "reason"
    ] == "not_allowed"

    await cohost.run("start_round")
    await cohost.run("show_submission", submission=challenge)
    card = (await screen.wait_for(lambda b: b["rounds"][-1]["challenge"] is not None))["rounds"][-1]
    assert card["challenge"] == f"No cars {MARKUP}" and card["challenge_from"]["nickname"] == "Ida <b>"
    assert (await phone.expect("your_submission"))["outcome"] == "shown"
    assert (await phone.request({"type": "set_language", "language": "da"}))["type"] == "ack"

    # During a turn: a question, anonymous, held by the word filter for its word.
    await host.run("next")
    question = await sent(phone, "question", "Who pays for the dikes?", anonymous=True)
    held = await sent(phone, "question", "What the f.u.c.k about the dikes?")
    items = {m["item"]["id"]: m["item"] for m in [await host.expect("submission"), await host.expect("submission")]}
    assert (
        items[question]["nickname"] == ""
        and items[question]["battler"] == "b1"
        and items[question]["status"] == "pending"
    )
    assert (items[held]["status"], items[held]["held_for"]) == ("held", "fuck*")
    assert (await submit(phone, "question", "A third one"))["reason"] in ("too_soon", "limit_reached")
    assert (await host.command("show_submission", submission=question))["reason"] == "not_approved"
    await host.request({"type": "moderate", "submission": question, "action": "approve"})
    assert (await phone.expect("your_submission"))[
        "message"
    ] == "Dit spørgsmål er godkendt: det kan komme op på skærmen."
    await host.run("show_submission", submission=question)
    told = await phone.expect("your_submission")
    assert (told["submission"], told["outcome"], told["message"]) == (question, "shown", "Dit spørgsmål er på skærmen.")
    shown = (await phone.wait_for(lambda b: b.get("question") is not None))["question"]
    assert shown == {"submission": question, "kind": "question", "text": "Who pays for the dikes?", "nickname": "",
                     "battler": "b1", "turn": 0}  # fmt: skip
    await host.run("hide_submission", submission=question)
    await screen.wait_for(lambda b: b.get("question") is None)

    # Block the device: its waiting one goes, and it is refused from now on.
    blocked = await host.request({"type": "moderate", "submission": held, "action": "block"})
    assert blocked["item"]["status"] == "blocked"
    refusal = await submit(phone, "question", "Let me in")
    assert refusal["reason"] == "device_blocked" and "stoppet denne telefon" in refusal["message"]  # in its language
    other = await Client.connect(any_server.ws_url, "audience", code)
    assert (await submit(other, "question", "Another phone is heard"))["type"] == "ack"
    await cohost.send({"type": "resync"})
    queue = await cohost.expect("submissions")
    assert queue["blocked"] == 1 and queue["blocks"] == [
        {"submission": held, "by": "host", "at_ms": queue["blocks"][0]["at_ms"]}
    ]
    assert held in [item["id"] for item in queue["items"]] and "device" not in json.dumps(queue)

    # The block undone (from any of its submissions): the held one waits again, held, and the
    # phone may send again.
    unblocked = await cohost.request({"type": "moderate", "submission": held, "action": "unblock"})
    assert unblocked["item"]["status"] == "held" and [d["action"] for d in unblocked["item"]["decisions"]] == [
        "block",
        "unblock",
    ]
    assert (await cohost.request({"type": "moderate", "submission": held, "action": "unblock"}))[
        "reason"
    ] == "not_blocked"
    assert (await cohost.request({"type": "moderate", "submission": held, "action": "shout"}))[
        "reason"
    ] == "bad_message"
    again = await sent(phone, "question", "Let me in")
    await host.request({"type": "moderate", "submission": again, "action": "dismiss"})
    told = await phone.expect("your_submission")
    assert (told["submission"], told["outcome"], told["message"]) == (
        again,
        "dismissed",
        "Dit spørgsmål blev ikke taget op denne gang.",
    )

    # The export holds every one, with what became of it, and no device.
    async with httpx.AsyncClient() as http:
        got = await http.get(
            f"{any_server.url}/api/battles/{code}/export.json",
            headers={"authorization": f"Bearer {created['host_token']}"},
        )
        table = await http.get(
            f"{any_server.url}/api/battles/{code}/export.csv",
            headers={"authorization": f"Bearer {created['host_token']}"},
        )
    exported = got.json()
    statuses = {s["id"]: s["status"] for s in exported["submissions"]}
    assert statuses == {challenge: "approved", question: "approved", held: "held", "s4": "pending", again: "dismissed"}
    decided = {s["id"]: [(d["action"], d["by"]) for d in s["decisions"]] for s in exported["submissions"]}
    assert decided[challenge] == [("approve", "cohost")] and decided[held] == [("block", "host"), ("unblock", "cohost")]
    assert decided["s4"] == [] and decided[again] == [("dismiss", "host")]
    assert all("device" not in s for s in exported["submissions"])
    assert phone.device is not None and phone.device not in got.text and phone.device not in table.text
    assert [e["action"] for e in exported["battle"]["log"]].count("show_submission") == 2
    rows = [row for row in csv.DictReader(io.StringIO(table.text)) if row["section"] == "submission"]
    assert {(row["vote"], row["field"]): row["value"] for row in rows}[(challenge, "text")] == f"No cars {MARKUP}"
    assert {(row["vote"], row["round"], row["name"]) for row in rows if row["field"] == "status"} == {
        (challenge, "0", "Ida <b>"),
        (question, "1", ""),
        (held, "1", "Ida <b>"),
        ("s4", "1", ""),
        (again, "1", "Ida <b>"),
    }
    decisions = [(row["vote"], row["value"], row["actor"]) for row in rows if row["field"] == "decision"]
    assert decisions == [(challenge, "approve", "cohost"), (question, "approve", "host"), (held, "block", "host"),
                         (held, "unblock", "cohost"), (again, "dismiss", "host")]  # fmt: skip
    assert all(int(row["at_ms"]) >= exported["battle"]["created_ms"] for row in rows if row["field"] == "decision")
    # The results link, made to be shared, reads the approved ones only.
    results_token = created["links"]["results"].split("#", 1)[1]
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {results_token}"}) as http:
        shared = [await http.get(f"{any_server.url}/api/battles/{code}/export.{kind}") for kind in ("json", "csv")]
    assert {s["id"]: s["status"] for s in shared[0].json()["submissions"]} == {
        challenge: "approved",
        question: "approved",
    }
    shared_rows = [row for row in csv.DictReader(io.StringIO(shared[1].text)) if row["section"] == "submission"]
    assert {row["vote"] for row in shared_rows} == {challenge, question}
    assert not [answer for answer in shared for word in ("f.u.c.k", "Let me in") if word in answer.text]
    # Phones and screens never heard the queue, nor any text that was not put on the screen.
    for client in (screen, phone, other):
        heard = []
        while not client.inbox.empty():
            heard.append(client.inbox.get_nowait())
        assert not [m for m in heard if m["type"] in ("submission", "submissions")]
        assert "f.u.c.k" not in json.dumps(heard) and "device" not in json.dumps([m.get("battle") for m in heard])
        # A phone hears of its own submissions only, and never of the held one or its word.
        assert not [m for m in heard if m["type"] == "your_submission" and m["submission"] in (held, "s4")]
        assert "fuck" not in json.dumps(heard)
    for client in (host, cohost, screen, phone, other):
        await client.close()


async def test_a_phone_on_one_process_reaches_the_moderators_on_another(two_servers: tuple[Server, Server]) -> None:
    first, second = two_servers
    created = first.create_battle(title="Two halls", battlers=BATTLERS)
    code = created["code"]
    host = await Client.connect(second.ws_url, "host", code, created["host_token"])
    await host.expect("submissions")
    phone = await Client.connect(first.ws_url, "audience", code)
    challenge = (await submit(phone, "challenge", "Plant a forest"))["submission"]
    assert (await host.expect("submission"))["item"]["id"] == challenge
    # The cool-down is the device's on every process (the store keeps it).
    again = await Client.connect(second.ws_url, "audience", code, device=phone.device)
    assert (await submit(again, "challenge", "And another"))["reason"] == "too_soon"
    # The device holds one socket in the whole hall (4409), and hears there what became of it.
    async with asyncio.timeout(5):
        await phone.socket.wait_closed()
    assert phone.socket.close_code == 4409
    await host.request({"type": "moderate", "submission": challenge, "action": "approve"})
    assert (await again.expect("your_submission"))["outcome"] == "approved"
    await host.run("start_round")
    await host.run("show_submission", submission=challenge)
    assert (await again.expect("your_submission"))["outcome"] == "shown"
    await host.close()
    await phone.close()
    await again.close()


async def test_a_phone_away_when_its_submissions_were_decided_finds_them_in_its_snapshot(any_server: Server) -> None:
    # Seen on main before: `your_submission` went only to the sockets open at that moment, and
    # nothing told a phone that came back later (issue: "a phone that was offline when its
    # challenge or question was decided is never told").
    created = any_server.create_battle(title="Away", battlers=BATTLERS)
    code = created["code"]
    host = await Client.connect(any_server.ws_url, "host", code, created["host_token"])
    await host.expect("submissions")
    phone = await Client.connect(any_server.ws_url, "audience", code)
    assert phone.snapshot["my_submissions"] == []
    first = await sent(phone, "challenge", "No cars")
    second = await sent(phone, "challenge", "Only bikes")
    device = phone.device
    await phone.close()
    for submission, action in ((first, "approve"), (second, "dismiss")):
        assert (await host.request({"type": "moderate", "submission": submission, "action": action}))["type"] == "ack"
    phone = await Client.connect(any_server.ws_url, "audience", code, device=device)
    third = await sent(phone, "challenge", "Boats")
    await phone.close()
    other = await Client.connect(any_server.ws_url, "audience", code)
    await sent(other, "challenge", "Not mine")
    await host.run("start_round")
    await host.run("show_submission", submission=first)

    back = await Client.connect(any_server.ws_url, "audience", code, device=device)
    snapshot = back.snapshot
    told = [(news["submission"], news["outcome"], news["text"]) for news in snapshot["my_submissions"]]
    # Oldest news first: the dismissal, then the card on the screen; the waiting one is no news.
    assert told == [(second, "dismissed", "Only bikes"), (first, "shown", "No cars")], told
    assert third not in {news["submission"] for news in snapshot["my_submissions"]}
    assert snapshot["my_submissions"][-1]["message"] == "Your challenge is on the screen."
    fields = {"submission", "kind", "text", "outcome", "message", "at_ms"}
    assert all(set(news) == fields for news in snapshot["my_submissions"])
    # Another phone's snapshot names none of them.
    assert (await Client.connect(any_server.ws_url, "audience", code)).snapshot["my_submissions"] == []
    await host.close()
    await other.close()
    await back.close()
