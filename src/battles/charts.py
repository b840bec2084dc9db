"""The evening as pictures: SVG charts drawn from a battle's record, with no I/O.

Three charts, each a whole ``<svg>`` document as text (docs/protocol.md, charts):

- ``votes``: every battler's share of every vote, round by round; a runoff, and a voided
  vote, is a step of its own. Eight steps to a block, the blocks one under the other, so a
  long evening (24 battlers, 30 votes) stays readable on a page instead of shrinking away.
- ``engagement``: the reactions of every turn through the evening, stacked by kind, with
  the round's debate (and reactions that reached the store just after a turn ended) as a
  bar of its own.
- ``flows``: who moved minds (docs/rules.md): the people in both stance polls, from their
  choice at the opening (left) to their choice at the closing (right), one band per pair of
  choices, as wide as the people who made it; counts only (``Battle.minds``).

The server draws them so that the results page, the poster and the screen's closing view
show the same picture with no chart library. Every element is built with ElementTree,
which escapes text and attributes: a name such as ``<script>`` is drawn as typed. Colours
are presentation attributes (print-safe defaults, the light palette of battles.css); a page
that shows a chart inline restyles it through its classes (static/charts.css), since the
Content-Security-Policy allows no ``<style>`` inside the SVG.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from battles import i18n
from battles.model import ALL_REACTIONS, UNDECIDED, Battle, Battler, Flow, Language, Persuasion, Round

Gettext = Callable[[str], str]
Reactions = dict[int, dict[str, dict[str, int]]]  # round -> battler -> kind -> count (Store.all_reactions)

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif'
# The light palette of static/battles.css; static/charts.css maps the same classes to the
# page's CSS variables (the dark screen, print).
INK, MUTED, LINE, SHARE, LEFT = "#1b1a1f", "#4f4b57", "#c9c5cf", "#4c1d95", "#a61b1b"
KIND_COLOURS = {"applause": "#15803d", "fire": "#dc2626", "idea": "#1d4ed8", "yawn": "#6b7280"}
KIND_LABELS = {"applause": "Applause", "fire": "Fire", "idea": "Good idea", "yawn": "Yawn"}

# The vote chart's grid, in SVG units (the chart scales to its box).
STEPS_PER_BLOCK = 8
NAME_WIDTH = 260
PLOT_WIDTH = 640  # what the step columns share when they are few
MIN_STEP_WIDTH = 96
HEAD_HEIGHT = 56
ROW_HEIGHT = 44
BLOCK_GAP = 28
NAME_CHARS = 24  # per line, two lines at most (and a star): bold, they stay left of the first column

# The engagement chart's frame.
ENGAGEMENT_WIDTH = 900
AXIS_WIDTH = 52
LEGEND_HEIGHT = 44
BAR_AREA_HEIGHT = 260
LABEL_CHARS = 16  # a name under its bar, shortened
ROUND_LABEL_HEIGHT = 30
LABEL_SLOT = 18  # narrower bars get no name under them (the tables have every figure)
TOTAL_SLOT = 26

# The flow chart's frame: the choices' names beside two columns of nodes, bands between them.
FLOW_WIDTH = 900
FLOW_LABEL = 250
FLOW_NODE = 16
FLOW_HEIGHT = 360  # what the nodes of one side share, gaps included
FLOW_GAP = 12
FLOW_FOOT = 40


# --- what is drawn ------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One vote of the evening: a column of the vote chart."""

    round: int
    final: bool
    runoff: bool
    status: str
    totals: dict[str, int] | None  # None: voided, or never counted
    left: frozenset[str]  # who left the battle after this vote (the round's last counted one)

    @property
    def ballots(self) -> int:
        return sum((self.totals or {}).values())

    def share(self, battler: str) -> float:
        """The battler's part of the votes cast in this step, 0 when none were cast."""
        return (self.totals or {}).get(battler, 0) / self.ballots if self.ballots else 0.0


def vote_steps(battle: Battle) -> list[Step]:
    steps = []
    for rnd in battle.rounds:
        counted = [vote for vote in rnd.votes if vote.totals is not None]
        last = counted[-1] if counted else None
        for vote in rnd.votes:
            # docs/rules.md, the final: who is not crowned is not "voted out", so no marks there.
            left = frozenset(rnd.eliminated) if vote is last and not rnd.final else frozenset()
            steps.append(Step(rnd.number, rnd.final, vote.runoff, vote.status, vote.totals, left))
    return steps


