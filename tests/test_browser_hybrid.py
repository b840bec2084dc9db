"""A whole hybrid evening, driven from the crew's desk alone (docs/protocol.md, "Cues from the
crew's desk", "The remote audience"; docs/rules.md, "Hall and online"): five phones in the hall,
five behind the stream at delays of 5 to 25 s, and the stream overlay in Chromium, on the
embedded store and on two processes sharing Redis. Every step is a fixed button's HTTP cue.

The phones are websocket clients on an event loop of their own thread, so that the test can
drive Chromium's synchronous API at the same time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser import Stage
from tests.clients import Client
from tests.servers import Server
from tests.test_browser import browser, phase_is, stage  # noqa: F401 (fixtures)
from tests.test_browser_overlay import composite
from tests.test_cues import deployment  # noqa: F401 (a fixture)

T = TypeVar("T")
THREE = [{"name": name, "vision": f"{name}'s city"} for name in ("Ada", "Bo", "Cy")]
DELAYS_MS = [5000, 10_000, 15_000, 20_000, 25_000]


class Phones:
    """An event loop in a thread of its own, for the phones' and the screens' sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def phones() -> Iterator[Phones]:
    running = Phones()
    yield running
    running.stop()


def test_a_hybrid_evening_runs_on_http_cues_alone_with_the_stream_in_its_own_windows(
    deployment: list[Server],  # noqa: F811
    stage: Stage,  # noqa: F811
    phones: Phones,
) -> None:
    first, last = deployment[0], deployment[-1]
    rules = {"remote": True, "max_delay_seconds": 30, "vote_seconds": 300, "combine": "weighted", "online_share": 80}
    created = first.create_battle(title="Hall and stream", battlers=THREE, rules=rules)
    code, desk = created["code"], created["cohost_token"]
    processes = [deployment[n % len(deployment)] for n in range(5)]
    screens = [phones.run(server.connect("screen", code, created["screen_token"])) for server in deployment]
    hall = [phones.run(server.connect("audience", code)) for server in processes]
    stream = [phones.run(Client.connect(server.ws_url, "audience", code, remote=True)) for server in processes]
    for phone, delay_ms in zip(stream, DELAYS_MS, strict=True):
        held = phones.run(phone.request({"type": "set_delay", "delay_ms": delay_ms}))
        assert (held["type"], held["delay_ms"]) == ("ack", delay_ms), held
    # The mixer's browser shows the overlay from the last process.
    overlay = stage.page("projector", created["links"]["overlay"].replace(first.url, last.url), name="overlay")
    expect(overlay.locator("body")).to_have_attribute("data-phase", "lobby")
    presses = 0

    def cue(kind: str) -> tuple[int, dict[str, Any]]:
        """A fixed button: the same body every time, to each process in turn."""
        nonlocal presses
        server = deployment[presses % len(deployment)]
        answer = httpx.post(
            f"{server.url}/api/battles/{code}/commands",
            json={"type": kind, "seq": "current"},
            headers={"authorization": f"Bearer {desk}"},
            timeout=10,
        )
        reply: dict[str, Any] = answer.json()
        if answer.status_code == 200:
            presses += 1
            for screen in screens:
                phones.run(screen.wait_for(lambda battle: battle["version"] >= reply["seq"]))
        return answer.status_code, reply

    def press(kind: str) -> None:
        status, reply = cue(kind)
        assert status == 200, (kind, reply)

    # The sync cue: on the overlay, which the stream shows.
    press("sync_cue")
    expect(overlay.locator("#overlay-sync-cue .sync-cue-number")).to_have_text("1", timeout=1500)
    expect(overlay.locator("#overlay-sync-cue")).to_be_hidden(timeout=3000)

    # Each round: the hall's choices, the stream's, and who leaves by the weighted rule, the
    # online ballots weighing 80 %: a battler's figure is 20 * h * 5 + 80 * o * 5 (docs/rules.md,
    # "Hall and online"). Round one: Ada 300, Bo 500, Cy 1,700, so Ada leaves, where the totals
    # (3, 2, 5) would have sent Bo home. The final: Bo 900, Cy 1,600, so Cy wins, where the
    # totals (6 to 4) would have crowned Bo.
    plans = [
        (["b1", "b1", "b1", "b2", "b3"], ["b3", "b3", "b3", "b3", "b2"], ["b1"]),
        (["b2", "b2", "b2", "b2", "b2"], ["b2", "b3", "b3", "b3", "b3"], ["b2"]),
    ]
    for hall_choices, stream_choices, leaving in plans:
        press("start_round")
        while screens[0].battle["phase"] != "vote":
            press("next")
        press("open_vote")
        vote = screens[0].battle["rounds"][-1]["votes"][-1]
        ballots = [phones.run(phone.vote(vote["id"], choice)) for phone, choice in zip(hall, hall_choices, strict=True)]
        assert {ballot["status"] for ballot in ballots} == {"counted"}, ballots
        # The overlay's lower third: the live vote, where the hall votes and where the stream does.
        phase_is(overlay, "Vote")
        expect(overlay.locator("#lower-third-watch")).to_contain_text(f"/watch/{code}")
        expect(overlay.locator("#vote-count")).to_have_text("5 ballots in")
        if leaving == ["b1"]:
            composite(stage, overlay, "hybrid-vote")
        time.sleep(1.5)  # the hall's vote lasts long enough for each stream's window to be
        press("close_vote")
        closed_ms = screens[-1].battle["rounds"][-1]["votes"][-1]["closed_ms"]
        status, refusal = cue("reveal_results")  # too early: the stream still votes
        assert (status, refusal["reason"]) == (409, "remote_wait"), refusal

        async def behind_the_stream() -> list[dict[str, Any]]:
            """Each stream phone votes 1 s before its stream shows the close; the first tries
            again 1 s after its own close, and is refused."""

            async def at(ms: int, phone: Client, choice: str) -> dict[str, Any]:
                await asyncio.sleep(max(0.0, ms / 1000 - time.time()))
                return await phone.vote(vote["id"], choice)

            on_time = [
                at(closed_ms + delay_ms - 1000, phone, choice)
                for phone, delay_ms, choice in zip(stream, DELAYS_MS, stream_choices, strict=True)
            ]
            late = at(closed_ms + DELAYS_MS[0] + 1000, stream[0], "b1")
            return await asyncio.gather(*on_time, late)

        *counted, refused = phones.run(behind_the_stream(), timeout=60)
        assert [ballot.get("status") for ballot in counted] == ["counted"] * 5, counted
        assert refused["reason"] == "vote_closed", refused
        while (answer := cue("reveal_results"))[0] != 200:
            assert answer[1]["reason"] == "remote_wait", answer
            time.sleep(answer[1]["params"]["wait_ms"] / 1000)
        revealed = screens[-1].battle["rounds"][-1]["votes"][-1]
        expected_totals = {choice: (hall_choices + stream_choices).count(choice) for choice in vote["choices"]}
        assert revealed["totals"] == expected_totals
        assert revealed["online"] == {choice: stream_choices.count(choice) for choice in vote["choices"]}
        assert (revealed["combine"], revealed["online_share"]) == ("weighted", 80)
        assert screens[0].battle["rounds"][-1]["proposal"]["leaving"] == leaving
        press("confirm_elimination")

    assert screens[-1].battle["winner"] == "b3"
    phase_is(overlay, "Final")
    expect(overlay.locator("#lower-third")).to_contain_text("Cy")
    press("end_battle")
    exported = httpx.get(
        f"{first.url}/api/battles/{code}/export.json", headers={"authorization": f"Bearer {created['host_token']}"}
    ).json()["battle"]
    # Nothing but the desk ran the show (the log's first entry is the creation).
    assert [entry["actor"] for entry in exported["log"][1:]] == ["cohost"] * presses
    for client in [*screens, *hall, *stream]:
        phones.run(client.close())
