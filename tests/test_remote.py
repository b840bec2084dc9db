"""The remote audience (docs/protocol.md, "The remote audience", "Vote windows"): a phone of
the stream votes in its own window, the hall's shifted by its stream delay, and the
reveal waits until every such window has ended.

The store tests run on both stores with the battle's clock passed in (``now_ms``), so a
20 s delay costs no 20 s; the socket tests run the app in this process with delays of
about a second, the same logic on a short clock.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse

from battles import commands as c
from battles import game
from battles.errors import Refused
from battles.game import Context
from battles.model import Battle, BattleDraft, BattlerDraft, Rules
from battles.stores import EmbeddedStore
from battles.stores.base import Secrets, Store
from tests.clients import Client, offer
from tests.helpers import FOUR, to_the_vote
from tests.inprocess import InProcess, InProcessSocket
from tests.servers import Server

T0 = 1_700_000_000_000
S = 1000
CODE = "RM01"


async def battle_in_a_vote(store: Store, vote_seconds: int = 45, **rules: Any) -> Battle:
    """A battle with the remote link on (``rules`` on top), its vote opened at T0."""
    draft = BattleDraft(
        title="Streamed",
        rules=Rules(remote=True, vote_seconds=vote_seconds, **rules),
        battlers=[BattlerDraft(name=n, vision=f"Vision {n}") for n in ("Asha", "Bo", "Camille")],
    )
    battle = game.create(CODE, draft, T0)
    assert await store.create(battle, Secrets.mint())
    steps: list[Any] = [c.StartRound(type="start_round")] + [c.Next(type="next")] * 4 + [c.OpenVote(type="open_vote")]
    for command in steps:
        battle = await commit(store, battle, command, T0)
    assert battle.open_vote is not None
    return battle


async def commit(store: Store, battle: Battle, command: Any, now_ms: int) -> Battle:
    new = game.apply(battle, command, Context(now_ms=now_ms)).battle
    assert await store.commit(new, b"")
    return new


async def refusal(store: Store, device: str, at_ms: int, remote: bool = True, ballot_id: str = "late-one") -> str:
    with pytest.raises(Refused) as refused:
        await store.cast_ballot(CODE, "r1v1", device, "b1", ballot_id, at_ms, remote=remote)
    return refused.value.reason


async def test_a_phone_20_s_behind_votes_15_s_after_the_hall_closed_and_is_counted(store: Store) -> None:
    battle = await battle_in_a_vote(store)
    assert await store.watch(CODE, "stream") is None
    assert await store.set_delay(CODE, "stream", 20 * S) == 20 * S
    await store.cast_ballot(CODE, "r1v1", "hall", "b2", "h1", T0 + 10 * S)
    closed = await commit(store, battle, c.CloseVote(type="close_vote"), T0 + 30 * S)
    assert closed.round is not None and closed.round.votes[0].status == "closed"
    # The hall is out; the stream shows 15 s of the vote still to run.
    assert await refusal(store, "hall", T0 + 45 * S, remote=False) == "vote_closed"
    receipt = await store.cast_ballot(CODE, "r1v1", "stream", "b1", "s1", T0 + 45 * S, remote=True)
    assert receipt.status == "counted"
    assert (await store.tally(CODE, "r1v1")).totals == {"b1": 1, "b2": 1}
    assert await store.ballots(CODE, "r1v1") == {"hall": "b2", "stream": "b1"}
    # Its own window ends where its stream shows the close: 30 s + 20 s.
    assert await refusal(store, "stream", T0 + 50 * S) == "vote_closed"
    # And before its stream shows the vote open, there is no window yet.
    assert await refusal(store, "stream", T0 + 19 * S) == "vote_not_open"


async def test_a_remote_window_opens_when_its_stream_shows_the_vote(store: Store) -> None:
    await battle_in_a_vote(store)
    await store.set_delay(CODE, "stream", 20 * S)
    assert await refusal(store, "stream", T0 + 20 * S - 1) == "vote_not_open"
    assert (await store.cast_ballot(CODE, "r1v1", "stream", "b1", "s1", T0 + 20 * S, remote=True)).status == "counted"
    # The timer's deadline (45 s) shifted: the stream still votes at 64.9 s, not at 65 s.
    assert (await store.cast_ballot(CODE, "r1v1", "stream", "b2", "s2", T0 + 65 * S - 1, remote=True)).status == (
        "changed"
    )
    assert await refusal(store, "stream", T0 + 65 * S) == "vote_closed"
    # A hall phone at the deadline is out.
    assert await refusal(store, "hall", T0 + 45 * S, remote=False) == "vote_closed"


async def test_a_device_without_a_delay_of_its_own_has_the_default(store: Store) -> None:
    battle = await battle_in_a_vote(store, remote_delay_seconds=10)
    assert await store.watch(CODE, "fresh") is None
    await commit(store, battle, c.CloseVote(type="close_vote"), T0 + 30 * S)
    assert (await store.cast_ballot(CODE, "r1v1", "fresh", "b3", "f1", T0 + 39 * S, remote=True)).status == "counted"
    assert await refusal(store, "fresh", T0 + 40 * S) == "vote_closed"
    # The same device on the hall's page votes in the hall's window.
    assert await refusal(store, "fresh", T0 + 39 * S, remote=False, ballot_id="f2") == "vote_closed"


async def test_a_delay_is_capped_at_the_maximum_and_over_it_the_window_is_the_halls(store: Store) -> None:
    battle = await battle_in_a_vote(store, max_delay_seconds=30, remote_delay_seconds=40)
    assert await store.set_delay(CODE, "far", 45 * S) == 30 * S
    assert await store.remote_delays(CODE) == (30 * S,)
    await store.watch(CODE, "default")  # its default, 40 s, is over the maximum
    assert await store.remote_delays(CODE) == (30 * S, None)
    closed = await commit(store, battle, c.CloseVote(type="close_vote"), T0 + 20 * S)
    assert closed.round is not None
    assert await refusal(store, "default", T0 + 21 * S) == "vote_closed"
    assert (await store.cast_ballot(CODE, "r1v1", "far", "b1", "x1", T0 + 49 * S, remote=True)).status == "counted"


async def test_a_delay_is_locked_while_a_closed_votes_windows_run_and_kept_for_the_evening(store: Store) -> None:
    battle = await battle_in_a_vote(store)
    await store.set_delay(CODE, "stream", 5 * S)
    closed = await commit(store, battle, c.CloseVote(type="close_vote"), T0 + 10 * S)
    with pytest.raises(Refused) as locked:
        await store.set_delay(CODE, "stream", 25 * S)
    assert locked.value.reason == "delay_locked"
    assert await store.watch(CODE, "stream") == 5 * S  # kept, and kept as it was
    delays = await store.remote_delays(CODE)
    assert delays == (5 * S,)
    reveal = c.RevealResults(type="reveal_results")
    revealed = game.apply(closed, reveal, Context(now_ms=T0 + 20 * S, totals={}, remote_delays=delays)).battle
    assert await store.commit(revealed, b"")
    assert await store.set_delay(CODE, "stream", 25 * S) == 25 * S
    assert await store.watch(CODE, "stream") == 25 * S


async def test_an_offline_tap_counts_inside_its_window_only(store: Store) -> None:
    """A tap kept offline is sent again with its ballot id when the phone is back: where it
    arrives decides, against its own window (docs/protocol.md, "Vote windows")."""
    battle = await battle_in_a_vote(store)
    await store.set_delay(CODE, "back-in-time", 20 * S)
    await store.set_delay(CODE, "back-too-late", 20 * S)
    await commit(store, battle, c.CloseVote(type="close_vote"), T0 + 30 * S)
    tapped = await store.cast_ballot(CODE, "r1v1", "back-in-time", "b1", "tap-1", T0 + 49 * S, remote=True)
    assert tapped.status == "counted"
    # Sent once more (the acknowledgement was lost): the same ballot, even after the window.
    again = await store.cast_ballot(CODE, "r1v1", "back-in-time", "b1", "tap-1", T0 + 80 * S, remote=True)
    assert again.status == "duplicate"
    assert await refusal(store, "back-too-late", T0 + 50 * S, ballot_id="tap-2") == "vote_closed"
    assert (await store.tally(CODE, "r1v1")).totals == {"b1": 1}


async def test_no_remote_ballot_once_the_vote_is_revealed_or_the_battle_ended(store: Store) -> None:
    battle = await battle_in_a_vote(store)
    await store.set_delay(CODE, "stream", 20 * S)
    closed = await commit(store, battle, c.CloseVote(type="close_vote"), T0 + 30 * S)
    ended = game.apply(
        closed, c.EndBattle(type="end_battle"), Context(now_ms=T0 + 60 * S, totals={}, remote_delays=(20 * S,))
    ).battle
    assert await store.commit(ended, b"")
    assert await refusal(store, "stream", T0 + 31 * S) == "vote_closed"


# --- over the socket: the remote role, set_delay, the reveal's wait ------------------------


def test_a_remote_socket_is_refused_while_the_remote_link_is_off(app: InProcess) -> None:
    created = app.create_battle(title="Hall only", battlers=FOUR)
    with pytest.raises(WebSocketDenialResponse) as refused:
        app.websocket_connect(f"/ws/audience/{created['code']}", subprotocols=offer(remote=True)).__enter__()
    assert refused.value.status_code == 403


async def test_a_delay_sent_after_the_host_turned_the_remote_link_off_is_refused_and_kept_as_it_was(
    app_on_each_store: InProcess,
) -> None:
    """With the link off the cap is 0: a delay taken then would have stayed 0 for the evening,
    and given the phone the hall's window once the link was on again."""
    app = app_on_each_store
    created = app.create_battle(title="Off and on", battlers=FOUR, rules={"remote": True})
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    stream = await remote_phone_of(app, code, None)
    assert (await stream.request({"type": "set_delay", "delay_ms": 4000}))["delay_ms"] == 4000
    await host.run("edit_battle", rules={**host.battle["rules"], "remote": False})
    refused = await stream.request({"type": "set_delay", "delay_ms": 6000})
    assert (refused["type"], refused["reason"]) == ("error", "remote_off")
    await host.run("edit_battle", rules={**host.battle["rules"], "remote": True})
    again = await remote_phone_of(app, code, stream.device)
    assert again.snapshot["my_delay"]["own_ms"] == 4000
    for client in (host, stream, again):
        await client.close()


