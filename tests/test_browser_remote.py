"""The stream's audience in Debian's Chromium (docs/protocol.md, "The remote audience"): a
remote phone's countdown is the hall's shifted by its delay, flipping on the same second's
boundary; it votes after the hall's close inside its window; it measures its delay by the
sync cue on the screen; the console shows the stream's link, its QR code and the reveal's wait."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import Page, expect

from bench.devices import seconds_of
from tests.browser import Stage, screenshot
from tests.servers import Server
from tests.test_browser import (  # the browser and its stage, and the shared steps of the show
    HostSocket,
    battle,
    browser,  # noqa: F401 (a fixture)
    device,
    host_socket,
    phase_is,
    stage,  # noqa: F401 (a fixture)
)


def watch_link(created: dict[str, Any]) -> str:
    return str(created["links"]["join"]).replace("/join/", "/watch/")


def flips_of(page: Page) -> dict[int, float]:
    """Second shown -> when the page first showed it (bench.devices.STAMPS)."""
    found: dict[int, float] = {}
    for stamp, text, _ in page.evaluate("window.__bench.marks"):
        shown = seconds_of(text)
        if shown is not None:
            found.setdefault(shown, stamp)
    return found


def reveal_once_the_stream_voted(host: HostSocket) -> None:
    """reveal_results, sent again after the wait a ``remote_wait`` refusal names."""
    while True:
        host.socket.send(json.dumps({"type": "reveal_results", "seq": host.seq, "id": "reveal"}))
        reply = next(m for m in map(json.loads, host.socket) if m.get("id") == "reveal")
        if reply["type"] == "ack":
            return
        assert reply["reason"] == "remote_wait", reply
        time.sleep(reply["params"]["wait_ms"] / 1000)


def test_a_remote_countdown_is_the_halls_shifted_by_its_delay_and_it_votes_after_the_halls_close(
    server: Server,
    stage: Stage,  # noqa: F811
) -> None:
    rules = {"remote": True, "remote_delay_seconds": 4, "max_delay_seconds": 10, "vote_seconds": 120}
    created = battle(server, ["Ada", "Bo"], rules=rules)
    hall = device(stage, "phone", created["links"]["join"], "hall", "#clock")
    remote = device(stage, "phone", watch_link(created), "remote", "#clock")
    for page in (hall, remote):
        expect(page.locator("#connection-badge")).to_have_text("Connected")
    expect(remote.locator("#stream-box")).to_contain_text("Your stream runs 4 s behind the hall.")
    expect(hall.locator("#stream-box")).to_have_count(0)
    with host_socket(server, created) as host:
        host("start_round")
        host("next")
        host("next")
        host("next")
        host("open_vote")
        # The hall votes at once; the stream shows the vote 4 s later.
        expect(hall.locator("#clock")).to_have_text(re.compile(r"^(1:5\d|2:00)$"))
        expect(remote.locator("#clock-box")).to_be_hidden()
        expect(remote.locator('[data-choice="b1"]')).to_have_count(0)
        expect(remote.locator("#clock")).to_have_text(re.compile(r"^2:00$"), timeout=6000)
        hall.wait_for_timeout(1000)  # the clock bursts are answered
        for page in (hall, remote):
            page.evaluate("window.__bench.marks = []")
        hall.wait_for_timeout(5500)
        hall_flips, remote_flips = flips_of(hall), flips_of(remote)
        # The remote phone shows 4 s more at every moment: its second s + 4 flips with the hall's s.
        paired = sorted(set(hall_flips) & {second - 4 for second in remote_flips})
        assert len(paired) >= 4, (hall_flips, remote_flips)
        gaps = sorted(abs(remote_flips[second + 4] - hall_flips[second]) for second in paired)
        print(f"the stream phone's flips, 4 s shifted, against the hall's: {', '.join(f'{g:.0f}' for g in gaps)} ms")
        assert gaps[len(gaps) // 2] <= 50, (paired, hall_flips, remote_flips)
        screenshot(remote, "remote-phone-vote")
        host("close_vote")
        expect(hall.locator("#vote-status")).to_have_text("The vote has closed.")
        # The stream still shows the vote open for about 4 s: the remote phone votes, and counts.
        expect(remote.locator('[data-choice="b2"]')).to_be_enabled()
        remote.locator('[data-choice="b2"]').click()
        expect(remote.locator("#vote-status")).to_contain_text("Your vote for Bo is counted", timeout=3000)
        expect(remote.locator("#vote-status")).to_contain_text(
            "The vote has closed. Your vote for Bo was counted.", timeout=6000
        )
        reveal_once_the_stream_voted(host)
    phase_is(remote, "Results")
    expect(remote.locator(".result.is-mine")).to_contain_text("Bo")


def test_a_remote_phone_measures_its_delay_by_the_sync_cue_on_the_screen(server: Server, stage: Stage) -> None:  # noqa: F811
    created = battle(server, ["Ada", "Bo"], rules={"remote": True})
    screen = stage.page("projector", created["links"]["screen"], name="screen")
    remote = stage.page("phone", watch_link(created), name="remote")
    host = stage.page("laptop", created["links"]["host"], name="host")
    for page in (screen, remote, host):
        phase_is(page, "Lobby")
    expect(host.locator("#stream-panel")).to_be_visible()
    expect(host.locator("#stream-links .link-input")).to_have_value(watch_link(created))
    qr = host.locator("#stream-links img.stream-qr")
    expect(qr).to_have_attribute("src", f"/qr/{created['code']}/watch.svg")
    assert host.evaluate("(img) => img.complete && img.naturalWidth > 0", qr.element_handle())
    expect(remote.locator("#stream-box")).to_contain_text("Your stream runs 0 s behind the hall.")
    host.locator("#btn-sync-cue").click()
    cue = screen.locator("#sync-cue [data-sync-cue]")
    expect(cue).to_have_text("1")
    screenshot(screen, "screen-sync-cue")
    expect(host.locator("#sync-cue-last")).to_have_text("Last sync cue: 1")
    tap = remote.locator(".stream-tap")
    expect(tap).to_have_text("Tap when you see 1 on your stream")
    remote.wait_for_timeout(2000)  # the stream runs about 2 s behind
    tap.click()
    delay = remote.locator(".stream-delay")
    expect(delay).to_have_text(re.compile(r"Your stream runs 2(\.\d)? s behind the hall\."))
    expect(tap).to_have_count(0)
    expect(screen.locator("#sync-cue")).to_be_hidden(timeout=3000)
    remote.get_by_role("button", name="1 s more").click()
    expect(delay).to_have_text(re.compile(r"Your stream runs 3(\.\d)? s behind the hall\."))
    screenshot(remote, "remote-phone-delay")


def test_the_console_and_the_results_show_the_hall_and_the_online_part(server: Server, stage: Stage) -> None:  # noqa: F811
    created = battle(server, ["Ada", "Bo"], rules={"remote": True, "combine": "hall"})
    host = stage.page("laptop", created["links"]["host"], name="host")
    hall = stage.page("phone", created["links"]["join"], name="hall")
    remote = stage.page("phone", watch_link(created), name="remote")
    for page in (host, hall, remote):
        phase_is(page, "Lobby")
    with host_socket(server, created) as socket:
        for command in ("start_round", "next", "next", "next", "open_vote"):
            socket(command)
        hall.locator('[data-choice="b1"]').click()
        remote.locator('[data-choice="b1"]').click()
        for page in (hall, remote):
            expect(page.locator("#vote-status")).to_contain_text("Your vote for Ada is counted")
        ada = host.locator("#host-tally .bar-row", has_text="Ada")
        expect(ada.locator(".bar-figures")).to_have_text("2 votes · 100 % · hall 1, online 1")
        socket("close_vote")
        socket("reveal_results")
        expect(ada.locator(".bar-figures")).to_have_text("2 votes · 100 % · hall 1, online 1")
        for page in (hall, remote):  # and each phone's results
            figures = page.locator(".result", has_text="Ada").locator(".result-figures")
            expect(figures).to_have_text("2 votes · 100 % · hall 1, online 1")
        screenshot(host, "console-hall-and-online")
        socket("end_battle")
    results = stage.page("laptop", created["links"]["results"], name="results")
    expect(results.locator(".vote-block .bar-row", has_text="Ada").first.locator(".bar-figures")).to_have_text(
        "2 votes · 100 % · hall 1, online 1"
    )


def test_the_screens_reveal_shows_the_hall_and_the_online_part(server: Server, stage: Stage) -> None:  # noqa: F811
    created = battle(server, ["Ada", "Bo", "Camille"], rules={"remote": True, "combine": "weighted"})
    screen = stage.page("projector", created["links"]["screen"], name="screen")
    hall = stage.page("phone", created["links"]["join"], name="hall")
    remote = stage.page("phone", watch_link(created), name="remote")
    for page in (screen, hall, remote):
        phase_is(page, "Lobby")
    with host_socket(server, created) as socket:
        for command in ("start_round", "next", "next", "next", "next", "open_vote"):
            socket(command)
        hall.locator('[data-choice="b2"]').click()
        remote.locator('[data-choice="b1"]').click()
        for page in (hall, remote):
            expect(page.locator("#vote-status")).to_contain_text("is counted")
        socket("close_vote")
        socket("reveal_results")
    bo = screen.locator(".standings .bar-row", has_text="Bo")
    expect(bo.locator(".bar-figures")).to_have_text("1 vote · 50 % · hall 1, online 0", timeout=15000)
    ada = screen.locator(".standings .bar-row", has_text="Ada")
    expect(ada.locator(".bar-figures")).to_have_text("1 vote · 50 % · hall 0, online 1")
    screen.wait_for_timeout(3000)  # the proposal's beat
    screenshot(screen, "screen-reveal-hall-and-online")


def test_a_remote_tap_made_offline_counts_inside_its_window_only(server: Server, stage: Stage) -> None:  # noqa: F811
    """The hall's vote closes; two remote phones, 6 s behind, tap offline: the one back inside
    its window is counted, the one back after it is told its tap did not make it."""
    stage.expect_console(
        r"WebSocket connection to '[^']+' failed: .*ERR_INTERNET_DISCONNECTED|Failed to load resource: net::ERR_INTERNET_DISCONNECTED",
        "the phones are offline on purpose: their reconnect tries fail until they are back",
    )
    rules = {"remote": True, "remote_delay_seconds": 6, "max_delay_seconds": 10, "vote_seconds": 120}
    created = battle(server, ["Ada", "Bo"], rules=rules)
    phones = {}
    for name in ("back in time", "back too late"):
        context = stage.context("phone")
        page = stage.watch(context.new_page(), name)
        page.goto(watch_link(created))
        phones[name] = (context, page)
    for _, page in phones.values():
        phase_is(page, "Lobby")
    with host_socket(server, created) as host:
        for command in ("start_round", "next", "next", "next", "open_vote"):
            host(command)
        for _, page in phones.values():
            expect(page.locator('[data-choice="b1"]')).to_be_enabled(timeout=10000)
        host("close_vote")
        closed = time.monotonic()
        for (context, page), choice in zip(phones.values(), ("b1", "b2"), strict=True):
            context.set_offline(True)
            expect(page.locator("#connection-badge")).not_to_have_attribute("data-status", "connected")
            page.locator(f'[data-choice="{choice}"]').tap()
            expect(page.locator(f'[data-choice="{choice}"] .choice-state')).to_have_text("Sending…")
        in_time, late = phones["back in time"], phones["back too late"]
        in_time[0].set_offline(False)
        expect(in_time[1].locator('[data-choice="b1"] .choice-state')).to_have_text("✓ Counted", timeout=4000)
        assert time.monotonic() - closed < 6
        late[1].wait_for_timeout(max(0.0, 7 - (time.monotonic() - closed)) * 1000)
        late[0].set_offline(False)
        expect(late[1].locator("#connection-badge")).to_have_attribute("data-status", "connected", timeout=20000)
        expect(late[1].locator("#notice")).to_have_text(
            "Your last tap did not reach the server before the vote closed."
        )
        expect(late[1].locator('[data-choice="b2"] .choice-state')).to_have_text("")
        reveal_once_the_stream_voted(host)
    expect(late[1].locator(".result", has_text="Ada")).to_contain_text("1 vote")
    expect(late[1].locator(".result", has_text="Bo")).to_contain_text("0 votes")
