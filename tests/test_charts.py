"""The charts of the evening (battles.charts): what they draw, read back from the SVG.

Evenings are played through the game core (``battles.game``) as in tests/test_game.py, then
drawn; the SVG is parsed and its bars measured, so a chart that drew the wrong share, lost
a runoff or let markup through fails here.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import pydantic
import pytest

from battles import charts, commands, game, i18n
from battles.model import Battle, BattleDraft, BattlerDraft, Rules

T0 = 10_000_000
SVG = "{http://www.w3.org/2000/svg}"
COMMAND: pydantic.TypeAdapter[commands.Command] = pydantic.TypeAdapter(commands.Command)
EN, DA = i18n.gettext("en"), i18n.gettext("da")


def new_battle(names: list[str], **rules: Any) -> Battle:
    draft = BattleDraft(
        title="Aarhus 2079",
        rules=Rules(**rules),
        battlers=[BattlerDraft(name=name, vision=f"The vision of {name}") for name in names],
    )
    return game.create("AB12", draft, T0)


def run(battle: Battle, kind: str, **context: Any) -> Battle:
    fields = {"battlers": context.pop("battlers")} if "battlers" in context else {}
    for name in ("reason", "stance"):
        if name in context:
            fields[name] = context.pop(name)
    return game.apply(
        battle, COMMAND.validate_python({"type": kind, **fields}), game.Context(now_ms=T0, **context)
    ).battle


def round_of_turns(battle: Battle, reactions: dict[str, dict[str, int]] | None = None) -> Battle:
    """Start a round and hear every turn; each speaker's reactions come in as they end."""
    battle = run(battle, "start_round")
    battle = run(battle, "next")
    so_far: dict[str, dict[str, int]] = {}
    while battle.phase == "turn":
        speaker = battle.speaker
        assert speaker is not None
        so_far[speaker] = (reactions or {}).get(speaker, {})
        battle = run(battle, "next", engagement=dict(so_far))
    return battle


def counted(battle: Battle, totals: dict[str, int], engagement: dict[str, dict[str, int]] | None = None) -> Battle:
    battle = run(battle, "open_vote")
    battle = run(battle, "close_vote")
    return run(battle, "reveal_results", totals=totals, ballots=sum(totals.values()), engagement=engagement or {})


def evening() -> Battle:
    """Four battlers; round 1 ties into a runoff, round 2 has a voided vote, then the final."""
    battle = new_battle(["Ada", "Bo", "Cy", "Di"])
    battle = round_of_turns(battle, {"b1": {"fire": 4, "applause": 2}, "b2": {"yawn": 3}, "b3": {"idea": 1}})
    battle = counted(battle, {"b1": 6, "b2": 1, "b3": 1, "b4": 2})  # keep-mode: b2 and b3 tie for fewest
    assert battle.round is not None and battle.round.proposal is not None and battle.round.proposal.method == "runoff"
    battle = counted(battle, {"b2": 3, "b3": 1})
    battle = run(battle, "confirm_elimination")
    battle = round_of_turns(battle, {"b1": {"applause": 5}})
    battle = run(battle, "open_vote")
    battle = run(battle, "void_vote", reason="The wifi fell over")
    battle = counted(battle, {"b1": 5, "b2": 3, "b4": 0})
    battle = run(battle, "confirm_elimination")
    battle = round_of_turns(battle)
    battle = counted(battle, {"b1": 7, "b2": 2})
    battle = run(battle, "confirm_elimination")
    assert battle.winner == "b1"
    return battle


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    """What each text element shows (its <title> is a tooltip, not shown)."""
    return [
        "".join([node.text or ""] + [span.text or "" for span in node.iter(f"{SVG}tspan")])
        for node in root.iter(f"{SVG}text")
    ]


def bars(root: ET.Element, cls: str = "chart-bar") -> list[ET.Element]:
    return [node for node in root.iter(f"{SVG}rect") if cls in node.get("class", "").split()]


# --- the vote chart ------------------------------------------------------------------------


def test_each_vote_is_a_step_and_runoffs_and_voided_votes_are_their_own() -> None:
    battle = evening()
    steps = charts.vote_steps(battle)
    assert [(s.round, s.runoff, s.status) for s in steps] == [
        (1, False, "revealed"), (1, True, "revealed"),  # round 1 and its runoff
        (2, False, "voided"), (2, False, "revealed"),  # round 2 voted again
        (3, False, "revealed"),  # the final
    ]  # fmt: skip
    root = parse(charts.vote_chart(battle, EN))
    heads = texts(root)
    assert "runoff" in heads and "voided" in heads and "Final" in heads
    # Round 1 and its runoff: 4 + 2 bars; the voided vote none; round 2: 3; the final: 2.
    assert len(bars(root)) == 4 + 2 + 3 + 2


