"""The word filter (docs/rules.md, "The word filter"): whole words, disguises seen through."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from battles.model import Rules, SubmissionText, plain_text
from battles.wordfilter import banned_word_in, default_words

WORDS = default_words()


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("What the fuck", "fuck*"),
        ("FUCKING hell", "fuck*"),
        ("f.u.c.k this", "fuck*"),
        ("fuuuuuck", "fuck*"),
        ("sh1t!", "shit"),
        ("$hit happens", "shit"),
        ("f u c k you", "fuck*"),
        ("ｆｕｃｋ", "fuck*"),
        ("Du er en LUDER!", "luder*"),
        ("sikke noget l-o-r-t", "lort*"),
        ("pik", "pik"),
        ('"Kælling"', "kælling*"),
    ],
)
def test_banned_words_are_found_through_case_and_simple_disguises(text: str, word: str) -> None:
    assert banned_word_in(text, WORDS) == word


@pytest.mark.parametrize(
    "text",
    [
        "Should every class assess the grass?",
        "Scunthorpe and Penistone",
        "En pikant sag om skideballer",
        "A cocktail in the cockpit, said Dickens",
        "Dick and the cock crowed at the Mongol steppe",
        "Hvad med de lokale skoler?",
        "shiitake for everyone",
    ],
)
def test_innocent_words_that_contain_a_banned_one_are_not_held(text: str) -> None:
    assert banned_word_in(text, WORDS) is None


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("What the fück", "fuck*"),
        ("Shït happens", "shit"),
        ("F\u0301U\u0308C\u030cK", "fuck*"),  # combining marks typed after the letters
        ("bàstárd", "bastard*"),
        ("Du er en lüder", "luder*"),
        ("Sikke noget lórt", "lort*"),
        ("f̸u̸c̸k̸", "fuck*"),  # a mark struck through every letter
    ],
)
def test_accents_are_taken_off_before_comparing(text: str, word: str) -> None:
    assert banned_word_in(text, WORDS) == word


@pytest.mark.parametrize(
    "text",
    [
        "Jeg vil gerne høre om dikerne",  # høre (hear) is not hore
        "Hvem hører efter, når det regner?",
        "HØRER I MIG?",
        "Hvad koster det om ti år, og hvert års drift?",
        "Vil I høre\u0301 mere?",
        "Kan man se det fra Nørrebro?",
    ],
)
def test_danish_letters_are_letters_of_their_own_not_accented_ones(text: str) -> None:
    assert banned_word_in(text, WORDS) is None


def test_a_with_a_ring_stays_a_letter_of_its_own_however_it_was_typed() -> None:
    # "å" typed as one character or as "a" and a combining ring above is the same letter.
    assert banned_word_in("baaar", ["bar"]) == "bar"
    assert banned_word_in("bår", ["bar"]) is None
    assert banned_word_in("ba\u030ar", ["bar"]) is None
    assert banned_word_in("ba\u030ar", ["bår"]) == "bår"
    assert banned_word_in("BÅR", ["bår"]) == "bår"
    # A word on the list is read the same way: an accented one matches with or without.
    assert banned_word_in("cafe", ["café*"]) == "café*"
    assert banned_word_in("Café-kultur", ["cafe*"]) == "cafe*"


def test_a_battles_own_list_decides_and_a_prefix_needs_its_star() -> None:
    assert banned_word_in("Brexit is a disaster", ["brexit"]) == "brexit"
    assert banned_word_in("brexiteers", ["brexit"]) is None
    assert banned_word_in("brexiteers", ["brexit*"]) == "brexit*"
    assert banned_word_in("anything at all", []) is None


def test_a_new_battle_gets_the_shipped_danish_and_english_lists() -> None:
    rules = Rules()
    assert "lort*" in rules.banned_words and "fuck*" in rules.banned_words
    assert Rules(banned_words=[" Brexit* ", "brexit*"]).banned_words == ["brexit*"]
    for bad in (["two words"], ["*"], ["x" * 41], ["a**"]):
        with pytest.raises(ValidationError):
            Rules(banned_words=bad)


def test_submitted_text_loses_invisible_characters_and_keeps_markup_as_typed() -> None:
    assert plain_text("  Hello\n\tthere\u200b\u202e! ") == "Hello there!"
    text = TypeAdapter(SubmissionText)
    assert text.validate_python("<b>bold</b> & co") == "<b>bold</b> & co"
    with pytest.raises(ValidationError):
        text.validate_python("\u200b \n")  # nothing left
    with pytest.raises(ValidationError):
        text.validate_python("x" * 201)
