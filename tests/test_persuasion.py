"""Who moved minds (battles.persuasion, docs/rules.md): the matrix from counts, and a whole
evening counted by hand, played by real phones on a real server, on the embedded store and
on Redis with two processes, against both exports."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import random
from collections import Counter
from typing import Any

import httpx
import pytest

from battles import commands as c
from battles import game, persuasion
from battles.errors import Refused
from battles.game import Context
from battles.model import Battle, BattleDraft, BattlerDraft, Rules, Vote
from battles.stores.base import Secrets, Store
from tests.clients import Client
from tests.servers import Server
from tests.test_game import EVENING  # docs/rules.md, "Who moved minds", the worked example

T0 = 1_700_000_000_000

OPENING = Vote(id="opening1", choices=["b1", "b2", "b3", "undecided"], mode="keep", opened_ms=0, stance="opening")
CLOSING = OPENING.model_copy(update={"id": "closing2", "stance": "closing"})


def figures(matrix: Any) -> dict[str, tuple[int, int, int, int]]:
    return {m.battler: (m.won, m.lost, m.held, m.of) for m in matrix.battlers}


def test_the_worked_example_of_docs_rules_md() -> None:
    matrix = persuasion.matrix(OPENING, CLOSING, EVENING)
    assert figures(matrix) == {"b1": (1, 2, 4, 5), "b2": (5, 1, 0, 10), "b3": (0, 1, 0, 10)}
    assert [m.conversion for m in matrix.battlers] == [0.2, 0.5, 0.0]
    assert (matrix.paired, matrix.only_before, matrix.only_after) == (11, 2, 3)
    assert persuasion.most_minds(matrix) == ["b2"]
    assert persuasion.gains(matrix, ["b1", "b3"]) == {"b1": -1, "b3": -1}
    assert sum(flow.devices for flow in matrix.flows) == matrix.paired


def test_most_minds_names_all_who_tie_on_won_and_lost_and_nobody_when_nobody_moved() -> None:
    tied = persuasion.matrix(OPENING, CLOSING, {("b1", "b2"): 1, ("b2", "b1"): 1, ("b3", "b3"): 5})
    assert persuasion.most_minds(tied) == ["b1", "b2"]
    still = persuasion.matrix(OPENING, CLOSING, {("b1", "b1"): 3, ("undecided", "undecided"): 2})
    assert persuasion.most_minds(still) == []
    assert [m.conversion for m in persuasion.matrix(OPENING, CLOSING, {}).battlers] == [None, None, None]


# --- a whole evening, hand-counted ----------------------------------------------------------
#
# Eight phones, three battlers, a final of two. p2 and p5 change their minds within a poll
# (the newest choice counts); p6 leaves after the opening poll; p8 joins after it.
OPENING_BALLOTS = {"p1": ["b1"], "p2": ["b1", "b2"], "p3": ["b2"], "p4": ["undecided"], "p5": ["b3"],
                   "p6": ["b1"], "p7": ["b2"]}  # fmt: skip
ROUND_ONE = {"p1": "b1", "p2": "b2", "p3": "b2", "p4": "b3", "p5": "b1", "p7": "b1", "p8": "b2"}  # b3 leaves
FINAL = {"p1": "b1", "p2": "b2", "p3": "b1", "p4": "b2", "p5": "b1", "p7": "b1", "p8": "b2"}  # b1 wins
CLOSING_BALLOTS = {"p1": ["b1"], "p2": ["b2"], "p3": ["b1"], "p4": ["b2"], "p5": ["b3", "b1"], "p7": ["undecided"],
                   "p8": ["b2"]}  # fmt: skip
# By hand: opening -> closing, p1 b1->b1, p2 b2->b2, p3 b2->b1, p4 undecided->b2, p5 b3->b1,
# p7 b2->undecided; p6 only in the opening, p8 only in the closing.
BY_HAND_EVENING = {
    "round": None, "paired": 6, "only_before": 1, "only_after": 1,
    "battlers": {"b1": (2, 0, 1, 5, 2, 0.4), "b2": (1, 2, 1, 3, -1, 0.3333), "b3": (0, 1, 0, 5, -1, 0.0)},
}  # fmt: skip
# Round one's vote -> the final's: p3 b2->b1, p4 b3->b2, everyone else held.
BY_HAND_ROUND_TWO = {
    "round": 2, "paired": 7, "only_before": 0, "only_after": 0,
    "battlers": {"b1": (1, 0, 3, 4, 1, 0.25), "b2": (1, 1, 2, 4, 0, 0.25)},
}  # fmt: skip


async def vote_all(phones: dict[str, Client], ballots: dict[str, list[str]], vote_id: str) -> None:
    for name, choices in ballots.items():
        for choice in choices:
            reply = await phones[name].vote(vote_id, choice)
            assert reply["type"] == "ballot", reply


async def decide(host: Client) -> None:
    """Close the open vote or poll and reveal it."""
    await host.run("close_vote")
    await host.run("reveal_results")


async def play_the_evening(servers: list[Server]) -> tuple[dict[str, Any], list[str]]:
    """The evening above, the phones spread over ``servers``; returns the created battle
    and the phones' device ids."""
    one = servers[0]
    created = one.create_battle(title="Who moved minds", battlers=[{"name": f"Battler {n}", "vision": f"Vision {n}"}
                                for n in (1, 2, 3)], rules={"stance_polls": True})  # fmt: skip
    code = created["code"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])

    async def phone(n: int) -> Client:
        return await Client.connect(servers[n % len(servers)].ws_url, "audience", code)

    phones = {f"p{n}": await phone(n) for n in range(1, 8)}
    await host.run("open_stance", stance="opening")
    await vote_all(phones, OPENING_BALLOTS, "opening1")
    await decide(host)
    await phones.pop("p6").close()  # leaves
    phones["p8"] = await phone(8)  # joins late
    devices = [str(client.device) for client in phones.values()]

    for ballots in (ROUND_ONE, FINAL):
        await host.run("start_round")
        while host.battle["phase"] != "vote":
            await host.run("next")
        await host.run("open_vote")
        vote_id = host.battle["rounds"][-1]["votes"][-1]["id"]
        await vote_all(phones, {name: [choice] for name, choice in ballots.items()}, vote_id)
        await decide(host)
        await host.run("confirm_elimination")
    assert host.battle["winner"] == "b1"

    await host.run("open_stance", stance="closing")
    closing = host.battle["stances"][-1]["id"]
    await vote_all(phones, CLOSING_BALLOTS, closing)
    await decide(host)
    assert host.battle["phase"] == "final"
    minds = host.battle["minds"]
    assert {m["battler"]: (m["won"], m["lost"]) for m in minds["battlers"]} == {
        "b1": (2, 0),
        "b2": (1, 2),
        "b3": (0, 1),
    }
    await host.run("end_battle")
    for client in (host, *phones.values()):
        await client.close()
    return created, devices