async def test_a_remote_phone_keeps_its_delay_votes_after_the_halls_close_and_the_reveal_waits(
    app_on_each_store: InProcess,
) -> None:
    app = app_on_each_store
    rules = {"remote": True, "max_delay_seconds": 5, "vote_seconds": 60}
    created = app.create_battle(title="Streamed", battlers=FOUR, rules=rules)
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    hall = await app.connect("audience", code)
    stream = await remote_phone_of(app, code, None)
    assert stream.snapshot["my_delay"] == {"own_ms": None, "delay_ms": 0}
    assert "my_delay" not in hall.snapshot
    # A hall phone has no stream delay to set; a remote one asks for 9 s and is held at 5 s.
    refused = await hall.request({"type": "set_delay", "delay_ms": 1500})
    assert (refused["type"], refused["reason"]) == ("error", "not_remote")
    held = await stream.request({"type": "set_delay", "delay_ms": 9000})
    assert (held["type"], held["delay_ms"]) == ("ack", 5000)
    bad = await stream.request({"type": "set_delay", "delay_ms": -1})
    assert (bad["type"], bad["reason"]) == ("error", "bad_message")
    held = await stream.request({"type": "set_delay", "delay_ms": 1500})
    assert held["delay_ms"] == 1500
    vote_id = await to_the_vote(host)
    early = await stream.vote(vote_id, "b1")
    assert (early["type"], early["reason"]) == ("error", "vote_not_open")
    await asyncio.sleep(1.5)
    assert (await hall.vote(vote_id, "b2"))["status"] == "counted"
    closed_at = time.monotonic()
    await host.run("close_vote")
    assert (await hall.vote(vote_id, "b3"))["reason"] == "vote_closed"
    # The stream still shows the vote open: its ballot counts after the hall's close.
    assert (await stream.vote(vote_id, "b1"))["status"] == "counted"
    locked = await stream.request({"type": "set_delay", "delay_ms": 3000})
    assert locked["reason"] == "delay_locked"
    waiting = await host.command("reveal_results")
    assert (waiting["type"], waiting["reason"]) == ("error", "remote_wait")
    assert 0 < waiting["params"]["wait_ms"] <= 1500
    await asyncio.sleep(max(0.0, 1.6 - (time.monotonic() - closed_at)))
    assert (await stream.vote(vote_id, "b2"))["reason"] == "vote_closed"
    await host.run("reveal_results")
    revealed = host.battle["rounds"][-1]["votes"][-1]
    assert revealed["totals"] == {"b1": 1, "b2": 1, "b3": 0, "b4": 0}
    for client in (host, hall, stream):
        await client.close()
    # The delay is the device's for the evening: a new socket of it finds it in its snapshot.
    again = await remote_phone_of(app, code, stream.device)
    assert again.snapshot["my_delay"] == {"own_ms": 1500, "delay_ms": 1500}
    await again.close()


