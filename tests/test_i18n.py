"""Danish and English for every text a person sees: every text used has a Danish translation."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from battles import i18n, protocol
from battles.model import Actor, Language, Moderation, Phase, Reaction

ROOT = Path(__file__).resolve().parents[1]
# _("...") in templates and in the charts the server draws, t("...") in the page scripts (static/
# and its folders).
USES = {
    "templates": (re.compile(r"""_\(\s*"((?:[^"\\]|\\.)*)"\s*\)"""), "*.html"),
    "src/battles": (re.compile(r"""\b_\(\s*["']((?:[^"'\\]|\\.)*)["']\s*\)"""), "charts.py"),
    "static": (re.compile(r"""\bt\(\s*"((?:[^"\\]|\\.)*)"\s*[,)]"""), "*.js"),
}


# plural(n, "1 ...", "{n} ...") in the page scripts, plural(_, n, "1 ...", "{n} ...") in charts.py.
PLURAL = re.compile(r"""\bplural\([^"']*?["']((?:[^"'\\]|\\.)*)["']\s*,\s*["']((?:[^"'\\]|\\.)*)["']""")


def texts_used() -> set[str]:
    found = set(i18n.REASONS.values()) | set(i18n.OUTCOMES.values())
    found |= set(i18n.PHASE_LABELS.values()) | set(i18n.ROLE_LABELS.values())
    for folder, (pattern, glob) in USES.items():
        for path in (ROOT / folder).rglob(glob):
            source = path.read_text()
            texts = [*pattern.findall(source), *itertools.chain.from_iterable(PLURAL.findall(source))]
            found |= {text.replace('\\"', '"') for text in texts}
    return found


def test_the_scan_finds_both_texts_of_a_plural() -> None:
    assert {"1 ballot", "{n} ballots", "1 battler", "{n} battlers"} <= texts_used()


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


def test_the_server_names_the_phases_as_the_pages_do() -> None:
    """A refusal's phase (i18n.PHASE_LABELS) and the phase on every page (static/client/
    battle.js PHASES) are the same words."""
    source = (ROOT / "static" / "client" / "battle.js").read_text()
    table = re.search(r"const PHASES = \{(.*?)\};", source, re.S)
    assert table, "no PHASES in static/client/battle.js"
    assert dict(re.findall(r'(\w+): "([^"]+)"', table.group(1))) == i18n.PHASE_LABELS


# --- no translated text filled with a code -------------------------------------------------

# Every code a person could meet inside a text: the phases, roles and actors, reactions,
# moderation decisions, host commands and client messages.
CODES = frozenset(
    (
        *get_args(Phase),
        *protocol.ROLES,
        *get_args(Actor),
        *get_args(Reaction),
        *get_args(Moderation),
        *protocol.HOST_COMMANDS,
        *protocol.CLIENT_MESSAGES,
    )
)
# Codes that Danish says with the same word ("battler" is a battler in both languages): a
# Danish sentence that names one is not filled with a code.
SAID_ALIKE = frozenset(
    code for code in protocol.ROLES if i18n.catalog("da").get(i18n.ROLE_LABELS[code], "").lower() == code
)
# What each param of a refusal holds, as the code that raises it fills it in.
PARAM_VALUES: dict[str, tuple[Any, ...]] = {
    "phase": get_args(Phase),
    "role": (*protocol.ROLES, *get_args(Actor)),
    "limit": ("lobby_edits", "decisions", "waiting", "waiting_per_device", "vision_versions"),
    "most": (1, 40),
    "need": (1, 2),
    "version": (17,),
    "wait_ms": (1200,),
    "seconds": (15,),
    "detail": ("battlers: too long",),
}
RAISED = re.compile(r"""Refused\(\s*"(\w+)"((?:\s*,\s*\w+=[^,)]+(?:\([^)]*\))?)*)\s*\)""")


def raised_refusals() -> dict[str, set[str]]:
    """Every refusal the server raises, with the names of the params it fills in."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "src" / "battles").rglob("*.py"):
        for reason, params in RAISED.findall(path.read_text()):
            found.setdefault(reason, set()).update(re.findall(r"(\w+)=", params))
    return found


def test_the_scan_finds_the_refusals_with_params() -> None:
    raised = raised_refusals()
    assert raised["wrong_phase"] == {"phase"} and raised["not_allowed"] == {"role"}, raised
    assert set(raised) <= set(i18n.REASONS), set(raised) - set(i18n.REASONS)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
@pytest.mark.parametrize("reason", sorted(i18n.REASONS))
def test_no_refusal_is_filled_with_a_code(language: Language, reason: str) -> None:
    """A refusal says a phase or a role in words ("i denne fase (Afstemning)"), never the code
    ("i denne fase (vote)"): the code stays in params for a program (docs/protocol.md, error)."""
    names = sorted(raised_refusals().get(reason, set()))
    assert set(names) <= set(PARAM_VALUES), f"say in PARAM_VALUES what {set(names) - set(PARAM_VALUES)} hold"
    for values in itertools.product(*(PARAM_VALUES[name] for name in names)):
        text = i18n.refusal_text(language, reason, dict(zip(names, values, strict=True)))
        words = set(re.findall(r"[\w-]+", text))
        # In English a code can be a word of the sentence ("vote"), so there only the codes
        # filled in are looked for; no Danish sentence has an English code in it.
        codes = CODES - SAID_ALIKE if language == "da" else {value for value in values if isinstance(value, str)}
        assert not codes & words, text


# --- one Danish word for each concept ---------------------------------------------------------

# An English word of a msgid -> the Danish its translation must use for it (a turn is an
# "indlæg" everywhere, the screen's charts too), and Danish words that must not appear:
# "udskillelse" first reads as a secretion, "vis" is for showing, not for revealing.
TERMS = {
    r"\bturns?\b": "indlæg",
    r"\breveal(s|ed|ing)?\b": "afslør",
    r"\baudience\b": "publikum",
    r"\bper\b": "pr.",
    r"\belimination\b": "eliminering",
}
NOT_DANISH = r"\b(udskil\w*|tur|ture|per)\b"


@pytest.mark.parametrize("english", sorted(TERMS))
def test_one_danish_word_for_each_concept(english: str) -> None:
    wrong = {
        msgid: text
        for msgid, text in i18n.catalog("da").items()
        if re.search(english, re.sub(r"\{\w+\}", "", msgid), re.I) and TERMS[english] not in text.lower()
    }
    assert not wrong, f"say {TERMS[english]!r} for {english!r}"


def test_no_danish_text_uses_a_word_kept_out() -> None:
    wrong = {msgid: text for msgid, text in i18n.catalog("da").items() if re.search(NOT_DANISH, text, re.I)}
    assert not wrong