def check_exports(server: Server, created: dict[str, Any], devices: list[str]) -> None:
    """Both exports, with the results link's token, say what the hand count says, and no more."""
    results_token = created["links"]["results"].split("#", 1)[1]
    headers = {"authorization": f"Bearer {results_token}"}
    base = f"{server.url}/api/battles/{created['code']}"
    document = httpx.get(f"{base}/export.json", headers=headers, timeout=10).json()
    got = [
        {
            "round": matrix["round"], "paired": matrix["paired"], "only_before": matrix["only_before"],
            "only_after": matrix["only_after"],
            "battlers": {m["battler"]: (m["won"], m["lost"], m["held"], m["of"], m["gain"], m["conversion"])
                         for m in matrix["battlers"]},
        }
        for matrix in document["persuasion"]
    ]  # fmt: skip
    assert got == [BY_HAND_EVENING, BY_HAND_ROUND_TWO]
    evening = document["persuasion"][0]
    assert (evening["before"], evening["after"]) == ("opening1", "closing2")
    assert [stance["totals"] for stance in document["battle"]["stances"]] == [
        {"b1": 2, "b2": 3, "b3": 1, "undecided": 1},
        {"b1": 3, "b2": 3, "b3": 0, "undecided": 1},
    ]
    table = httpx.get(f"{base}/export.csv", headers=headers, timeout=10).text
    # Counts only: no device is named, in either export.
    assert not [device for device in devices if device in str(document) or device in table]

    rows = list(csv.DictReader(io.StringIO(table)))
    polls = {(r["vote"], r["battler"]): r["value"] for r in rows if r["section"] == "vote" and r["field"] == "votes"}
    assert [polls[("opening1", choice)] for choice in ("b1", "b2", "b3", "undecided")] == ["2", "3", "1", "1"]
    assert [polls[("closing2", choice)] for choice in ("b1", "b2", "b3", "undecided")] == ["3", "3", "0", "1"]
    minds = {(r["round"], r["battler"], r["field"]): r["value"] for r in rows if r["section"] == "minds"}
    for expected in (BY_HAND_EVENING, BY_HAND_ROUND_TWO):
        at = str(expected["round"] or "")
        for field in ("paired", "only_before", "only_after"):
            assert minds[(at, "", field)] == str(expected[field])
        for battler, values in expected["battlers"].items():  # type: ignore[attr-defined]
            for field, value in zip(("won", "lost", "held", "of", "gain", "conversion"), values, strict=True):
                assert minds[(at, battler, field)] == str(value)
    flows = {(r["battler"], r["field"]): int(r["value"]) for r in rows if r["section"] == "flow" and not r["round"]}
    assert flows == {("b1", "to:b1"): 1, ("b2", "to:b2"): 1, ("b2", "to:b1"): 1, ("undecided", "to:b2"): 1,
                     ("b3", "to:b1"): 1, ("b2", "to:undecided"): 1}  # fmt: skip


