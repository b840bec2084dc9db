"""Danish and English for every text a person sees: every text used has a Danish translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from battles import i18n

ROOT = Path(__file__).resolve().parents[1]
# _("...") in templates and in the charts the server draws, t("...") in the page scripts (static/
# and its folders).
USES = {
    "templates": (re.compile(r"""_\(\s*"((?:[^"\\]|\\.)*)"\s*\)"""), "*.html"),
    "src/battles": (re.compile(r"""\b_\(\s*["']((?:[^"'\\]|\\.)*)["']\s*\)"""), "charts.py"),
    "static": (re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]"""), "*.js"),
}


def texts_used() -> set[str]:
    found = set(i18n.REASONS.values()) | set(i18n.OUTCOMES.values())
    for folder, (pattern, glob) in USES.items():
        for path in (ROOT / folder).rglob(glob):
            found |= {text.replace('\\"', '"') for text in pattern.findall(path.read_text())}
    return found


def test_pages_use_texts_at_all() -> None:
    assert len(texts_used()) > len(i18n.REASONS), "the scan found no page texts: has the pattern drifted?"


@pytest.mark.parametrize("text", sorted(texts_used()))
def test_every_text_has_a_danish_translation(text: str) -> None:
    assert i18n.catalog("da").get(text), f"no Danish for {text!r} in locale/da/LC_MESSAGES/battles.po"


def test_the_catalogs_name_the_same_texts() -> None:
    from babel.messages.pofile import read_po

    def ids(language: str) -> set[str]:
        with (ROOT / "src" / "battles" / "locale" / language / "LC_MESSAGES" / "battles.po").open("rb") as po:
            return {str(m.id) for m in read_po(po) if m.id}

    assert ids("da") == ids("en")


def test_refusals_are_translated_with_their_details() -> None:
    assert i18n.refusal_text("da", "pick_from_tied", {"need": 2}) == "Vælg 2 af de battlere, der står lige."
    assert i18n.refusal_text("en", "pick_from_tied", {"need": 2}) == "Pick 2 of the tied battlers."