def test_bar_lengths_are_the_shares_of_the_votes_cast() -> None:
    root = parse(charts.vote_chart(evening(), EN))
    drawn = []
    for cell in (node for node in root.iter(f"{SVG}g") if node.get("class") == "chart-cell"):
        track, bar = cell.iter(f"{SVG}rect")
        drawn.append(
            (
                (cell.findtext(f"{SVG}title") or "").split(":")[0],
                float(bar.get("width", "")) / float(track.get("width", "")),
            )
        )
    # Row by row, each battler's votes from the first round to the last they were in.
    shares = [
        ("Ada", 6 / 10),
        ("Ada", 5 / 8),
        ("Ada", 7 / 9),
        ("Bo", 1 / 10),
        ("Bo", 3 / 4),
        ("Bo", 3 / 8),
        ("Bo", 2 / 9),
    ]
    shares += [("Cy", 1 / 10), ("Cy", 1 / 4), ("Di", 2 / 10), ("Di", 0)]
    assert [name for name, _ in drawn] == [name for name, _ in shares]
    assert [share for _, share in drawn] == pytest.approx([share for _, share in shares], abs=0.001)
    assert "60% (6)" in texts(root) and "0% (0)" in texts(root)


def test_who_left_is_marked_on_the_last_vote_of_the_round_and_the_winner_is_named() -> None:
    battle = evening()
    steps = charts.vote_steps(battle)
    assert [sorted(s.left) for s in steps] == [[], ["b3"], [], ["b4"], []]
    root = parse(charts.vote_chart(battle, EN))
    assert len(bars(root, "chart-left")) == 2 + 1  # two bars and the legend's swatch
    assert "Left the battle after this vote" in texts(root)
    assert "★ Ada" in texts(root)
    assert root.findtext(f"{SVG}desc") == "4 battlers and 5 votes. Winner: Ada"


def test_names_with_markup_are_text_and_long_names_wrap() -> None:
    markup = "<script>alert(1)</script>"
    long = "Ingrid Marie Christensen-Vandborg from the Harbour Future Collective"[:60]
    battle = counted(round_of_turns(new_battle([markup, long, "Bo"])), {"b1": 1, "b2": 2, "b3": 0})
    svg = charts.vote_chart(battle, EN)
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    root = parse(svg)
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    label = next(node for node in root.iter(f"{SVG}text") if node.findtext(f"{SVG}title") == long)
    lines = [span.text or "" for span in label.iter(f"{SVG}tspan")]
    assert len(lines) == 2 and all(len(line) <= charts.NAME_CHARS for line in lines)


def test_no_votes_cast_draws_empty_bars_and_no_vote_at_all_says_so() -> None:
    battle = counted(round_of_turns(new_battle(["Ada", "Bo"])), {"b1": 0, "b2": 0})
    root = parse(charts.vote_chart(battle, EN))
    assert [float(bar.get("width", "")) for bar in bars(root)] == [0, 0]
    assert texts(root).count("0% (0)") == 2
    lobby = parse(charts.vote_chart(new_battle(["Ada"]), DA))
    assert texts(lobby) == ["Ingen afstemning blev talt op."]
    assert lobby.findtext(f"{SVG}title") == "Stemmernes fordeling, runde for runde"


def test_many_battlers_and_votes_fall_into_blocks_of_readable_columns() -> None:
    battle = new_battle([f"Battler {n:02d} with a rather long name" for n in range(1, 25)], final_size=2)
    while battle.phase != "final":
        battle = round_of_turns(battle)
        battle = counted(battle, {b.id: n for n, b in enumerate(battle.remaining)})
        battle = run(battle, "confirm_elimination")
    root = parse(charts.vote_chart(battle, EN))
    blocks = [node for node in root.iter(f"{SVG}g") if node.get("class") == "chart-block"]
    assert len(charts.vote_steps(battle)) == 23 and len(blocks) == 3
    width = float(root.get("viewBox", "").split()[2])
    assert (
        width == charts.NAME_WIDTH + charts.STEPS_PER_BLOCK * charts.MIN_STEP_WIDTH
    )  # a block's width, not 23 columns
    # A block has a row for each battler of its votes only: 24, then 16, then 8 at most.
    assert len(bars(root)) == sum(len(s.totals or {}) for s in charts.vote_steps(battle))
    # Each block says where it is, so a page can show one at a time; together they cover the chart.
    edges = [(float(b.get("data-top", "")), float(b.get("data-bottom", ""))) for b in blocks]
    assert edges[0][0] == 0 and edges[-1][1] == float(root.get("viewBox", "").split()[3])
    assert all(bottom == next_top for (_, bottom), (next_top, _) in itertools.pairwise(edges))
    rows = [len([t for t in b.iter(f"{SVG}text") if t.get("class") == "chart-name"]) for b in blocks]
    assert rows == [24, 16, 8]


