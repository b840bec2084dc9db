"""Receipts and digests (battles.receipts; docs/security.md, "Receipts and digests"): the
pure rules, then a phone's receipt checked against the count on each store, and on two
processes that share one Redis."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx

from battles import receipts
from tests.clients import Client
from tests.helpers import FOUR, to_the_vote
from tests.inprocess import InProcess
from tests.servers import Server

KEY = receipts.receipt_key(b"k" * 32)


def test_a_receipt_names_battle_vote_and_device_and_is_keyed() -> None:
    mine = receipts.receipt(KEY, "ABCD12", "r1v1", "device-1")
    assert len(mine) == 11 and mine[5] == "-" and receipts.normalized(mine) == mine
    assert receipts.receipt(KEY, "ABCD12", "r1v1", "device-1") == mine
    others = {
        receipts.receipt(KEY, "ABCD13", "r1v1", "device-1"),
        receipts.receipt(KEY, "ABCD12", "r1v2", "device-1"),
        receipts.receipt(KEY, "ABCD12", "r1v1", "device-2"),
        receipts.receipt(receipts.receipt_key(b"x" * 32), "ABCD12", "r1v1", "device-1"),
    }
    assert mine not in others and len(others) == 4


def test_a_receipt_is_read_back_as_a_person_types_it() -> None:
    mine = receipts.receipt(KEY, "ABCD12", "r1v1", "device-1")
    typed = f"  {mine.lower().replace('-', ' ')} ".replace("o", "0").replace("i", "1")
    assert receipts.normalized(typed) == mine
    for wrong in ("", mine[:-1], mine + "A", "ABCDE-FGHI9", "<b>ABCDE</b>"):
        assert receipts.normalized(wrong) is None, wrong


def test_the_digest_follows_the_counted_set_and_nothing_else() -> None:
    rng = random.Random(18)
    ballots = {f"device-{n}": rng.choice(["b1", "b2", "b3"]) for n in range(300)}
    count = receipts.Count.of(KEY, "ABCD12", "r1v1", ballots)
    assert count.ballots == 300 and sum(count.totals.values()) == 300
    assert count.totals == {c: list(ballots.values()).count(c) for c in set(ballots.values())}
    # The order the store hands the ballots over in is no part of it.
    shuffled = dict(rng.sample(list(ballots.items()), len(ballots)))
    assert receipts.Count.of(KEY, "ABCD12", "r1v1", shuffled).digest == count.digest
    moved = ballots | {"device-7": "b1" if ballots["device-7"] != "b1" else "b2"}
    dropped = {d: c for d, c in ballots.items() if d != "device-7"}
    added = ballots | {"device-new": "b1"}
    other_vote = receipts.Count.of(KEY, "ABCD12", "r1v2", ballots).digest
    changed = {receipts.Count.of(KEY, "ABCD12", "r1v1", b).digest for b in (moved, dropped, added)}
    assert count.digest not in changed | {other_vote} and len(changed) == 3
    assert len(count.digest) == 19 and count.digest.count("-") == 3


async def check(app: InProcess | Server, code: str, vote_id: str, receipt: str) -> httpx.Response:
    url = f"/api/battles/{code}/votes/{vote_id}/receipts/{receipt}"
    if isinstance(app, InProcess):
        return await asyncio.to_thread(app.get, url)
    async with httpx.AsyncClient(base_url=app.url) as client:
        return await client.get(url)


def forged(receipt: str) -> str:
    """The same receipt with its last character changed: what a guess that is close looks like."""
    return receipt[:-1] + ("A" if receipt[-1] != "A" else "B")


async def test_a_receipt_verifies_as_what_it_chose_and_a_forged_one_does_not(app_on_each_store: InProcess) -> None:
    app = app_on_each_store
    created = app.create_battle(title="Receipts", battlers=FOUR)
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    phones = [await app.connect("audience", code) for _ in range(3)]
    vote_id = await to_the_vote(host)
    first = await phones[0].vote(vote_id, "b1")
    changed = await phones[0].vote(vote_id, "b3")  # a change of mind: the same receipt, the new choice
    assert first["receipt"] == changed["receipt"] and changed["status"] == "changed"
    others = [await phone.vote(vote_id, "b2") for phone in phones[1:]]
    assert len({first["receipt"], *(o["receipt"] for o in others)}) == 3
    # While the vote is open there is nothing to check yet.
    assert (await check(app, code, vote_id, first["receipt"])).json() == {"error": "vote_open", "vote_id": vote_id}

    await host.run("close_vote")
    # The console holds the digest with the counts before the reveal.
    tally = await host.expect("tally", lambda m: m["digest"] is not None)
    answer = await check(app, code, vote_id, first["receipt"].lower().replace("-", ""))
    assert answer.status_code == 200
    assert answer.json() == {"vote_id": vote_id, "receipt": first["receipt"], "choice": "b3", "digest": tally["digest"]}
    assert (await check(app, code, vote_id, others[0]["receipt"])).json()["choice"] == "b2"
    for wrong in (forged(first["receipt"]), "NOT-A-RECEIPT"):
        missed = await check(app, code, vote_id, wrong)
        assert (missed.status_code, missed.json()) == (404, {"error": "not_counted", "vote_id": vote_id})

    # A phone that comes back holds its receipt in its snapshot.
    again = await app.connect("audience", code, device=phones[0].device)
    assert again.my_ballot == {"vote_id": vote_id, "choice": "b3", "receipt": first["receipt"]}

    await host.run("reveal_results")
    vote = host.battle["rounds"][-1]["votes"][-1]
    assert (vote["totals"], vote["digest"]) == ({"b1": 0, "b2": 2, "b3": 1, "b4": 0}, tally["digest"])
    assert host.battle["log"][-1]["details"]["digest"] == tally["digest"]
    public = (await asyncio.to_thread(app.get, f"/api/battles/{code}")).json()
    assert public["rounds"][-1]["votes"][-1]["digest"] == tally["digest"]
    assert (await check(app, code, vote_id, others[1]["receipt"])).json()["choice"] == "b2"
    auth = {"authorization": f"Bearer {created['host_token']}"}
    exported = await asyncio.to_thread(app.get, f"/api/battles/{code}/export.csv", headers=auth)
    assert f"\nvote,1,{vote_id},,,digest,{tally['digest']}," in exported.text
    for client in [host, again, *phones]:
        await client.close()


async def test_a_voided_vote_has_no_count_to_check(app: InProcess) -> None:
    created = app.create_battle(title="Void", battlers=FOUR)
    host = await app.connect("host", created["code"], created["host_token"])
    phone = await app.connect("audience", created["code"])
    vote_id = await to_the_vote(host)
    mine = (await phone.vote(vote_id, "b2"))["receipt"]
    await host.run("void_vote", reason="The screen froze")
    answer = await check(app, created["code"], vote_id, mine)
    assert (answer.status_code, answer.json()) == (409, {"error": "vote_voided", "vote_id": vote_id})
    await host.close()
    await phone.close()


async def test_receipts_and_the_digest_agree_across_two_processes(two_servers: tuple[Server, Server]) -> None:
    one, two = two_servers
    created = one.create_battle(title="Two processes", battlers=FOUR)
    code = created["code"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])
    cohost = await Client.connect(two.ws_url, "host", code, created["cohost_token"])
    phones = [await Client.connect(server.ws_url, "audience", code) for server in (one, two, two)]
    vote_id = await to_the_vote(host)
    acks: list[dict[str, Any]] = [await p.vote(vote_id, c) for p, c in zip(phones, ["b1", "b4", "b4"])]
    await host.run("close_vote")
    digests = [
        (await console.expect("tally", lambda m: m["digest"] is not None))["digest"] for console in (host, cohost)
    ]
    assert digests[0] == digests[1]
    # Each receipt checks on either process, minted on one and counted by the other.
    for ack in acks:
        for server in (one, two):
            answer = (await check(server, code, vote_id, ack["receipt"])).json()
            assert answer == {
                "vote_id": vote_id,
                "receipt": ack["receipt"],
                "choice": ack["choice"],
                "digest": digests[0],
            }
    assert (await check(two, code, vote_id, forged(acks[0]["receipt"]))).status_code == 404
    await cohost.run("reveal_results")
    await host.wait_for(lambda b: b["rounds"][-1]["votes"][-1]["status"] == "revealed")
    assert host.battle["rounds"][-1]["votes"][-1]["digest"] == digests[0]
    for client in [host, cohost, *phones]:
        await client.close()


def test_a_vote_that_does_not_exist_has_no_receipts(app: InProcess) -> None:
    created = app.create_battle(title="Lobby", battlers=FOUR)
    assert app.get(f"/api/battles/{created['code']}/votes/r1v1/receipts/ABCDE-FGHIJ").status_code == 404
    assert app.get("/api/battles/NOPE22/votes/r1v1/receipts/ABCDE-FGHIJ").status_code == 404


async def test_a_vote_counted_by_end_battle_has_its_digest_and_receipts(app_on_each_store: InProcess) -> None:
    # Every vote the engine counts gets them, not only a revealed one (docs/rules.md, votes).
    app = app_on_each_store
    created = app.create_battle(title="Fire alarm", battlers=FOUR, rules={"vote_seconds": 300})
    host = await app.connect("host", created["code"], created["host_token"])
    phone = await app.connect("audience", created["code"])
    vote_id = await to_the_vote(host)
    mine = await phone.vote(vote_id, "b3")
    await host.run("end_battle", reason="Fire alarm")
    vote = host.battle["rounds"][-1]["votes"][-1]
    assert vote["status"] == "closed" and vote["digest"] == host.battle["log"][-1]["details"]["counted"]["digest"]
    answer = (await check(app, created["code"], vote_id, mine["receipt"])).json()
    assert answer == {"vote_id": vote_id, "receipt": mine["receipt"], "choice": "b3", "digest": vote["digest"]}
    await host.close()
    await phone.close()
