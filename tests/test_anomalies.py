"""Anomaly flags (battles.anomalies; docs/security.md, "Anomaly flags"): the rules on
seeded halls, then a real hall of 300 phones behind one address at human pace, which
raises no flag, and a script among them, which raises every one, on two processes that
share one Redis."""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from typing import Any

import httpx

from battles import anomalies
from battles.anomalies import HUMAN_MS, Trail
from tests.clients import Client
from tests.helpers import FOUR, to_the_vote
from tests.servers import Server

OPENED = 1_000_000
NAT = "192.0.2.1"


def hall_marks(rng: random.Random, phones: int, address: str = NAT) -> tuple[Counter[str], dict[str, int]]:
    """A hall that joined before the vote opened, voting at a person's pace: each phone taps
    after the vote reached it, some change their mind. Its marks and its hall."""
    noted: Counter[str] = Counter()
    for n in range(phones):
        trail = Trail(address, True, OPENED - rng.randint(1_000, 600_000), OPENED - rng.randint(0, 900))
        at = OPENED + rng.randint(HUMAN_MS + 100, 20_000)
        noted.update(anomalies.marks(trail, "counted", OPENED, at))
        if n % 3 == 0:  # a change of mind, a second or more later
            noted.update(anomalies.marks(trail, "changed", OPENED, at + rng.randint(1_000, 5_000)))
        noted.update(anomalies.marks(trail, "unchanged", OPENED, at + 1))  # a tap on the same: moves nothing
    return noted, {address: phones}


def script_marks(noted: Counter[str], devices: int, address: str) -> None:
    """A script that mints devices after the vote opened and votes at once, without the page."""
    for n in range(devices):
        trail = Trail(address, False, OPENED + 2_000 + n, OPENED + 2_000 + n)
        noted.update(anomalies.marks(trail, "counted", OPENED, OPENED + 2_050 + n))


def test_a_hall_behind_one_address_at_human_pace_raises_no_flag() -> None:
    for seed in range(20):
        noted, hall = hall_marks(random.Random(seed), 300)
        assert anomalies.flags(noted, hall) == {"joined_before": 300, "flags": []}, seed


def test_a_hall_on_many_addresses_with_a_few_late_and_fast_raises_no_flag() -> None:
    rng = random.Random(7)
    noted, hall = hall_marks(rng, 250)
    for n in range(50):  # phones on their own mobile data
        more, joined = hall_marks(rng, 1, f"198.51.100.{n}")
        noted.update(more)
        hall.update(joined)
    for n in range(9):  # nine latecomers, four of whom change their mind at once: below every flag
        late = Trail(NAT, True, OPENED + 5_000 * n, OPENED + 5_000 * n)
        noted.update(anomalies.marks(late, "counted", OPENED, OPENED + 5_000 * n + rng.randint(2_000, 9_000)))
        if n < 4:
            noted.update(anomalies.marks(late, "changed", OPENED, OPENED + 5_000 * n + 9_300))
    assert anomalies.flags(noted, hall) == {"joined_before": 300, "flags": []}


def test_a_script_raises_every_flag() -> None:
    noted, hall = hall_marks(random.Random(18), 300)
    script_marks(noted, 60, "203.0.113.9")
    raised = anomalies.flags(noted, hall)
    assert raised == {
        "joined_before": 300,
        "flags": [
            {"flag": "late_devices", "ballots": 60},
            {"flag": "inhuman_pace", "ballots": 60},
            {"flag": "pageless", "ballots": 60},
            {"flag": "address_share", "ballots": 60, "vote_share": 0.167, "hall_share": 0.0},
        ],
    }