def test_one_battler_can_still_be_drawn() -> None:
    battle = new_battle(["Solo"])
    assert "No vote was counted." in texts(parse(charts.vote_chart(battle, EN)))
    assert "No turn was played." in texts(parse(charts.engagement_chart(battle, {}, EN)))


# --- the engagement chart -------------------------------------------------------------------


def test_every_turn_is_a_bar_stacked_by_kind_with_the_debate_after_them() -> None:
    battle = new_battle(["Ada", "Bo"], debate_seconds=60)
    battle = round_of_turns(battle, {"b1": {"fire": 4, "applause": 2}, "b2": {"yawn": 3}})
    assert battle.phase == "debate"
    # The store's counts for the round hold the turns and the debate's 5 more for Bo.
    stored = {1: {"b1": {"fire": 4, "applause": 2}, "b2": {"yawn": 3, "idea": 5}}}
    assert charts.turn_bars(battle, stored) == [
        charts.TurnBar(1, "b1", {"fire": 4, "applause": 2}),
        charts.TurnBar(1, "b2", {"yawn": 3}),
        charts.TurnBar(1, None, {"idea": 5}),
    ]
    root = parse(charts.engagement_chart(battle, stored, EN))
    turns = [node for node in root.iter(f"{SVG}g") if node.get("class") == "chart-turn"]
    assert [node.findtext(f"{SVG}title") for node in turns] == [
        "Ada, Round 1: 6 (Applause 2, Fire 4)", "Bo, Round 1: 3 (Yawn 3)", "Debate, Round 1: 5 (Good idea 5)",
    ]  # fmt: skip
    # Heights in proportion: Ada's 6 over Bo's 3.
    heights = [sum(float(r.get("height", "")) for r in node.iter(f"{SVG}rect")) for node in turns]
    assert heights[0] == pytest.approx(2 * heights[1])
    assert {"Applause", "Fire", "Good idea", "Yawn"} <= set(texts(root))
    assert root.findtext(f"{SVG}desc") == "2 turns and 14 reactions."


def test_a_turn_recorded_without_its_count_takes_the_rounds_count() -> None:
    battle = run(run(new_battle(["Ada", "Bo"]), "start_round"), "next")
    battle = run(battle, "end_battle")  # mid-turn: the turn never ended
    assert battle.rounds[0].turns[0].reactions is None
    assert charts.turn_bars(battle, {1: {"b1": {"applause": 3}}}) == [charts.TurnBar(1, "b1", {"applause": 3})]


def test_an_evening_without_reactions_says_so_in_both_languages() -> None:
    battle = round_of_turns(new_battle(["Ada", "Bo"]))
    assert "No reactions." in texts(parse(charts.engagement_chart(battle, {}, EN)))
    danish = texts(parse(charts.engagement_chart(battle, {}, DA)))
    assert "Ingen reaktioner." in danish and "Finale" in danish and "Bifald" in danish


def test_labels_under_bars_give_way_when_the_turns_are_many() -> None:
    few = parse(charts.engagement_chart(evening(), {}, EN))
    assert [n for n in few.iter(f"{SVG}text") if n.get("class") == "chart-name"]
    battle = new_battle([f"B{n}" for n in range(24)])
    while len(battle.remaining) > 2:
        battle = counted(round_of_turns(battle), {b.id: n for n, b in enumerate(battle.remaining)})
        battle = run(battle, "confirm_elimination")
    many = parse(charts.engagement_chart(battle, {}, EN))
    assert not [n for n in many.iter(f"{SVG}text") if n.get("class") == "chart-name"]
    assert re.fullmatch(r"\d+ turns and 0 reactions\.", many.findtext(f"{SVG}desc") or "")


def test_a_description_counts_one_in_the_singular_in_both_languages() -> None:
    battle = round_of_turns(new_battle(["Ada", "Bo"]), {"b1": {"fire": 1}})
    battle = counted(battle, {"b1": 1, "b2": 0})  # two battlers: the first round is the final
    battle = run(battle, "confirm_elimination")
    descs = {
        language: [parse(chart).findtext(f"{SVG}desc") for chart in (charts.vote_chart(battle, _), charts.engagement_chart(battle, {}, _))]
        for language, _ in (("en", EN), ("da", DA))
    }  # fmt: skip
    assert descs["en"] == ["2 battlers and 1 vote. Winner: Ada", "2 turns and 1 reaction."]
    assert descs["da"] == ["2 battlere og 1 afstemning. Vinder: Ada", "2 indlæg og 1 reaktion."]
    cut_short = run(run(run(new_battle(["Ada", "Bo"]), "start_round"), "next"), "end_battle")
    assert parse(charts.engagement_chart(cut_short, {}, DA)).findtext(f"{SVG}desc") == "1 indlæg og 0 reaktioner."
    assert parse(charts.engagement_chart(cut_short, {}, EN)).findtext(f"{SVG}desc") == "1 turn and 0 reactions."