@dataclass(frozen=True)
class TurnBar:
    """The reactions of one turn, or (``battler`` None) of a round's debate."""

    round: int
    battler: str | None
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _round_bars(rnd: Round, stored: dict[str, dict[str, int]]) -> list[TurnBar]:
    bars = []
    for turn in rnd.turns:
        # A turn cut short by end_battle, or recorded before turns kept their count, takes
        # the battler's count in the round: no debate came after it.
        counts = turn.reactions if turn.reactions is not None else stored.get(turn.battler, {})
        bars.append(TurnBar(rnd.number, turn.battler, {k: n for k, n in counts.items() if n > 0}))
    rest: dict[str, int] = {
        kind: sum(by_kind.get(kind, 0) for by_kind in stored.values()) - sum(bar.counts.get(kind, 0) for bar in bars)
        for kind in ALL_REACTIONS
    }
    leftover = {kind: n for kind, n in rest.items() if n > 0}
    return [*bars, TurnBar(rnd.number, None, leftover)] if leftover else bars


def turn_bars(battle: Battle, reactions: Reactions) -> list[TurnBar]:
    """Every turn of the evening in order, with the debate's reactions after each round's turns."""
    return [bar for rnd in battle.rounds for bar in _round_bars(rnd, reactions.get(rnd.number, {}))]


# --- drawing ------------------------------------------------------------------------------


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    """A child element; ``class_`` is ``class``, ``text_anchor`` is ``text-anchor``."""
    element = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()})
    element.text = text
    return element


def _svg(name: str, width: float, height: float, title: str, desc: str) -> ET.Element:
    root = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "class": f"chart chart-{name}",
            "viewBox": f"0 0 {width:g} {height:g}",
            "width": f"{width:g}",
            "height": f"{height:g}",
            "role": "img",
            "aria-labelledby": f"chart-{name}-title",
            "aria-describedby": f"chart-{name}-desc",
            "font-family": FONT,
            "font-size": "15",
            "fill": INK,
        },
    )
    _el(root, "title", title, id=f"chart-{name}-title")
    _el(root, "desc", desc, id=f"chart-{name}-desc")
    return root


def _text(root: ET.Element, x: float, y: float, text: str, **attrs: object) -> ET.Element:
    return _el(root, "text", text, x=f"{x:g}", y=f"{y:g}", **attrs)