async def test_a_receipt_is_checked_once_the_windows_end_and_the_count_holds_the_streams_ballots(
    app_on_each_store: InProcess,
) -> None:
    """A check while a remote window runs would have counted the vote for good, and the
    stream's later ballot (acknowledged) would have been left out of the reveal. The console
    gets the digest as soon as the windows end, before the reveal, as without a stream."""
    app = app_on_each_store
    created = app.create_battle(
        title="Receipts", battlers=FOUR, rules={"remote": True, "max_delay_seconds": 60, "vote_seconds": 60}
    )
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    hall = await app.connect("audience", code)
    stream = await remote_phone_of(app, code, None)
    assert (await stream.request({"type": "set_delay", "delay_ms": 1000}))["delay_ms"] == 1000
    vote_id = await to_the_vote(host)
    await asyncio.sleep(1.0)
    receipt = (await hall.vote(vote_id, "b1"))["receipt"]
    await host.run("close_vote")
    closed_at = time.monotonic()
    checked = await asyncio.to_thread(app.get, f"/api/battles/{code}/votes/{vote_id}/receipts/{receipt}")
    assert (checked.status_code, checked.json()["error"]) == (409, "vote_open")
    assert (await stream.vote(vote_id, "b2"))["status"] == "counted"
    await asyncio.sleep(max(0.0, 1.1 - (time.monotonic() - closed_at)))
    checked = await asyncio.to_thread(app.get, f"/api/battles/{code}/votes/{vote_id}/receipts/{receipt}")
    assert checked.status_code == 200 and checked.json()["choice"] == "b1", checked.text
    # The console's tally: counted, with its digest, before the reveal (59 s before the maximum).
    tally = await host.expect("tally", lambda message: message.get("digest") is not None)
    assert tally["digest"] == checked.json()["digest"]
    await host.run("reveal_results")
    revealed = host.battle["rounds"][-1]["votes"][-1]
    assert (revealed["totals"], revealed["ballots"]) == ({"b1": 1, "b2": 1, "b3": 0, "b4": 0}, 2)
    assert revealed["digest"] == tally["digest"]
    for client in (host, hall, stream):
        await client.close()