def test_every_chart_has_a_title_and_a_description_it_is_labelled_by() -> None:
    for name, draw in charts.CHARTS.items():
        root = parse(draw(evening(), {}, EN))
        assert root.get("role") == "img"
        assert root.get("aria-labelledby") == f"chart-{name}-title"
        assert root.get("aria-describedby") == f"chart-{name}-desc"
        assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None


def test_a_drawing_is_kept_for_what_it_shows_and_no_longer() -> None:
    drawings = charts.Drawings(most=2)
    battle = evening()
    first = drawings.draw("votes", battle, {}, "en")
    assert drawings.draw("votes", battle, {}, "en") is first  # kept, not drawn again
    assert first == charts.vote_chart(battle, EN)
    assert drawings.draw("votes", battle, {}, "da") == charts.vote_chart(battle, DA)  # another language
    later = battle.model_copy(update={"version": battle.version + 1, "title": "Later"})
    assert drawings.draw("votes", later, {}, "en") is not first  # a new version: drawn again
    assert len(drawings.kept) == 2
    stored = {1: {"b1": {"fire": 9}}}
    assert drawings.draw("engagement", battle, stored, "en") != drawings.draw("engagement", battle, {}, "en")


# --- flows: who moved minds (docs/rules.md) ------------------------------------------------


def minds_evening() -> Battle:
    """Three battlers whose closing stance poll was revealed with the worked example's counts."""
    battle = new_battle(["Ada", "Bo", "<b>Cy</b>"], stance_polls=True)
    battle = run(run(battle, "open_stance", stance="opening"), "close_vote")
    battle = run(battle, "reveal_results", totals={})
    battle = counted(round_of_turns(battle), {"b1": 5, "b2": 3, "b3": 1})
    battle = run(battle, "confirm_elimination")
    battle = run(counted(round_of_turns(battle), {"b1": 5, "b2": 3}), "confirm_elimination")
    battle = run(run(battle, "open_stance", stance="closing"), "close_vote")
    transitions = {("b1", "b1"): 4, ("b1", "b2"): 2, ("undecided", "b2"): 3, ("b2", "undecided"): 1,
                   ("b3", "b1"): 1, ("b1", None): 2, (None, "b3"): 3}  # fmt: skip
    return run(battle, "reveal_results", totals={}, transitions=transitions)


def test_flows_are_bands_as_wide_as_the_people_who_made_each_pair_of_choices() -> None:
    battle = minds_evening()
    root = parse(charts.flow_chart(battle, EN))
    bands = {band.findtext(f"{SVG}title"): band for band in root.iter(f"{SVG}path")}
    assert set(bands) == {"Ada to Ada: 4", "Ada to Bo: 2", "Undecided to Bo: 3", "Bo to Undecided: 1",
                          "<b>Cy</b> to Ada: 1"}  # fmt: skip

    def width(title: str) -> float:
        numbers = [float(n) for n in re.findall(r"-?[0-9.]+", bands[title].get("d", ""))]
        return numbers[9] - numbers[7]  # the far end's bottom minus its top

    assert width("Ada to Ada: 4") == pytest.approx(4 * width("<b>Cy</b> to Ada: 1"), rel=1e-3)
    assert width("Undecided to Bo: 3") == pytest.approx(3 * width("Bo to Undecided: 1"), rel=1e-3)
    names = [text.findtext(f"{SVG}title") for text in root.iter(f"{SVG}g") if text.get("class") == "chart-node"]
    assert names == ["Ada: 6", "Bo: 1", "<b>Cy</b>: 1", "Undecided: 3", "Ada: 5", "Bo: 5", "Undecided: 1"]
    assert root.findtext(f"{SVG}desc") == "11 in both polls; 2 only in the opening, 3 only in the closing."
    assert parse(charts.flow_chart(battle, DA)).findtext(f"{SVG}title") == "Fra første til sidste holdning"


def test_flows_without_a_closing_poll_say_no_one_took_part_in_both() -> None:
    root = parse(charts.flow_chart(evening(), EN))
    assert root.findtext(f"{SVG}desc") == "No one took part in both stance polls."
