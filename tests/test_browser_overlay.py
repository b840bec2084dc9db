"""The stream overlay in Debian's Chromium (docs/operations.md, "A stream overlay in OBS"): a
battle through a turn, a vote, its reveal and the final, with what the lower third says at
each step, a page a video mixer can see through, and pictures of it over a busy background
(under /tmp/overlay-shots/, to look at; not test artifacts of the repository)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser import Stage, leftover_texts
from tests.servers import Server
from tests.test_browser import (  # the browser and its stage, and the shared steps of the show
    CLIPPED,
    MODULES_ASKED,
    battle,
    browser,  # noqa: F401 (a fixture)
    da,
    host_socket,
    longest,
    phase_is,
    stage,  # noqa: F401 (a fixture)
    vote,
)

SHOTS = Path("/tmp/overlay-shots")
TRANSPARENT = "rgba(0, 0, 0, 0)"

# A picture a lower third must read over: bright and dark stripes, colours and fine detail,
# the worst a stage, a crowd or a projection behind a speaker can be.
BUSY = """
<!doctype html><html><head><style>
html, body { margin: 0; width: 1920px; height: 1080px; overflow: hidden; }
body {
  background:
    repeating-linear-gradient(45deg, rgb(255 255 255 / 35%) 0 14px, transparent 14px 40px),
    repeating-radial-gradient(circle at 30% 70%, #fde047 0 30px, #0ea5e9 30px 60px, #111827 60px 90px),
    linear-gradient(90deg, #f97316, #a21caf, #f8fafc);
}
img { position: absolute; inset: 0; }
</style></head><body><img id="overlay" alt=""></body></html>
"""

# The alpha (0 to 255) of the overlay's own picture at a point: read through a canvas.
ALPHA_AT = """
async ([x, y]) => {
  const img = document.getElementById("overlay");
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return context.getImageData(x, y, 1, 1).data[3];
}
"""


def backgrounds(overlay: Page) -> list[str]:
    result: list[str] = overlay.evaluate(
        "() => [document.documentElement, document.body].map((el) => getComputedStyle(el).backgroundColor)"
    )
    return result


def composite(stage: Stage, overlay: Page, name: str) -> Page:  # noqa: F811
    """The overlay as the mixer gets it (its own pixels only, the rest see-through), laid over
    BUSY, saved as /tmp/overlay-shots/NAME.png; the page that shows it, to measure."""
    overlay.wait_for_timeout(800)  # entrance transitions over, as the stream shows them
    pixels = overlay.screenshot(omit_background=True, animations="disabled")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}-alone.png").write_bytes(pixels)
    mixer = stage.page("projector", name="mixer")
    mixer.set_content(BUSY)
    mixer.locator("#overlay").evaluate(
        "(img, src) => { img.src = src; return img.decode(); }",
        f"data:image/png;base64,{base64.b64encode(pixels).decode()}",
    )
    mixer.screenshot(path=str(SHOTS / f"{name}.png"))
    return mixer


def lower_third_box(overlay: Page) -> dict[str, float]:
    box = overlay.locator("#lower-third").bounding_box()
    assert box is not None, "the lower third is not drawn"
    return box


def test_the_overlay_follows_a_turn_a_vote_the_reveal_and_the_final_on_a_see_through_page(
    server: Server,
    stage: Stage,  # noqa: F811
) -> None:
    created = battle(server, ["Ada", "Bo"], rules={"debate_seconds": 60, "live_totals": True})
    code = created["code"]
    assert created["links"]["overlay"] == created["links"]["screen"].replace("/screen/", "/overlay/")
    overlay = stage.page("projector", created["links"]["overlay"], name="overlay")
    phase_is(overlay, "Lobby")
    assert overlay.viewport_size == {"width": 1920, "height": 1080}
    assert backgrounds(overlay) == [TRANSPARENT, TRANSPARENT]
    # Nothing to show in the lobby: the whole page is see-through.
    expect(overlay.locator("#lower-third")).to_be_hidden()
    expect(overlay.locator(".topbar")).to_be_hidden()
    mixer = composite(stage, overlay, "lobby")
    assert mixer.evaluate(ALPHA_AT, [960, 540]) == 0 and mixer.evaluate(ALPHA_AT, [200, 1000]) == 0

    with host_socket(server, created) as host:
        host("start_round")
        phase_is(overlay, "Challenge")
        expect(overlay.locator("#lower-third")).to_be_hidden()
        host("next")
        phase_is(overlay, "Presentation")
        lower = overlay.locator("#lower-third")
        expect(lower).to_be_visible()
        expect(lower.locator(".lt-eyebrow")).to_have_text("Now speaking")
        speaker = lower.locator(".lt-name").inner_text()
        assert speaker in ("Ada", "Bo")
        expect(lower.locator(".lt-vision")).to_have_text(f"The vision of {speaker}")
        expect(overlay.locator("#overlay-clock-caption")).to_have_text("Time left")
        expect(overlay.locator("#overlay-clock")).to_have_text(re.compile(r"^1:(2\d|30)$"))  # 90 s turns
        expect(overlay.locator("#lower-third-join")).to_be_hidden()
        host("pause_timer")
        expect(overlay.locator("#overlay-clock-caption")).to_have_text("Paused")
        host("resume_timer")
        expect(overlay.locator("#overlay-clock-caption")).to_have_text("Time left")
        # A lower third, on a page otherwise see-through: opaque where it is, nothing above it.
        box = lower_third_box(overlay)
        assert box["y"] >= 1080 / 2 and box["y"] + box["height"] <= 1080 and box["width"] > 1500
        assert backgrounds(overlay) == [TRANSPARENT, TRANSPARENT]
        mixer = composite(stage, overlay, "turn")
        assert mixer.evaluate(ALPHA_AT, [960, 200]) == 0
        assert mixer.evaluate(ALPHA_AT, [int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2)]) > 200

        # The same overlay in Danish (?lang=da before the token), every text.
        danish = stage.page("projector", created["links"]["overlay"].replace("#", "?lang=da#"), name="overlay-da")
        expect(danish.locator(".lt-eyebrow")).to_have_text(da("Now speaking"))
        expect(danish.locator("#overlay-clock-caption")).to_have_text(da("Time left"))
        assert leftover_texts(danish, "da") == []

        host("next")
        host("next")
        phase_is(overlay, "Debate")
        expect(lower.locator(".lt-eyebrow")).to_have_text("Open debate")
        expect(lower.locator(".lt-names")).to_contain_text("Ada")
        expect(overlay.locator("#overlay-clock")).to_have_text(re.compile(r"^(1:00|0:5\d)$"))

        phones = [stage.page("phone", created["links"]["join"], name=f"phone-{n}") for n in (1, 2)]
        for phone in phones:
            phase_is(phone, "Debate")
        host("open_vote")
        phase_is(overlay, "Vote")
        expect(lower.locator(".lt-eyebrow")).to_have_text("Final vote: which vision wins the evening?")
        expect(overlay.locator("#overlay-clock-caption")).to_have_text("Time left to vote")
        join = overlay.locator("#lower-third-join")
        expect(join).to_be_visible()
        expect(overlay.locator("#lower-third-hall .join-url")).to_have_text(f"{server.url}/join/{code}")
        expect(join.locator(".code-inline")).to_have_text(code)
        expect(overlay.locator("#lower-third-watch")).to_be_hidden()  # no remote audience in this battle
        bars = overlay.locator("#vote-bars .bar-row")
        expect(bars).to_have_count(2)
        vote(phones[0], "Ada")
        expect(overlay.locator("#vote-count")).to_have_text("1 ballot in")
        expect(bars.filter(has_text="Ada").locator(".bar-figures")).to_have_text("1 vote · 100 %")
        vote(phones[1], "Bo")
        expect(overlay.locator("#vote-count")).to_have_text("2 ballots in")
        expect(bars.filter(has_text="Bo").locator(".bar-figures")).to_have_text("1 vote · 50 %")
        composite(stage, overlay, "vote")
        expect(danish.locator("#vote-count")).to_have_text(da("{n} ballots in", n=2))
        assert leftover_texts(danish, "da") == []
        composite(stage, danish, "vote-da")
        vote(phones[1], "Ada")  # a change of mind: Ada wins
        expect(bars.filter(has_text="Ada").locator(".bar-figures")).to_have_text("2 votes · 100 %")

        host("close_vote")
        expect(overlay.locator("#vote-count")).to_have_text("The vote has closed: 2 ballots.")
        expect(join).to_be_hidden()
        expect(overlay.locator("#lower-third-clock")).to_be_hidden()
        host("reveal_results")
        phase_is(overlay, "Results")
        expect(lower.locator(".reveal .vote-question")).to_have_text("The results")
        expect(lower.locator(".standings .bar-row").first.locator(".bar-name")).to_have_text("Ada")
        expect(lower.locator(".proposal")).to_have_text("The rules crown Ada.")
        expect(lower.locator(".reveal")).to_have_class(re.compile(r"\bis-decided\b"), timeout=15_000)
        expect(lower.locator(".standings .bar-row").first.locator(".bar-figures")).to_have_text("2 votes · 100 %")
        composite(stage, overlay, "reveal")

        host("confirm_elimination")
        phase_is(overlay, "Final")
        expect(lower.locator(".lt-eyebrow")).to_have_text("The winning vision")
        expect(lower.locator(".lt-name")).to_have_text("Ada")
        expect(lower.locator(".lt-vision")).to_have_text("The vision of Ada")
        composite(stage, overlay, "final")
        assert backgrounds(overlay) == [TRANSPARENT, TRANSPARENT]


def whole(overlay: Page, name: str) -> None:
    """The lower third whole on the 1080-line picture, nothing in it cut off; a picture to look at."""
    box = lower_third_box(overlay)
    assert box["y"] >= 0 and box["y"] + box["height"] <= 1080, box
    assert overlay.evaluate(CLIPPED) == [], name
    assert overlay.locator("#lower-third").evaluate("(el) => el.scrollHeight <= el.clientHeight + 1"), name


def test_ten_battlers_with_the_longest_names_fit_the_lower_third(server: Server, stage: Stage) -> None:  # noqa: F811
    battlers = [
        {
            "name": longest(f"Bartholomew-Christiansen {n}", 60),
            "vision": longest(f"A harbour town {n} that floats", 140),
        }
        for n in range(10)
    ]
    created = server.create_battle(title="Aarhus 2079", language="en", battlers=battlers, rules={"live_totals": True})
    overlay = stage.page("projector", created["links"]["overlay"], name="overlay")
    phase_is(overlay, "Lobby")
    with host_socket(server, created) as host:
        host("start_round")
        host("next")
        phase_is(overlay, "Presentation")
        whole(overlay, "turn")
        composite(stage, overlay, "turn-longest")
        for _ in battlers:
            host("next")
        host("open_vote")
        phase_is(overlay, "Vote")
        expect(overlay.locator("#vote-bars .bar-row")).to_have_count(10)
        whole(overlay, "vote")
        composite(stage, overlay, "vote-longest")
        host("close_vote")
        host("reveal_results")  # no ballots: all ten tie, the longest proposal a reveal has
        expect(overlay.locator(".reveal")).to_have_class(re.compile(r"\bis-decided\b"), timeout=15_000)
        whole(overlay, "reveal")
        composite(stage, overlay, "reveal-longest")


def test_the_console_hands_out_the_overlay_link_and_one_without_its_token_says_so(
    server: Server,
    stage: Stage,  # noqa: F811
) -> None:
    created = battle(server, ["Ada", "Bo"])
    host = stage.page("laptop", created["links"]["host"], name="host")
    phase_is(host, "Lobby")
    field = host.get_by_label("Stream overlay (secret, read-only)", exact=True)
    expect(field).to_have_value(created["links"]["overlay"])
    overlay = stage.page("projector", created["links"]["overlay"].split("#", 1)[0], name="overlay")
    expect(overlay.get_by_role("alert")).to_have_text(
        "This overlay link is incomplete: open the full overlay link from the host console."
    )


def test_the_overlay_asks_for_all_its_modules_at_once(server: Server, stage: Stage) -> None:  # noqa: F811
    """As every page (test_browser.py, test_every_page_asks_for_all_its_modules_at_once): the
    screen's modules it imports come with its script, none after the module that imports it."""
    created = battle(server, ["Ada", "Bo"])
    overlay = stage.page("projector", created["links"]["overlay"], name="overlay")
    phase_is(overlay, "Lobby")
    overlay.wait_for_load_state("networkidle")
    asked = dict(overlay.evaluate(MODULES_ASKED))
    assert asked.pop("overlay.js") == "script", asked
    assert {"screen/reveal.js", "screen/views.js", "client/clock.js", "client/live.js"} <= set(asked)
    assert {path: by for path, by in asked.items() if by == "script"} == {}


def test_a_turn_in_overtime_says_so_over_the_overlays_clock(server: Server, stage: Stage) -> None:  # noqa: F811
    created = battle(server, ["Ada", "Bo"], rules={"turn_seconds": 5})
    overlay = stage.page("projector", created["links"]["overlay"], name="overlay")
    phase_is(overlay, "Lobby")
    with host_socket(server, created) as host:
        host("start_round")
        host("next")
        phase_is(overlay, "Presentation")
        expect(overlay.locator("#overlay-clock-caption")).to_have_text("Time left")
        expect(overlay.locator("#overlay-clock-caption")).to_have_text("Overtime", timeout=8000)
        expect(overlay.locator("#overlay-clock")).to_have_text(re.compile(r"^\+0:0\d$"))


def test_the_opening_stance_poll_before_round_one_is_on_the_overlay(server: Server, stage: Stage) -> None:  # noqa: F811
    created = battle(server, ["Ada", "Bo"], rules={"stance_polls": True})
    overlay = stage.page("projector", created["links"]["overlay"], name="overlay")
    phase_is(overlay, "Lobby")
    expect(overlay.locator("#lower-third")).to_be_hidden()
    with host_socket(server, created) as host:
        host("open_stance", stance="opening")
        phase_is(overlay, "Stance poll")
        expect(overlay.locator("#lower-third .lt-eyebrow")).to_have_text("Which vision do you lean towards now?")
        expect(overlay.locator("#lower-third-join")).to_be_visible()
