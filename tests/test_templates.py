"""The pages' forms agree with the model they fill in.

``templates/battle_fields.html`` (the setup page and the host console's lobby editor)
writes each rule's default, bounds and choices into its inputs, so that a browser
checks them before the server does. They are written by hand; these tests hold them
to ``model.Rules`` and ``model.BattleDraft``, so a default or a limit changed in one
place and not the other fails here instead of on a host's evening.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import jinja2
import pytest
from pydantic.fields import FieldInfo

from battles.model import BattleDraft, Rules

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


class Form(HTMLParser):
    """The form controls of a page: each input, select (with its options) and textarea."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, Any]] = []
        self._select: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("input", "textarea"):
            self.controls.append({"tag": tag, **attributes})
        elif tag == "select":
            self._select = {"tag": tag, **attributes, "options": []}
            self.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._select["options"].append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


@pytest.fixture(scope="module")
def controls() -> list[dict[str, Any]]:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = environment.get_template("battle_fields.html").render(_=lambda text: text, prefix="", lang="en", static="")
    form = Form()
    form.feed(html)
    return form.controls


def named(controls: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [control for control in controls if control.get("name") == name]


def bound(field: FieldInfo, kind: str) -> Any:
    """A field's ``ge``, ``le`` or ``max_length``, from its annotated constraints."""
    found = [getattr(item, kind) for item in field.metadata if getattr(item, kind, None) is not None]
    assert len(found) == 1, f"{field} has no single {kind}"
    return found[0]


def test_every_rule_has_a_field_in_the_form(controls: list[dict[str, Any]]) -> None:
    names = {control.get("name") for control in controls}
    assert set(Rules.model_fields) <= names, f"rules with no field: {set(Rules.model_fields) - names}"


@pytest.mark.parametrize("name", [n for n, f in Rules.model_fields.items() if f.annotation is int])
def test_a_number_field_carries_the_rule_s_default_and_bounds(controls: list[dict[str, Any]], name: str) -> None:
    field = Rules.model_fields[name]
    (control,) = named(controls, name)
    assert control["type"] == "number"
    assert (int(control["value"]), int(control["min"]), int(control["max"])) == (
        field.default,
        bound(field, "ge"),
        bound(field, "le"),
    )


def is_choice(annotation: Any) -> bool:
    """A ``Literal`` or a list of one (``reactions``)."""
    if get_origin(annotation) is list:
        return is_choice(get_args(annotation)[0])
    return get_origin(annotation) is Literal


@pytest.mark.parametrize("name", [n for n, f in Rules.model_fields.items() if is_choice(f.annotation)])
def test_a_choice_field_offers_the_rule_s_choices_with_its_default_selected(
    controls: list[dict[str, Any]], name: str
) -> None:
    field = Rules.model_fields[name]
    if name == "reactions":
        boxes = named(controls, name)
        assert [box["value"] for box in boxes] == list(get_args(get_args(field.annotation)[0]))
        assert [box["value"] for box in boxes if "checked" in box] == field.get_default(call_default_factory=True)
        return
    (select,) = named(controls, name)
    assert [option["value"] for option in select["options"]] == list(get_args(field.annotation))
    assert [option["value"] for option in select["options"] if "selected" in option] == [field.default]


@pytest.mark.parametrize("name", [n for n, f in Rules.model_fields.items() if f.annotation is bool])
def test_a_yes_or_no_box_starts_as_the_rule_s_default(controls: list[dict[str, Any]], name: str) -> None:
    (box,) = named(controls, name)
    assert box["type"] == "checkbox"
    assert ("checked" in box) is Rules.model_fields[name].default


@pytest.mark.parametrize("name", ["title", "topic", "scenario"])
def test_a_text_field_is_as_long_as_the_draft_allows(controls: list[dict[str, Any]], name: str) -> None:
    (control,) = named(controls, name)
    assert int(control["maxlength"]) == bound(BattleDraft.model_fields[name], "max_length")
    assert ("required" in control) == BattleDraft.model_fields[name].is_required()


def test_the_language_field_offers_the_draft_s_languages(controls: list[dict[str, Any]]) -> None:
    (select,) = named(controls, "language")
    assert [option["value"] for option in select["options"]] == list(
        get_args(BattleDraft.model_fields["language"].annotation)
    )
