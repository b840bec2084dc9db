"""The docs hold every message and every setting (after datasette's tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from battles import game, protocol
from battles.i18n import REASONS
from battles.model import Rules
from battles.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def headings(page: str) -> set[str]:
    return set(re.findall(r"^#{2,5} `([a-z_]+)`$", (DOCS / page).read_text(), re.MULTILINE))


@pytest.mark.parametrize("message", protocol.CLIENT_MESSAGES + protocol.SERVER_MESSAGES)
def test_every_message_type_has_a_section_with_an_example(message: str) -> None:
    text = (DOCS / "protocol.md").read_text()
    assert message in headings("protocol.md"), f"docs/protocol.md has no heading for `{message}`"
    section = text.split(f"`{message}`\n", 1)[1].split("\n#", 1)[0]
    assert f'"type": "{message}"' in section, f"the `{message}` section has no JSON example"


def test_every_refusal_reason_is_listed() -> None:
    text = (DOCS / "protocol.md").read_text()
    missing = [reason for reason in REASONS if f"`{reason}`" not in text]
    assert not missing, f"docs/protocol.md does not list: {missing}"


@pytest.mark.parametrize("setting", sorted(Settings.model_fields))
def test_every_setting_is_documented(setting: str) -> None:
    assert f"| `{setting}` |" in (DOCS / "settings.md").read_text()


@pytest.mark.parametrize("rule", sorted(Rules.model_fields))
def test_every_rule_is_mapped_in_rules_md(rule: str) -> None:
    assert f"`{rule}`" in (DOCS / "rules.md").read_text()


@pytest.mark.parametrize("bound", sorted(name for name in vars(game) if name.startswith("MAX_")))
def test_every_bound_of_a_battle_is_listed_with_its_value(bound: str) -> None:
    text = (DOCS / "security.md").read_text()
    assert f"| `{bound}` | {getattr(game, bound)} |" in text, f"docs/security.md does not list {bound} = {getattr(game, bound)}"