def test_a_ballot_is_fast_from_the_latest_of_the_vote_the_socket_and_the_last_tap() -> None:
    trail = Trail(NAT, True, OPENED - 5_000, OPENED - 5_000)
    assert anomalies.marks(trail, "counted", OPENED, OPENED + HUMAN_MS - 1)[-1] == "fast"
    assert "fast" not in anomalies.marks(trail, "changed", OPENED, OPENED + 2 * HUMAN_MS)
    assert anomalies.marks(trail, "changed", OPENED, OPENED + 2 * HUMAN_MS + 10) == ["fast"]
    fresh = Trail(NAT, True, OPENED - 5_000, OPENED + 30_000)  # a socket that came back mid-vote
    assert anomalies.marks(fresh, "changed", OPENED, OPENED + 30_100) == ["fast"]
    assert anomalies.marks(fresh, "duplicate", OPENED, OPENED + 90_000) == []


def test_the_page_mark_is_the_battles_and_the_keys() -> None:
    mark = anomalies.page_mark(b"k" * 32, "ABCD12")
    assert re.fullmatch(r"[0-9a-f]{32}", mark)
    assert mark not in {anomalies.page_mark(b"k" * 32, "ABCD13"), anomalies.page_mark(b"x" * 32, "ABCD12")}


async def joined_hall(server: Server, code: str, phones: int) -> list[Client]:
    """Phones that loaded the join page, then joined: as a browser does it."""
    async with httpx.AsyncClient() as http:
        page = (await http.get(f"{server.url}/join/{code}")).text
    match = re.search(r'data-mark="([0-9a-f]{32})"', page)
    assert match, "the join page carries no mark"
    return list(
        await asyncio.gather(*(Client.connect(server.ws_url, "audience", code, page=match[1]) for _ in range(phones)))
    )


async def test_300_phones_behind_one_address_raise_no_flag_and_a_script_raises_them_all(
    two_servers: tuple[Server, Server],
) -> None:
    one, two = two_servers
    created = one.create_battle(title="A full hall", battlers=FOUR, rules={"vote_seconds": 600})
    code = created["code"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])
    hall = [*await joined_hall(one, code, 150), *await joined_hall(two, code, 150)]
    vote_id = await to_the_vote(host)
    rng = random.Random(2079)

    async def person(phone: Client) -> None:
        await phone.wait_for(lambda battle: battle["rounds"][-1]["votes"][-1]["status"] == "open")
        await asyncio.sleep(rng.uniform(0.9, 3.5))  # reading the names, choosing, tapping
        assert (await phone.vote(vote_id, rng.choice(["b1", "b2", "b3", "b4"])))["status"] == "counted"
        if rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(1.0, 2.0))
            await phone.vote(vote_id, "b1")

    await asyncio.gather(*(person(phone) for phone in hall))
    flags = await host.expect("flags", lambda m: m["joined_before"] == 300 and m["vote_id"] == vote_id)
    assert flags == {"type": "flags", "vote_id": vote_id, "joined_before": 300, "flags": []}
    await asyncio.sleep(1)  # the last marks and another live tick: still nothing raised
    again = await host.request({"type": "resync"})
    assert again["flags"] == {"vote_id": vote_id, "joined_before": 300, "flags": []}

    # A script on its own address mints 60 devices after the vote opened, without the page,
    # and votes at once from both processes.
    script: list[dict[str, Any]] = []
    for n in range(60):
        bot = await Client.connect(
            (one, two)[n % 2].ws_url, "audience", code, additional_headers={"x-forwarded-for": "203.0.113.9"}
        )
        script.append(await bot.vote(vote_id, "b4"))
        await bot.close()
    assert {ballot["status"] for ballot in script} == {"counted"}
    every_flag = [
        {"flag": "late_devices", "ballots": 60},
        {"flag": "inhuman_pace", "ballots": 60},
        {"flag": "pageless", "ballots": 60},
        {"flag": "address_share", "ballots": 60, "vote_share": 0.167, "hall_share": 0.0},
    ]
    await host.expect("flags", lambda m: m["flags"] == every_flag)
    # Flags only inform: every ballot is in the count.
    await host.run("close_vote")
    tally = await host.expect("tally", lambda m: m["digest"] is not None)
    assert tally["ballots"] == 360
    for client in [host, *hall]:
        await client.close()