async def remote_phone_of(app: InProcess, code: str, device: str | None) -> Client:
    session = await asyncio.to_thread(
        lambda: app.websocket_connect(f"/ws/audience/{code}", subprotocols=offer(device=device, remote=True))
    )
    await asyncio.to_thread(session.__enter__)
    app.sessions.append(session)
    return await Client.joined(InProcessSocket(session, asyncio.get_running_loop()), "audience", device)  # type: ignore[arg-type]


async def test_a_store_file_of_the_schema_before_the_remote_audience_opens_and_takes_ballots(tmp_path: Path) -> None:
    """An embedded file written before the remote audience (schema 1: its battles and ballots
    without the columns of the vote windows and the online part) is upgraded in place."""
    path = str(tmp_path / "before.sqlite3")
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE battles (code TEXT PRIMARY KEY, version INTEGER NOT NULL, state TEXT NOT NULL,"
        " host_token TEXT NOT NULL, screen_token TEXT NOT NULL, cohost_token TEXT NOT NULL, vote_id TEXT,"
        " vote_open INTEGER NOT NULL, vote_deadline_ms INTEGER NOT NULL, vote_choices TEXT NOT NULL,"
        " next_deadline_ms INTEGER);"
        "CREATE TABLE ballots (code TEXT NOT NULL, vote_id TEXT NOT NULL, device TEXT NOT NULL,"
        " choice TEXT NOT NULL, PRIMARY KEY (code, vote_id, device)) WITHOUT ROWID;"
        "PRAGMA user_version = 1;"
    )
    db.close()
    store = EmbeddedStore(path)
    await store.start(lambda code, message: None)
    try:
        await battle_in_a_vote(store)
        await store.set_delay(CODE, "stream", 3 * S)
        assert (await store.cast_ballot(CODE, "r1v1", "stream", "b1", "s1", T0 + 3 * S, remote=True)).status == (
            "counted"
        )
        assert (await store.tally(CODE, "r1v1")).online == {"b1": 1}
    finally:
        await store.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2


