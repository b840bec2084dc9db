"""Visions that develop in Debian's Chromium (docs/rules.md, "Visions that develop"): a battler
revises from the phone of their own link, and the screen, the hall's phones, the console and
the results follow; each page measured whole with the longest texts at every projector size."""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from tests.browser import Stage, screenshot
from tests.servers import Server
from tests.test_browser import (  # the browser and its stage, and the shared steps of the show
    DRAWN,
    PROJECTORS,
    battle,
    browser,  # noqa: F401 (a fixture)
    fits_every_projector,
    host_socket,
    longest,
    phase_is,
    stage,  # noqa: F401 (a fixture)
)

# How far the page is wider than the phone (0: nothing runs off its side).
WIDE = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def revise_from(phone: Page, vision: str, changed: str) -> None:
    phone.fill("#revise-vision", vision)
    phone.fill("#revise-changed", changed)
    phone.click("#revise-send")


def test_a_battler_revises_from_a_phone_and_the_screen_shows_v2_within_a_second(server: Server, stage: Stage) -> None:  # noqa: F811
    created = battle(server, ["Ada", "Bo", "Cy"])
    screen = stage.page("projector", created["links"]["screen"], name="screen")
    bo = stage.page("phone", created["battler_links"]["b2"], name="battler")
    hall = stage.page("phone", created["links"]["join"], name="phone")
    for page in (screen, bo, hall):
        phase_is(page, "Lobby")
    expect(bo.locator("#me .speaker-name")).to_have_text("Bo")
    expect(bo.locator("#revise-hint")).to_have_text("The hall sees the new version with your next turn.")

    revise_from(bo, "Bo's town runs on the sun", "Solar roofs after the blackout")
    sent = time.monotonic()
    tag = screen.locator('.screen-card[data-battler="b2"] .version-tag')
    expect(tag).to_have_text("v2", timeout=1000)
    assert time.monotonic() - sent < 1.0
    expect(screen.locator('.screen-card[data-battler="b2"] .card-vision')).to_contain_text("Bo's town runs on the sun")
    expect(bo.locator("#revise-status")).to_have_text("Saved: the hall sees version 2.")
    # A phone in the hall shows the current version; a tap shows the earlier one.
    card = hall.locator(".battler-card", has_text="Bo")
    expect(card.locator(".battler-vision .version-tag")).to_have_text("v2")
    expect(card.locator(".earlier-versions .version-list")).not_to_be_visible()
    card.locator(".earlier-versions summary").click()
    expect(card.locator(".earlier-versions .version-list")).to_contain_text("The vision of Bo")

    with host_socket(server, created) as host:
        host("start_round")
        host("next")
        phase_is(bo, "Presentation")
        # Not during a turn: the phone says when, and its form waits.
        expect(bo.locator("#revise-send")).to_be_disabled()
        host("next")  # Bo speaks: the screen shows the version and what changed with it
        expect(screen.locator(".speaker-name")).to_have_text("Bo")
        expect(screen.locator(".speaker-vision .version-tag")).to_have_text("v2")
        expect(screen.locator(".speaker-changed")).to_have_text("What changed: Solar roofs after the blackout")
        expect(bo.locator("#clock-box")).to_be_visible()
        expect(hall.locator(".speaker-vision .version-tag")).to_have_text("v2")


def test_the_longest_revised_vision_fits_every_projector_and_the_battlers_phone(server: Server, stage: Stage) -> None:  # noqa: F811
    name, vision, changed = (
        longest("Bartholomew-Christiansen", 60),
        longest("A harbour town", 140),
        longest("After the storm", 140),
    )
    created = battle(server, ["Ada", name, "Cy"], rules={"debate_seconds": 60})
    screen = stage.page("projector", created["links"]["screen"], name="screen")
    bo = stage.page("phone", created["battler_links"]["b2"], name="battler")
    phase_is(bo, "Lobby")
    revise_from(bo, vision, changed)
    expect(bo.locator("#revise-status")).to_have_text("Saved: the hall sees version 2.")
    fits_every_projector(screen, "lobby-revised")
    with host_socket(server, created) as host:
        host("start_round")
        host("next")
        host("next")  # the longest name speaks, with the longest vision and line
        expect(screen.locator(".speaker-changed")).to_contain_text("What changed:")
        expect(bo.locator("#clock-box")).to_be_visible()
        fits_every_projector(screen, "turn-revised")
        # A phone scrolls down, never sideways: the longest texts wrap.
        assert bo.evaluate(WIDE) == 0
        screenshot(bo, "battler-phone-speaking", full_page=True)
        host("next")
        host("next")
        phase_is(bo, "Debate")
        host("open_vote")
        host("close_vote")
        host("reveal_results")
        host("override_elimination", battlers=["b3"], reason="A test")
    phase_is(bo, "Out")
    revise_from(bo, longest("A harbour town, again", 140), longest("The second storm", 140))
    expect(bo.locator("#revise-status")).to_have_text("Saved: the hall sees version 3.")
    with host_socket(server, created) as host:  # on the version the battler's revision made
        host("end_battle")
    screenshot(bo, "battler-phone-finished", full_page=True)
    results = stage.page("laptop", created["links"]["results"], name="results")
    history = results.locator("#vision-history")
    expect(history).to_contain_text("v3")
    expect(history).to_contain_text(changed)
    for size, (width, height) in PROJECTORS.items():
        results.set_viewport_size({"width": width, "height": height})
        results.evaluate(DRAWN)
        screenshot(results, f"results-history-{size}", full_page=True)


def test_the_console_hands_over_each_battlers_link_revises_undoes_and_revokes(server: Server, stage: Stage) -> None:  # noqa: F811
    created = battle(server, ["Ada", "Bo"])
    host = stage.page("laptop", created["links"]["host"], name="host")
    bo = stage.page("phone", created["battler_links"]["b2"], name="battler")
    phase_is(bo, "Lobby")
    row = host.locator('.vision-row[data-battler="b2"]')
    expect(row.locator(".link-input")).to_have_value(created["battler_links"]["b2"])
    row.get_by_role("button", name="Show QR code").click()
    expect(row.get_by_role("img", name="QR code of Bo's own link")).to_be_visible()
    screenshot(host, "console-battler-links", full_page=True)

    row.get_by_role("button", name="Revise the vision…").click()
    host.locator("dialog input").fill("Bo's forest feeds the town")
    host.locator("dialog").get_by_role("button", name="Next").click()
    host.locator("dialog input").fill("Fruit trees on every roof")
    host.locator("dialog").get_by_role("button", name="Revise the vision").click()
    expect(row.locator(".version-tag").first).to_have_text("v2")
    expect(bo.locator("#me .speaker-vision")).to_contain_text("Bo's forest feeds the town")
    expect(host.locator("#event-log")).to_contain_text("Vision revised")

    row.get_by_role("button", name="Undo the latest revision").click()
    host.locator("dialog").get_by_role("button", name="Undo the latest revision").click()
    expect(row.locator(".version-tag")).to_have_count(0)
    expect(bo.locator("#me .speaker-vision")).to_have_text("The vision of Bo")

    row.get_by_role("button", name="Revoke this link…").click()
    host.locator("dialog").get_by_role("button", name="Revoke the link").click()
    expect(bo.locator("#battler-problem")).to_have_text("The host revoked this link. Ask the host for the new one.")
    expect(row.locator(".link-input")).not_to_have_value(created["battler_links"]["b2"])
    stage.expect_console(
        r"status of 401|WebSocket connection", "the revoked link is refused when the page tries it again"
    )
