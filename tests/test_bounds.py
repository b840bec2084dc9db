"""Every limit of a command, a rule or a battle's text, at its bound and one past it.

The limits are read from the schemas themselves: every pydantic constraint (``ge``, ``le``,
``min_length``, ``max_length``, ``pattern``, whitespace stripping) of every model in
``battles.commands`` and ``battles.model``. So a new limit is tried at its bound and one past
it here without anyone writing a test for it; ``LIMITS`` below holds the values the project
promises (docs/rules.md for the rules, docs/protocol.md for the commands), and a limit that is
added or changed fails ``test_the_limits_are_the_promised_ones`` until it is written there too.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types
import pydantic
import pytest
from pydantic import BaseModel, StringConstraints

from battles import commands, model

DOCS = Path(__file__).resolve().parents[1] / "docs"

# (model, field, constraint): bound. A string's lengths count after stripping whitespace where
# ``strip`` says so; a list's lengths count its items.
LIMITS: dict[tuple[str, str, str], int | str] = {
    ("StartRound", "challenge", "min_length"): 1,
    ("StartRound", "challenge", "max_length"): 500,
    ("RevealChallenge", "text", "min_length"): 1,
    ("RevealChallenge", "text", "max_length"): 500,
    ("ExtendTimer", "seconds", "ge"): 1,
    ("ExtendTimer", "seconds", "le"): 600,
    ("VoidVote", "reason", "min_length"): 1,
    ("VoidVote", "reason", "max_length"): 300,
    ("ConfirmElimination", "battlers", "max_length"): 10,
    ("ConfirmElimination", "battlers", "pattern"): r"^b[0-9]{1,3}$",
    ("OverrideElimination", "battlers", "min_length"): 1,
    ("OverrideElimination", "battlers", "max_length"): 10,
    ("OverrideElimination", "battlers", "pattern"): r"^b[0-9]{1,3}$",
    ("OverrideElimination", "reason", "min_length"): 1,
    ("OverrideElimination", "reason", "max_length"): 300,
    ("EditBattler", "battler", "pattern"): r"^b[0-9]{1,3}$",
    ("RemoveBattler", "battler", "pattern"): r"^b[0-9]{1,3}$",
    ("ReviseVision", "battler", "pattern"): r"^b[0-9]{1,3}$",
    ("ReviseVision", "vision", "min_length"): 1,
    ("ReviseVision", "vision", "max_length"): 140,
    ("ReviseVision", "changed", "max_length"): 140,
    ("UndoRevision", "battler", "pattern"): r"^b[0-9]{1,3}$",
    ("RevokeBattler", "battler", "pattern"): r"^b[0-9]{1,3}$",
    ("VisionVersion", "vision", "min_length"): 1,
    ("VisionVersion", "vision", "max_length"): 140,
    ("VisionVersion", "changed", "max_length"): 140,
    ("EndBattle", "reason", "max_length"): 300,
    ("Rules", "turn_seconds", "ge"): 5,
    ("Rules", "turn_seconds", "le"): 3600,
    ("Rules", "debate_seconds", "ge"): 0,
    ("Rules", "debate_seconds", "le"): 3600,
    ("Rules", "vote_seconds", "ge"): 5,
    ("Rules", "vote_seconds", "le"): 3600,
    ("Rules", "runoff_seconds", "ge"): 5,
    ("Rules", "runoff_seconds", "le"): 3600,
    ("Rules", "eliminations_per_round", "ge"): 1,
    ("Rules", "eliminations_per_round", "le"): 10,
    ("Rules", "final_size", "ge"): 2,
    ("Rules", "final_size", "le"): 10,
    ("Rules", "remote_delay_seconds", "ge"): 0,
    ("Rules", "remote_delay_seconds", "le"): 120,
    ("Rules", "max_delay_seconds", "ge"): 0,
    ("Rules", "max_delay_seconds", "le"): 120,
    ("Rules", "online_share", "ge"): 0,
    ("Rules", "online_share", "le"): 100,
    ("BattleDraft", "battlers", "max_length"): 24,
    ("ShowSubmission", "submission", "pattern"): r"^s[0-9]{1,9}$",
    ("HideSubmission", "submission", "pattern"): r"^s[0-9]{1,9}$",
    ("SetAudienceRules", "banned_words", "max_length"): 500,
    ("SetAudienceRules", "banned_words", "pattern"): r"^[^\s*]{1,40}\*?$",
    ("Rules", "banned_words", "max_length"): 500,
    ("Rules", "banned_words", "pattern"): r"^[^\s*]{1,40}\*?$",
}
# Names (60), titles and visions (140), short texts (140) and long texts (2000), wherever they are.
for _model, _fields in {
    "AddBattler": {"name": "Name", "vision": "Title", "affiliation": "ShortText"},
    "EditBattler": {"name": "Name", "vision": "Title", "affiliation": "ShortText"},
    "EditBattle": {"title": "Title", "topic": "ShortText", "scenario": "LongText"},
    "BattlerDraft": {"name": "Name", "vision": "Title", "affiliation": "ShortText"},
    "Battler": {"name": "Name", "vision": "Title", "affiliation": "ShortText"},
    "BattleDraft": {"title": "Title", "topic": "ShortText", "scenario": "LongText"},
    "Battle": {"title": "Title", "topic": "ShortText", "scenario": "LongText"},
}.items():
    for _field, _kind in _fields.items():
        LIMITS[(_model, _field, "max_length")] = {"Name": 60, "Title": 140, "ShortText": 140, "LongText": 2000}[_kind]
        if _kind in ("Name", "Title"):
            LIMITS[(_model, _field, "min_length")] = 1

# A pattern cannot be walked to its edge by a program: its edge cases are written here.
PATTERN_EDGES: dict[str, tuple[list[str], list[str]]] = {
    r"^b[0-9]{1,3}$": (["b0", "b1", "b999"], ["b", "b1000", "B1", "b-1", " b1", "b1 ", "x1", "<b1>"]),
    r"^s[0-9]{1,9}$": (["s0", "s1", "s999999999"], ["s", "s1000000000", "S1", "s-1", " s1", "s1 ", "b1", "<s1>"]),
    # A banned word (battles.wordfilter): 1 to 40 characters but * or space, and one * at the end.
    r"^[^\s*]{1,40}\*?$": (["x", "x" * 40, "x*", "x" * 40 + "*", "æøå*"], ["", "*", "x" * 41, "x**", "a*b", "a b"]),
}
NUMBER_ERRORS = {"ge": "greater_than_equal", "le": "less_than_equal"}


@dataclass(frozen=True)
class Limit:
    model: type[BaseModel]
    field: str
    kind: str  # ge, le, min_length, max_length, pattern
    bound: Any
    text: bool  # the limit is on a string's length (else on a number or a list's items)
    strip: bool  # whitespace around the string is stripped before it is counted

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model.__name__, self.field, self.kind)

    def __str__(self) -> str:
        return f"{self.model.__name__}.{self.field}:{self.kind}={self.bound}"


def _models() -> list[type[BaseModel]]:
    return [
        value
        for module in (commands, model)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
    ]


def _constraints(annotation: Any) -> tuple[Any, list[Any]]:
    """The annotation without ``None``, ``Annotated`` and its metadata, and that metadata."""
    metadata: list[Any] = []
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            metadata += list(annotation.__metadata__)
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in typing.get_args(
            annotation
        ):
            (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        else:
            return annotation, metadata


def _limits_of(cls: type[BaseModel], name: str, field: Any) -> list[Limit]:
    annotation, metadata = _constraints(field.annotation)
    metadata = list(field.metadata) + metadata
    text = annotation is str
    found: list[Limit] = []
    strip = any(isinstance(m, StringConstraints) and m.strip_whitespace for m in metadata)
    for meta in metadata:
        if isinstance(meta, StringConstraints):
            for kind in ("min_length", "max_length", "pattern"):
                if getattr(meta, kind) is not None:
                    found.append(Limit(cls, name, kind, getattr(meta, kind), True, strip))
        for kind in ("ge", "le", "min_length", "max_length"):
            if hasattr(meta, kind) and not isinstance(meta, StringConstraints):
                found.append(Limit(cls, name, kind, getattr(meta, kind), text, strip))
        if isinstance(meta, (annotated_types.Gt, annotated_types.Lt)):
            raise AssertionError(f"{cls.__name__}.{name}: write its bound as ge/le, or teach this test gt/lt")
    if typing.get_origin(annotation) is list:
        _, items = _constraints(typing.get_args(annotation)[0])
        found += [Limit(cls, name, "pattern", m.pattern, True, False) for m in items if getattr(m, "pattern", None)]
    return found


def all_limits() -> list[Limit]:
    return [
        limit for cls in _models() for name, field in cls.model_fields.items() for limit in _limits_of(cls, name, field)
    ]


def example(annotation: Any, field_metadata: tuple[Any, ...] = ()) -> Any:
    """A valid value of ``annotation`` (with a field's own constraints), the smallest there is."""
    annotation, metadata = _constraints(annotation)
    metadata += field_metadata
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin is list:
        fewest = max([getattr(m, "min_length", 0) or 0 for m in metadata] + [0])
        return [example(typing.get_args(annotation)[0])] * fewest
    if origin is dict:
        return {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return example_of(annotation)
    patterns = [m.pattern for m in metadata if getattr(m, "pattern", None)]
    if patterns:
        return PATTERN_EDGES[patterns[0]][0][0]
    if annotation in (str, int, bool):
        return {str: "x", int: 0, bool: False}[annotation]
    raise AssertionError(f"no example for {annotation!r}: teach example() about it")


def example_of(cls: type[BaseModel]) -> dict[str, Any]:
    return {
        name: example(field.annotation, tuple(field.metadata))
        for name, field in cls.model_fields.items()
        if field.is_required()
    }


def _item(limit: Limit) -> Any:
    annotation, _ = _constraints(limit.model.model_fields[limit.field].annotation)
    return example(typing.get_args(annotation)[0])


def edges(limit: Limit) -> tuple[list[Any], list[Any]]:
    """(values at the bound, accepted; values one past it, refused)."""
    bound = limit.bound
    if limit.kind == "pattern":
        accepted, refused = PATTERN_EDGES[bound]
        if limit.text and typing.get_origin(_constraints(limit.model.model_fields[limit.field].annotation)[0]) is list:
            return [[value] for value in accepted], [[value] for value in refused]
        return list(accepted), list(refused)
    if limit.kind in ("ge", "le"):
        return [bound], [bound - 1 if limit.kind == "ge" else bound + 1]
    past = bound - 1 if limit.kind == "min_length" else bound + 1
    if limit.text:
        at = ["x" * bound] + ([" " + "x" * bound + " "] if limit.strip and bound else [])
        over = (["x" * past] if past >= 0 else []) + (
            [" " * (bound + 1)] if limit.strip and limit.kind == "min_length" else []
        )
        return at, over
    return [_items(limit, bound)], ([_items(limit, past)] if past >= 0 else [])


def _items(limit: Limit, count: int) -> list[Any]:
    """``count`` items for a list; distinct where they are text, since a list may drop repeats
    (``Rules.banned_words``): ``b1`` gives ``b10``, ``b11``..., ``x`` gives ``x0``, ``x1``..."""
    item = _item(limit)
    return [f"{item}{i}" for i in range(count)] if isinstance(item, str) else [item] * count


LIMITS_FOUND = all_limits()


def test_the_limits_are_the_promised_ones() -> None:
    found = {limit.key: limit.bound for limit in LIMITS_FOUND}
    assert found == LIMITS, "a limit was added or changed: write it in LIMITS and in the docs"


def test_every_constrained_text_strips_whitespace_but_identifiers() -> None:
    # docs/protocol.md: person-entered text is stripped; ids are matched exactly.
    unstripped = {str(limit) for limit in LIMITS_FOUND if limit.text and not limit.strip and limit.kind != "pattern"}
    assert unstripped == set()


@pytest.mark.parametrize("limit", LIMITS_FOUND, ids=str)
def test_a_value_at_the_bound_is_accepted(limit: Limit) -> None:
    accepted, _ = edges(limit)
    for value in accepted:
        instance = limit.model.model_validate(example_of(limit.model) | {limit.field: value})
        expected = value.strip() if isinstance(value, str) and limit.strip else value
        stored = getattr(instance, limit.field)
        if isinstance(stored, list):
            stored = [
                item.model_dump(exclude_defaults=True) if isinstance(item, BaseModel) else item for item in stored
            ]
        assert stored == expected


@pytest.mark.parametrize("limit", [limit for limit in LIMITS_FOUND if edges(limit)[1]], ids=str)
def test_a_value_one_past_the_bound_is_refused_with_a_clear_error(limit: Limit) -> None:
    _, refused = edges(limit)
    for value in refused:
        with pytest.raises(pydantic.ValidationError) as info:
            limit.model.model_validate(example_of(limit.model) | {limit.field: value})
        (error,) = info.value.errors()
        assert error["loc"][0] == limit.field, error
        if limit.kind == "pattern":
            assert error["type"] == "string_pattern_mismatch" and limit.bound in error["msg"]
        elif limit.kind in NUMBER_ERRORS:
            assert error["type"] == NUMBER_ERRORS[limit.kind] and str(limit.bound) in error["msg"]
        else:
            suffix = "too_short" if limit.kind == "min_length" else "too_long"
            assert error["type"] == ("string_" if limit.text else "") + suffix
            assert str(limit.bound) in error["msg"], error["msg"]


def test_every_model_has_an_example_that_validates() -> None:
    # The cases above start from these: a model they cannot build would test nothing.
    for cls in _models():
        cls.model_validate(example_of(cls))


def test_the_rules_limits_are_the_ones_docs_rules_md_gives() -> None:
    text = (DOCS / "rules.md").read_text()
    for name in model.Rules.model_fields:
        low = LIMITS.get(("Rules", name, "ge"))
        high = LIMITS.get(("Rules", name, "le"))
        if low is None or high is None:
            continue
        row = re.search(rf"^\|[^|]*\| `{name}` \|[^|]*\| ([^|]*)\|$", text, re.MULTILINE)
        assert row is not None, f"docs/rules.md has no row for `{name}`"
        assert row.group(1).startswith(f"{low} to {high}"), f"docs/rules.md gives `{name}` {row.group(1)!r}"


@pytest.mark.parametrize(
    ("message", "limit"),
    [
        ({"type": "extend_timer", "seconds": 600}, None),
        ({"type": "extend_timer", "seconds": 601}, "less_than_equal"),
        ({"type": "void_vote", "reason": "r" * 300}, None),
        ({"type": "void_vote", "reason": "r" * 301}, "string_too_long"),
        ({"type": "confirm_elimination", "battlers": ["b1"] * 10}, None),
        ({"type": "confirm_elimination", "battlers": ["b1"] * 11}, "too_long"),
        ({"type": "edit_battle", "rules": {"final_size": 10}}, None),
        ({"type": "edit_battle", "rules": {"final_size": 11}}, "less_than_equal"),
    ],
)
def test_the_host_socket_applies_the_limits_through_the_command_union(
    message: dict[str, Any], limit: str | None
) -> None:
    # The wire validates through the discriminated union (battles.protocol), not the classes.
    adapter: pydantic.TypeAdapter[commands.Command] = pydantic.TypeAdapter(commands.Command)
    if limit is None:
        assert adapter.validate_python(message).type == message["type"]
    else:
        with pytest.raises(pydantic.ValidationError) as info:
            adapter.validate_python(message)
        assert [error["type"] for error in info.value.errors()] == [limit]


def documented_limits() -> list[tuple[set[str], set[str], str]]:
    """docs/protocol.md's table of what a host types: (fields, where, limit) per row."""
    text = (DOCS / "protocol.md").read_text()
    table = text.split("| field | in | limit |\n| --- | --- | --- |\n", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines():
        fields, where, limit = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((set(re.findall(r"`([a-z_]+)`", fields)), set(re.findall(r"`([^`]+)`", where)), limit))
    return rows


def _where(cls: type[BaseModel]) -> str | None:
    """Where a model's limits are documented: its command's type, or the API that takes it."""
    if cls in (model.BattleDraft, model.BattlerDraft):
        return "POST /api/battles"
    if "type" in cls.model_fields:
        return str(typing.get_args(cls.model_fields["type"].annotation)[0])
    return None  # the stored state: a host never types it


@pytest.mark.parametrize(
    "limit", [limit for limit in LIMITS_FOUND if _where(limit.model) and limit.kind != "pattern"], ids=str
)
def test_every_limit_of_what_a_host_types_is_in_docs_protocol_md(limit: Limit) -> None:
    where = _where(limit.model)
    rows = [text for fields, places, text in documented_limits() if limit.field in fields and where in places]
    assert len(rows) == 1, f"docs/protocol.md's table of limits has {len(rows)} rows for `{limit.field}` in `{where}`"
    (text,) = rows
    if limit.kind in ("ge", "min_length"):
        assert text.startswith(f"{limit.bound} to "), f"`{limit.field}` in `{where}`: {text!r}, not from {limit.bound}"
    else:
        assert re.match(rf"^\d+ to {limit.bound}\b", text), (
            f"`{limit.field}` in `{where}`: {text!r}, not to {limit.bound}"
        )