def test_the_watch_page_and_its_qr_code_exist_only_while_the_remote_link_is_on(app: InProcess) -> None:
    hall_only = app.create_battle(title="Hall only", battlers=FOUR)["code"]
    streamed = app.create_battle(title="Streamed", battlers=FOUR, rules={"remote": True})["code"]
    page = app.get(f"/watch/{streamed}")
    assert page.status_code == 200
    assert 'id="stream-box"' in page.text
    assert 'id="stream-box"' not in app.get(f"/join/{streamed}").text
    off = app.get(f"/watch/{hall_only}")
    assert off.status_code == 404
    assert "This battle takes no votes from its stream" in off.text
    assert app.get("/watch/ZZZZZZ").status_code == 404
    qr = app.get(f"/qr/{streamed}/watch.svg")
    assert (qr.status_code, qr.headers["content-type"]) == (200, "image/svg+xml")
    assert qr.content != app.get(f"/qr/{streamed}.svg").content
    assert app.get(f"/qr/{hall_only}/watch.svg").status_code == 404
    assert app.get("/qr/ZZZZZZ/watch.svg").status_code == 404


# --- on Redis with two processes: five phones in the hall, five behind the stream -------------


async def test_an_evening_on_two_processes_counts_each_phone_in_its_own_window(
    two_servers: tuple[Server, Server],
) -> None:
    """Each remote phone keeps its delay on whichever process it joins, and the other process
    holds its ballots to the window that delay makes: the same logic as a 5 to 25 s stream,
    on delays of 1 to 3 s."""
    one, two = two_servers
    created = one.create_battle(
        title="Two processes", battlers=FOUR, rules={"remote": True, "max_delay_seconds": 5, "vote_seconds": 60}
    )
    code = created["code"]
    host = await Client.connect(one.ws_url, "host", code, created["host_token"])
    processes = (one, two)
    hall = [await Client.connect(processes[i % 2].ws_url, "audience", code) for i in range(5)]
    delays_ms = [1000, 1500, 2000, 2500, 3000]
    stream = []
    for i, delay_ms in enumerate(delays_ms):
        phone = await Client.connect(processes[i % 2].ws_url, "audience", code, remote=True)
        assert (await phone.request({"type": "set_delay", "delay_ms": delay_ms}))["delay_ms"] == delay_ms
        await phone.close()
        # Back on the other process: the delay is the device's, kept in Redis.
        stream.append(
            await Client.connect(processes[(i + 1) % 2].ws_url, "audience", code, device=phone.device, remote=True)
        )
        assert stream[-1].snapshot["my_delay"] == {"own_ms": delay_ms, "delay_ms": delay_ms}
    vote_id = await to_the_vote(host)
    for phone, choice in zip(hall, ["b1", "b1", "b2", "b3", "b4"], strict=True):
        assert (await phone.vote(vote_id, choice))["status"] == "counted"
    await asyncio.sleep(3.2)  # every stream shows the vote open by now
    await host.run("close_vote")
    closed_ms = host.battle["rounds"][-1]["votes"][-1]["closed_ms"]
    assert (await hall[0].vote(vote_id, "b2"))["reason"] == "vote_closed"

    async def at(ms: int) -> None:
        await asyncio.sleep(max(0.0, (ms - time.time() * 1000) / 1000))

    # Each stream phone votes 400 ms before its stream shows the close, and tries again 400 ms after.
    for phone, delay_ms in zip(stream, delays_ms, strict=True):
        await at(closed_ms + delay_ms - 400)
        ballot = await phone.vote(vote_id, "b2")
        assert ballot.get("status") == "counted", ballot
    waiting = await host.command("reveal_results")
    assert waiting["reason"] == "remote_wait"
    for phone, delay_ms in zip(stream, delays_ms, strict=True):
        await at(closed_ms + delay_ms + 400)
        assert (await phone.vote(vote_id, "b3"))["reason"] == "vote_closed"
    await host.run("reveal_results")
    revealed = host.battle["rounds"][-1]["votes"][-1]
    assert (revealed["totals"], revealed["ballots"]) == ({"b1": 2, "b2": 6, "b3": 1, "b4": 1}, 10)
    for phone in (host, *hall, *stream):
        await phone.close()


# --- hall and online counted apart (docs/rules.md, "Hall and online") -------------------------