def _document(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def _empty(name: str, title: str, message: str) -> str:
    root = _svg(name, 640, 80, title, message)
    _text(root, 320, 46, message, class_="chart-note", fill=MUTED, text_anchor="middle", font_size="20")
    return _document(root)


def _step_head(step: Step, _: Gettext) -> tuple[str, str]:
    first = _("Final") if step.final else _("Round {n}").format(n=step.round)
    if step.status == "voided":
        return first, _("voided")
    if step.totals is None:
        return first, _("not counted")
    return first, _("runoff") if step.runoff else ""


def _percent(step: Step, battler: str, _: Gettext) -> str:
    return _("{percent}% ({votes})").format(
        percent=round(step.share(battler) * 100), votes=(step.totals or {}).get(battler, 0)
    )


def _name_lines(name: str) -> list[str]:
    return textwrap.wrap(name, NAME_CHARS, max_lines=2, placeholder="…") or [name]


def _name_label(group: ET.Element, battler: Battler, winner: bool, y: float) -> None:
    """The row's name, on two lines at most; the whole name as its tooltip."""
    lines = _name_lines(battler.name)
    label = _el(group, "text", None, x="0", y=f"{y + (16 if len(lines) > 1 else 26):g}", class_="chart-name")
    if winner:
        label.set("font-weight", "700")
    _el(label, "title", battler.name)
    for n, line in enumerate(lines):
        _el(label, "tspan", ("★ " if winner and n == 0 else "") + line, x="0", dy="0" if n == 0 else "18")


def _vote_cell(group: ET.Element, step: Step, battler: Battler, x: float, y: float, track: float, _: Gettext) -> None:
    figure = _percent(step, battler.id, _)
    cell = _el(group, "g", class_="chart-cell")
    _el(cell, "title", f"{battler.name}: {figure}")
    _text(cell, x, y + 16, figure, class_="chart-figure", font_size="14")
    _el(
        cell,
        "rect",
        x=f"{x:g}",
        y=f"{y + 23:g}",
        width=f"{track:g}",
        height="12",
        rx="3",
        class_="chart-track",
        fill=LINE,
    )
    left = battler.id in step.left
    _el(
        cell, "rect", x=f"{x:g}", y=f"{y + 23:g}", width=f"{track * step.share(battler.id):.2f}", height="12", rx="3",
        class_="chart-bar chart-left" if left else "chart-bar", fill=LEFT if left else SHARE,
    )  # fmt: skip


def _vote_block(root: ET.Element, battle: Battle, steps: list[Step], top: float, _: Gettext) -> float:
    """One block of up to STEPS_PER_BLOCK steps; the battlers of its votes as rows. Returns its height."""
    column = max(MIN_STEP_WIDTH, PLOT_WIDTH / len(steps))
    in_block = {battler for step in steps for battler in (step.totals or {})}
    rows = [b for b in battle.battlers if b.id in in_block]
    group = _el(root, "g", class_="chart-block")
    for i, step in enumerate(steps):
        x = NAME_WIDTH + i * column
        first, second = _step_head(step, _)
        _text(group, x + 6, top + 22, first, class_="chart-head", font_weight="700")
        if second:
            _text(group, x + 6, top + 42, second, class_="chart-note", fill=MUTED)
    for r, battler in enumerate(rows):
        y = top + HEAD_HEIGHT + r * ROW_HEIGHT
        _name_label(group, battler, battler.id == battle.winner, y)
        for i, step in enumerate(steps):
            if step.totals is not None and battler.id in step.totals:
                _vote_cell(group, step, battler, NAME_WIDTH + i * column + 6, y, column - 16, _)
    return HEAD_HEIGHT + len(rows) * ROW_HEIGHT


def vote_chart(battle: Battle, _: Gettext) -> str:
    """Every battler's share of every vote (docs/protocol.md, charts)."""
    title = _("Share of the votes, round by round")
    steps = vote_steps(battle)
    if not any(step.totals is not None for step in steps):
        return _empty("votes", title, _("No vote was counted."))
    winner = battle.battler(battle.winner or "")
    desc = _("{battlers} and {votes}.").format(
        battlers=i18n.plural(_, len(battle.battlers), "1 battler", "{n} battlers"),
        votes=i18n.plural(_, len(steps), "1 vote", "{n} votes"),
    )
    if winner is not None:
        desc += " " + _("Winner: {name}").format(name=winner.name)
    blocks = [steps[i : i + STEPS_PER_BLOCK] for i in range(0, len(steps), STEPS_PER_BLOCK)]
    width = NAME_WIDTH + max(PLOT_WIDTH, MIN_STEP_WIDTH * len(blocks[0]))
    root = _svg("votes", width, 0, title, desc)
    tops = [0.0]
    for block in blocks:
        tops.append(tops[-1] + _vote_block(root, battle, block, tops[-1], _) + BLOCK_GAP)
    top = tops[-1]
    if any(step.left for step in steps):
        _el(
            root,
            "rect",
            x="0",
            y=f"{top - 4:g}",
            width="14",
            height="14",
            rx="3",
            class_="chart-swatch chart-left",
            fill=LEFT,
        )
        _text(root, 22, top + 8, _("Left the battle after this vote"), class_="chart-note", fill=MUTED)
        top += 24
    # Where each block is, so a page can show one at a time (the screen's closing view);
    # the last one takes the legend with it.
    for group, start, end in zip(root.findall("g"), tops, [*tops[1:-1], top], strict=False):
        group.set("data-top", f"{start:g}")
        group.set("data-bottom", f"{end:g}")
    _size(root, width, top)
    return _document(root)


def _size(root: ET.Element, width: float, height: float) -> None:
    root.set("viewBox", f"0 0 {width:g} {height:g}")
    root.set("height", f"{height:g}")


def _nice_top(largest: int) -> int:
    """The axis's top: 1, 2 or 5 times a power of ten, at least ``largest`` (and 1)."""
    scale = 1
    while True:
        for factor in (1, 2, 5):
            if factor * scale >= largest:
                return factor * scale
        scale *= 10


def _legend(root: ET.Element, kinds: Sequence[str], _: Gettext) -> None:
    x = float(AXIS_WIDTH)
    for kind in kinds:
        _el(
            root,
            "rect",
            x=f"{x:g}",
            y="10",
            width="16",
            height="16",
            rx="3",
            class_=f"chart-kind-{kind}",
            fill=KIND_COLOURS[kind],
        )
        label = _(KIND_LABELS[kind])
        _text(root, x + 22, 24, label)
        x += 22 + 9 * len(label) + 28


def _who(battle: Battle, bar: TurnBar, _: Gettext) -> str:
    if bar.battler is None:
        return _("Debate")
    battler = battle.battler(bar.battler)
    return battler.name if battler is not None else bar.battler


def _shortened(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _bar_title(battle: Battle, bar: TurnBar, _: Gettext) -> str:
    parts = ", ".join(f"{_(KIND_LABELS[k])} {bar.counts[k]}" for k in ALL_REACTIONS if bar.counts.get(k))
    return f"{_who(battle, bar, _)}, {_('Round {n}').format(n=bar.round)}: {bar.total}" + (
        f" ({parts})" if parts else ""
    )


def _draw_bar(root: ET.Element, bar: TurnBar, x: float, width: float, scale: float, label: str) -> None:
    group = _el(root, "g", class_="chart-turn")
    _el(group, "title", label)
    bottom = float(LEGEND_HEIGHT + BAR_AREA_HEIGHT)
    for kind in ALL_REACTIONS:
        height = bar.counts.get(kind, 0) * scale
        if height <= 0:
            continue
        bottom -= height
        _el(group, "rect", x=f"{x:.2f}", y=f"{bottom:.2f}", width=f"{width:.2f}", height=f"{height:.2f}",
            class_=f"chart-kind-{kind}", fill=KIND_COLOURS[kind])  # fmt: skip


def _axis(root: ET.Element, top_value: int, plot_right: float) -> None:
    base = LEGEND_HEIGHT + BAR_AREA_HEIGHT
    for value in (0, top_value // 2, top_value) if top_value > 1 else (0, top_value):
        y = base - value * BAR_AREA_HEIGHT / top_value
        _el(
            root,
            "line",
            x1=f"{AXIS_WIDTH:g}",
            x2=f"{plot_right:g}",
            y1=f"{y:.2f}",
            y2=f"{y:.2f}",
            class_="chart-grid",
            stroke=LINE,
        )
        _text(
            root, AXIS_WIDTH - 8, y + 5, str(value), class_="chart-note", fill=MUTED, text_anchor="end", font_size="13"
        )


def _round_labels(root: ET.Element, battle: Battle, bars: list[TurnBar], slot: float, top: float, _: Gettext) -> None:
    start = 0
    for i, bar in enumerate([*bars, TurnBar(-1, None, {})]):
        if i < len(bars) and bar.round == bars[start].round:
            continue
        number = bars[start].round
        left, span = AXIS_WIDTH + start * slot, (i - start) * slot
        final = battle.rounds[number - 1].final if 0 < number <= len(battle.rounds) else False
        label = _("Final") if final else _("Round {n}").format(n=number)
        text = label if span >= 10 * len(label) + 8 else (str(number) if span >= 26 else "")
        if text:
            _text(root, left + span / 2, top + 20, text, class_="chart-head", text_anchor="middle", font_weight="700")
        if start > 0:
            _el(root, "line", x1=f"{left:.2f}", x2=f"{left:.2f}", y1=f"{LEGEND_HEIGHT:g}", y2=f"{top + 26:g}",
                class_="chart-grid", stroke=LINE, stroke_dasharray="4 4")  # fmt: skip
        start = i


def engagement_chart(battle: Battle, reactions: Reactions, _: Gettext) -> str:
    """The reactions of every turn through the evening, by kind (docs/protocol.md, charts)."""
    title = _("Reactions per turn through the evening")
    bars = turn_bars(battle, reactions)
    if not bars:
        return _empty("engagement", title, _("No turn was played."))
    total = sum(bar.total for bar in bars)
    desc = _("{turns} and {reactions}.").format(
        turns=i18n.plural(_, sum(b.battler is not None for b in bars), "1 turn", "{n} turns"),
        reactions=i18n.plural(_, total, "1 reaction", "{n} reactions"),
    )
    labelled = (ENGAGEMENT_WIDTH - AXIS_WIDTH - 12) / len(bars) >= LABEL_SLOT
    names = [_shortened(_who(battle, bar, _), LABEL_CHARS) for bar in bars] if labelled else []
    # Names slant at 50 degrees: about 6 units down for each character of the longest.
    height = LEGEND_HEIGHT + BAR_AREA_HEIGHT + (24 + 6 * max(map(len, names)) if names else 0) + ROUND_LABEL_HEIGHT
    root = _svg("engagement", ENGAGEMENT_WIDTH, height, title, desc)
    kinds = [k for k in ALL_REACTIONS if k in battle.rules.reactions or any(k in bar.counts for bar in bars)]
    _legend(root, kinds, _)
    plot_right = ENGAGEMENT_WIDTH - 12
    slot = (plot_right - AXIS_WIDTH) / len(bars)
    top_value = _nice_top(max(bar.total for bar in bars))
    _axis(root, top_value, plot_right)
    scale = BAR_AREA_HEIGHT / top_value
    base = LEGEND_HEIGHT + BAR_AREA_HEIGHT
    for i, bar in enumerate(bars):
        x = AXIS_WIDTH + i * slot + slot * 0.14
        _draw_bar(root, bar, x, max(slot * 0.72, 1.0), scale, _bar_title(battle, bar, _))
        if slot >= TOTAL_SLOT and bar.total:
            _text(
                root,
                x + slot * 0.36,
                base - bar.total * scale - 6,
                str(bar.total),
                class_="chart-figure",
                text_anchor="middle",
                font_size="13",
            )
        if names:
            _text(root, x + slot * 0.36, base + 14, names[i], class_="chart-name", text_anchor="end", font_size="13",
                  transform=f"rotate(-50 {x + slot * 0.36:.2f} {base + 14:g})")  # fmt: skip
    if total == 0:
        _text(root, (AXIS_WIDTH + plot_right) / 2, LEGEND_HEIGHT + BAR_AREA_HEIGHT / 2, _("No reactions."),
              class_="chart-note", fill=MUTED, text_anchor="middle", font_size="20")  # fmt: skip
    _round_labels(root, battle, bars, slot, height - ROUND_LABEL_HEIGHT, _)
    return _document(root)


def _flow_label(battle: Battle, choice: str, _: Gettext) -> str:
    battler = battle.battler(choice)
    return battler.name if battler else _("Undecided") if choice == UNDECIDED else choice


def _flow_nodes(counts: dict[str, int], order: list[str], scale: float) -> dict[str, tuple[float, float]]:
    """Each choice with people on this side: (top, height), in roster order, undecided last."""
    nodes, y = {}, 0.0
    for choice in order:
        if counts.get(choice):
            nodes[choice] = (y, counts[choice] * scale)
            y += counts[choice] * scale + FLOW_GAP
    return nodes


def _flow_side(root: ET.Element, battle: Battle, nodes: dict[str, tuple[float, float]], counts: dict[str, int],
               left: bool, _: Gettext) -> None:  # fmt: skip
    x = FLOW_LABEL if left else FLOW_WIDTH - FLOW_LABEL - FLOW_NODE
    for choice, (top, height) in nodes.items():
        node = _el(root, "g", class_="chart-node")
        _el(node, "title", f"{_flow_label(battle, choice, _)}: {counts[choice]}")
        _el(node, "rect", x=f"{x:g}", y=f"{top:.2f}", width=f"{FLOW_NODE}", height=f"{max(height, 1):.2f}", fill=SHARE,
            class_="chart-bar")  # fmt: skip
        # The name on two lines at most, as the vote chart has it, and the count after it.
        lines = _name_lines(_flow_label(battle, choice, _))
        lines[-1] += f" ({counts[choice]})"
        text_x = x - 8 if left else x + FLOW_NODE + 8
        label = _text(node, text_x, top + height / 2 + 5 - 9 * (len(lines) - 1), "", class_="chart-name",
                      text_anchor="end" if left else "start")  # fmt: skip
        for n, line in enumerate(lines):
            _el(label, "tspan", line, x=f"{text_x:g}", dy="0" if n == 0 else "18")


def _flow_band(root: ET.Element, battle: Battle, flow: Flow, y0: float, y1: float, width: float, _: Gettext) -> None:
    x0, x1 = FLOW_LABEL + FLOW_NODE, FLOW_WIDTH - FLOW_LABEL - FLOW_NODE
    middle = (x0 + x1) / 2
    path = (
        f"M{x0:g} {y0:.2f} C{middle:g} {y0:.2f} {middle:g} {y1:.2f} {x1:g} {y1:.2f} "
        f"L{x1:g} {y1 + width:.2f} C{middle:g} {y1 + width:.2f} {middle:g} {y0 + width:.2f} {x0:g} {y0 + width:.2f} Z"
    )
    held = flow.before == flow.after
    # Those who stayed in grey, those who moved in the share colour: the eye goes to the moves.
    band = _el(root, "path", d=path, fill=LINE if held else SHARE, fill_opacity="0.6" if held else "0.45",
               class_="chart-flow chart-flow-held" if held else "chart-flow")  # fmt: skip
    before, after = _flow_label(battle, flow.before, _), _flow_label(battle, flow.after, _)
    _el(band, "title", _("{before} to {after}: {n}").format(before=before, after=after, n=flow.devices))


def flow_chart(battle: Battle, _: Gettext) -> str:
    """Who moved minds: the opening stance to the closing stance (docs/protocol.md, charts)."""
    title = _("From the opening to the closing stance")
    minds: Persuasion | None = battle.minds
    if minds is None or not minds.paired:
        return _empty("flows", title, _("No one took part in both stance polls."))
    desc = _("{paired} in both polls; {before} only in the opening, {after} only in the closing.").format(
        paired=minds.paired, before=minds.only_before, after=minds.only_after
    )
    order = [b.id for b in battle.battlers] + [UNDECIDED]
    rank = {choice: n for n, choice in enumerate(order)}
    flows = sorted(minds.flows, key=lambda f: (rank.get(f.before, len(order)), rank.get(f.after, len(order))))
    firsts = {c: sum(f.devices for f in flows if f.before == c) for c in order}
    seconds = {c: sum(f.devices for f in flows if f.after == c) for c in order}
    most = max(sum(1 for n in side.values() if n) for side in (firsts, seconds))
    scale = (FLOW_HEIGHT - FLOW_GAP * (most - 1)) / minds.paired
    left, right = _flow_nodes(firsts, order, scale), _flow_nodes(seconds, order, scale)
    root = _svg("flows", FLOW_WIDTH, FLOW_HEIGHT + FLOW_FOOT, title, desc)
    used = dict.fromkeys(order, 0.0)
    arrived = dict.fromkeys(order, 0.0)
    for flow in flows:
        width = flow.devices * scale
        y0, y1 = left[flow.before][0] + used[flow.before], right[flow.after][0] + arrived[flow.after]
        used[flow.before] += width
        arrived[flow.after] += width
        _flow_band(root, battle, flow, y0, y1, width, _)
    _flow_side(root, battle, left, firsts, True, _)
    _flow_side(root, battle, right, seconds, False, _)
    _text(root, 0, FLOW_HEIGHT + 30, desc, class_="chart-note", fill=MUTED)
    return _document(root)


CHARTS: dict[str, Callable[[Battle, Reactions, Gettext], str]] = {
    "votes": lambda battle, reactions, _: vote_chart(battle, _),
    "engagement": engagement_chart,
    "flows": lambda battle, reactions, _: flow_chart(battle, _),
}


class Drawings:
    """The latest drawings, kept by what they show: a chart asked for again (a page loaded
    again, a screen after a reconnect, a script in a loop) is not drawn again. The longest
    evening's (24 battlers, 23 votes, 299 turns) took 7 and 14 ms of the event loop to
    draw, and is about 120 KB: ``most`` drawings hold at most ``most`` times that."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.kept: OrderedDict[tuple[str, ...], str] = OrderedDict()

    def draw(self, name: str, battle: Battle, reactions: Reactions, language: Language) -> str:
        """Chart ``name`` (a key of CHARTS) of this version of the battle, in ``language``."""
        shown = json.dumps(reactions, sort_keys=True)
        key = (name, language, battle.code, str(battle.created_ms), str(battle.version), shown)
        if key in self.kept:
            self.kept.move_to_end(key)
            return self.kept[key]
        svg = self.kept[key] = CHARTS[name](battle, reactions, i18n.gettext(language))
        if len(self.kept) > self.most:
            self.kept.popitem(last=False)
        return svg