async def test_the_evening_counted_by_hand_on_the_embedded_store(server: Server) -> None:
    check_exports(server, *await play_the_evening([server]))


@pytest.mark.usefixtures("redis_server")
async def test_the_evening_counted_by_hand_on_redis_with_two_processes(two_servers: tuple[Server, Server]) -> None:
    check_exports(two_servers[1], *await play_the_evening(list(two_servers)))


# --- a seeded random hall, on both stores ------------------------------------------------------


def by_hand(
    opening: dict[str, str], closing: dict[str, str], battlers: list[str]
) -> dict[str, tuple[int, int, int, int]]:
    """Each battler's won, lost, held and of, device by device: the rules' words, as a loop."""
    both = [device for device in opening if device in closing]
    return {
        battler: (
            sum(opening[d] != battler and closing[d] == battler for d in both),
            sum(opening[d] == battler and closing[d] != battler for d in both),
            sum(opening[d] == battler == closing[d] for d in both),
            sum(opening[d] != battler for d in both),
        )
        for battler in battlers
    }


async def hall_votes(
    store: Store, battle: Battle, rng: random.Random, devices: list[str]
) -> tuple[Battle, dict[str, str]]:
    """The devices tap away (several taps each, changes of mind) while the host closes the poll
    at a random moment: what each device was last acknowledged with is what counts."""
    vote = battle.open_vote
    assert vote is not None
    counted: dict[str, str] = {}

    async def phone(device: str) -> None:
        for tap in range(rng.randint(1, 4)):
            await asyncio.sleep(0)
            with contextlib.suppress(Refused):  # vote_closed: the close came first
                receipt = await store.cast_ballot(
                    battle.code, vote.id, device, rng.choice(vote.choices), f"{device}-{tap}", T0
                )
                counted[device] = receipt.choice

    async def host() -> Battle:
        for _ in range(rng.randint(0, 12)):
            await asyncio.sleep(0)
        closed = game.apply(battle, c.CloseVote(type="close_vote"), Context(now_ms=T0)).battle
        assert await store.commit(closed, b"closed")
        return closed

    *_, closed = await asyncio.gather(*(phone(device) for device in devices), host())
    tally = await store.tally(battle.code, vote.id)
    assert tally.totals == dict(Counter(counted.values())), "an acknowledged ballot was lost"
    revealed = game.apply(closed, c.RevealResults(type="reveal_results"), Context(now_ms=T0, totals=tally.totals))
    assert await store.commit(revealed.battle, b"revealed")
    return revealed.battle, counted


@pytest.mark.parametrize("seed", range(4))
async def test_a_random_hall_with_changes_of_mind_late_joiners_and_leavers_is_counted_device_by_device(
    store: Store, seed: int
) -> None:
    rng = random.Random(seed)
    draft = BattleDraft(title="Seeded", rules=Rules(stance_polls=True),
                        battlers=[BattlerDraft(name=f"B{n}", vision="V") for n in range(1, 5)])  # fmt: skip
    battle = game.create("SEED", draft, T0)
    assert await store.create(battle, Secrets.mint())
    hall = [f"d{n}" for n in range(40)]
    early, late = hall[:30], hall[30:]
    battle = game.apply(battle, c.OpenStance(type="open_stance", stance="opening"), Context(now_ms=T0)).battle
    assert await store.commit(battle, b"opened")
    battle, opening = await hall_votes(store, battle, rng, early)
    # Round one: a vote among the four stands in for the closing poll here (any two votes pair).
    for command in (c.StartRound(type="start_round"), *[c.Next(type="next")] * 5, c.OpenVote(type="open_vote")):
        battle = game.apply(battle, command, Context(now_ms=T0)).battle
        assert await store.commit(battle, b"moved on")
    staying = rng.sample(early, 20)  # ten leave after the opening poll; ten join late
    battle, second = await hall_votes(store, battle, rng, staying + late)
    before, after = battle.stances[0], battle.rounds[0].votes[0]
    matrix = persuasion.matrix(before, after, await store.transitions(battle.code, before.id, after.id))
    assert figures(matrix) == by_hand(opening, second, after.choices), f"seed {seed}"
    assert matrix.paired == len(set(opening) & set(second)), f"seed {seed}"
    assert (matrix.only_before, matrix.only_after) == (len(set(opening) - set(second)), len(set(second) - set(opening)))