async def test_every_tally_has_a_hall_part_and_an_online_part(store: Store) -> None:
    battle = await battle_in_a_vote(store)
    await store.set_delay(CODE, "stream-1", 1 * S)
    for device, choice, remote in [("hall-1", "b1", False), ("hall-2", "b2", False), ("stream-1", "b2", True)]:
        await store.cast_ballot(CODE, "r1v1", device, choice, f"{device}-a", T0 + 2 * S, remote=remote)
    tally = await store.tally(CODE, "r1v1")
    assert (tally.totals, tally.online, tally.ballots) == ({"b1": 1, "b2": 2}, {"b2": 1}, 3)
    assert await store.online_devices(CODE, "r1v1") == {"stream-1"}
    # A remote device changes its mind: its ballot moves within the online part.
    assert (await store.cast_ballot(CODE, "r1v1", "stream-1", "b3", "s-b", T0 + 3 * S, remote=True)).status == "changed"
    assert (await store.tally(CODE, "r1v1")).online == {"b3": 1}
    # The same device on the hall's page, the same choice: unchanged, and now in the hall's part.
    assert (await store.cast_ballot(CODE, "r1v1", "stream-1", "b3", "s-c", T0 + 4 * S)).status == "unchanged"
    tally = await store.tally(CODE, "r1v1")
    assert (tally.totals, tally.online) == ({"b1": 1, "b2": 1, "b3": 1}, {})
    assert await store.online_devices(CODE, "r1v1") == set()
    assert battle.open_vote is not None


async def test_the_export_has_the_hall_and_online_parts_and_the_rule(app_on_each_store: InProcess) -> None:
    app = app_on_each_store
    rules = {"remote": True, "combine": "hall", "vote_seconds": 60}
    created = app.create_battle(title="Streamed", battlers=FOUR, rules=rules)
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    hall = [await app.connect("audience", code) for _ in range(2)]
    stream = await remote_phone_of(app, code, None)
    vote_id = await to_the_vote(host)
    assert (await hall[0].vote(vote_id, "b1"))["status"] == "counted"
    assert (await hall[1].vote(vote_id, "b2"))["status"] == "counted"
    assert (await stream.vote(vote_id, "b1"))["status"] == "counted"
    tally = await host.expect("tally", lambda m: m["ballots"] == 3)
    assert (tally["totals"], tally["online"]) == (
        {"b1": 2, "b2": 1, "b3": 0, "b4": 0},
        {"b1": 1, "b2": 0, "b3": 0, "b4": 0},
    )
    await host.run("close_vote")
    await host.run("reveal_results")
    auth = {"authorization": f"Bearer {created['host_token']}"}
    vote = app.get(f"/api/battles/{code}/export.json", headers=auth).json()["battle"]["rounds"][0]["votes"][0]
    assert vote["totals"] == {"b1": 2, "b2": 1, "b3": 0, "b4": 0}
    assert (vote["online"], vote["combine"], vote["online_share"]) == ({"b1": 1, "b2": 0, "b3": 0, "b4": 0}, "hall", 50)
    reveal = next(e for e in host.battle["log"] if e["action"] == "reveal_results")["details"]
    assert (reveal["combine"], reveal["scores"]) == ("hall", {"b1": 1, "b2": 1, "b3": 0, "b4": 0})
    rows = list(csv.DictReader(io.StringIO(app.get(f"/api/battles/{code}/export.csv", headers=auth).text)))
    b1 = {row["field"]: row["value"] for row in rows if row["section"] == "vote" and row["battler"] == "b1"}
    assert (b1["votes"], b1["hall"], b1["online"]) == ("2", "1", "1")
    rule = {row["field"]: row["value"] for row in rows if row["section"] == "vote" and row["vote"] == vote_id}
    assert (rule["combine"], rule["online_share"]) == ("hall", "50")
    for client in (host, *hall, stream):
        await client.close()


async def test_a_backup_keeps_the_remote_delays_and_the_online_part(store: Store) -> None:
    await battle_in_a_vote(store)
    await store.set_delay(CODE, "stream", 2 * S)
    await store.watch(CODE, "default")
    await store.cast_ballot(CODE, "r1v1", "stream", "b2", "s1", T0 + 3 * S, remote=True)
    await store.cast_ballot(CODE, "r1v1", "hall", "b2", "h1", T0 + 3 * S)
    record = await store.record(CODE)
    assert record is not None
    assert (record.remote, record.online["r1v1"]) == ({"default": None, "stream": 2 * S}, ["stream"])
    restored = dataclasses.replace(record, battle=record.battle.model_copy(update={"code": "RM02"}))
    assert await store.put_record(restored)
    assert (await store.tally("RM02", "r1v1")).online == {"b2": 1}
    assert await store.remote_delays("RM02") == (2 * S, None)
    assert await store.watch("RM02", "stream") == 2 * S
