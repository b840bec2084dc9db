"""The announcements between processes: typed, and the same on both stores."""

from __future__ import annotations

import jsonpatch
from pydantic import TypeAdapter

from battles import announcements, game, views
from battles.commands import Command
from battles.model import Battle, BattleDraft, Submission
from tests.helpers import FOUR

COMMAND: TypeAdapter[Command] = TypeAdapter(Command)


def evening() -> list[Battle]:
    """Versions of one battle: created, a round started, a turn, a word list changed."""
    battle = game.create("K7RM2Q", BattleDraft.model_validate({"title": "T", "battlers": FOUR}), 1_000)
    versions = [battle]
    for number, command in enumerate(
        [{"type": "start_round"}, {"type": "next"}, {"type": "set_audience_rules", "banned_words": ["bad"]}], 1
    ):
        battle = game.apply(battle, COMMAND.validate_python(command), game.Context(now_ms=1_000 + number)).battle
        versions.append(battle)
    return versions


def test_a_commit_round_trips_and_its_patch_rebuilds_every_view() -> None:
    shown = Submission(id="s1", kind="question", text="Why?", at_ms=5, device="d1")
    for before, after in zip(evening(), evening()[1:], strict=False):
        announced = announcements.committed(before, after, shown)
        decoded = announcements.decode(announcements.encode(announced))
        assert decoded == announced
        assert isinstance(decoded, announcements.Committed)
        assert decoded.version == after.version and decoded.events == after.log[len(before.log) :]
        state = jsonpatch.apply_patch(announcements.state(before), decoded.patch)
        assert state == announcements.state(after)
        public = jsonpatch.apply_patch(views.battle_view(before, "screen"), views.public_patch(decoded.patch))
        assert public | {"version": decoded.version} == views.battle_view(after, "screen")


def test_submissions_round_trip() -> None:
    items = [Submission(id="s2", kind="challenge", text="No cars", at_ms=9, device="d2", status="approved", rev=3)]
    decoded = announcements.decode(announcements.submissions(items))
    assert isinstance(decoded, announcements.SubmissionsChanged) and decoded.items == items


def test_an_entered_socket_round_trips() -> None:
    entered = announcements.Entered(device="d1", entry="0a1b2c3d4e5f6a7b")
    assert announcements.decode(announcements.encode(entered)) == entered