async def test_under_the_gain_rule_the_largest_gain_wins_though_another_has_more_closing_votes(
    server: Server,
) -> None:
    created = server.create_battle(title="IQ2", battlers=[{"name": f"Battler {n}", "vision": "V"} for n in (1, 2, 3)],
                                   rules={"winner": "gain"})  # fmt: skip
    code = created["code"]
    host = await Client.connect(server.ws_url, "host", code, created["host_token"])
    phones = {f"p{n}": await Client.connect(server.ws_url, "audience", code) for n in range(1, 9)}
    await host.run("open_stance", stance="opening")
    await vote_all(phones, {"p1": ["b1"], "p2": ["b1"], "p3": ["b2"], "p4": ["undecided"], "p5": ["undecided"]},
                   "opening1")  # fmt: skip
    await decide(host)
    await host.run("start_round")
    for _ in range(3):
        await host.run("next")
    await host.run("open_vote")
    await vote_all(phones, {"p1": ["b1"], "p2": ["b1"], "p3": ["b2"], "p4": ["b2"]}, "r1v1")  # b3 leaves
    await decide(host)
    await host.run("confirm_elimination")
    await host.run("start_round")
    for _ in range(2):
        await host.run("next")
    await host.run("open_vote")  # the final's vote is the closing poll
    final = host.battle["rounds"][-1]["votes"][-1]
    assert (final["id"], final["stance"], final["choices"]) == ("r2v1", "closing", ["b1", "b2", "b3", "undecided"])
    # b1 keeps its two and gains three late joiners (not paired): 5 votes, gain 0. b2 wins
    # the two undecided: 3 votes, gain 2.
    await vote_all(phones, {"p1": ["b1"], "p2": ["b1"], "p3": ["b2"], "p4": ["b2"], "p5": ["b2"], "p6": ["b1"],
                            "p7": ["b1"], "p8": ["b1"]}, "r2v1")  # fmt: skip
    await decide(host)
    rnd = host.battle["rounds"][-1]
    assert rnd["votes"][-1]["totals"] == {"b1": 5, "b2": 3, "b3": 0, "undecided": 0}
    assert rnd["proposal"]["leaving"] == ["b1"]
    assert {m["battler"]: m["won"] - m["lost"] for m in host.battle["minds"]["battlers"]} == {"b1": 0, "b2": 2, "b3": 0}
    await host.run("confirm_elimination")
    assert host.battle["winner"] == "b2"
    for client in (host, *phones.values()):
        await client.close()


async def test_a_phone_back_during_a_stance_poll_finds_its_ballot_and_the_console_flags_the_poll(
    server: Server,
) -> None:
    """A stance poll is the vote of its phase for a phone's snapshot and the console's flags,
    as a round's vote is (the round's vote alone was read: a phone back lost its choice)."""
    created = server.create_battle(
        title="Stances",
        battlers=[{"name": "Ada", "vision": "A"}, {"name": "Bo", "vision": "B"}],
        rules={"stance_polls": True},
    )
    code = created["code"]
    host = await Client.connect(server.ws_url, "host", code, created["host_token"])
    phone = await Client.connect(server.ws_url, "audience", code)
    await host.run("open_stance", stance="opening")
    poll = host.battle["stances"][-1]["id"]
    cast = await phone.vote(poll, "b2")
    await phone.close()
    again = await Client.connect(server.ws_url, "audience", code, device=phone.device)
    assert again.snapshot["my_ballot"] == {"vote_id": poll, "choice": "b2", "receipt": cast["receipt"]}
    console = await Client.connect(server.ws_url, "host", code, created["host_token"])
    assert (console.snapshot["flags"]["vote_id"], console.snapshot["flags"]["joined_before"]) == (poll, 1)
    for client in (host, again, console):
        await client.close()
