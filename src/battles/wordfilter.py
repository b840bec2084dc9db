"""The word filter: which submissions from phones wait apart for a moderator.

Pure functions, no I/O but reading the default lists shipped with the package
(``battles/words/da.txt`` and ``en.txt``). docs/rules.md, "The word filter", is the
contract:

- a banned word matches a whole word of the text, never a part of one ("ass" does not
  hold back "class"); a trailing ``*`` also matches longer words starting with it;
- case does not matter, and neither do simple disguises: punctuation inside a word
  ("f.u.c.k", "sh_it"), repeated letters ("fuuuck"), common look-alike digits and signs
  ("sh1t", "@ss", "$hit"), accents ("fück", "shït"), full-width letters, or a word spelled
  out letter by letter ("f u c k");
- æ, ø and å are letters of their own, as in Danish, never an accented a or o: "høre"
  (hear) is not "hore", and "år" is not "ar".

The filter only decides where a submission waits: nothing is shown on the screen that a
moderator did not approve, held or not.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from importlib.resources import files
from typing import Annotated

from pydantic import StringConstraints

# One word (no white space), at most 40 characters, optionally ending in *.
BannedWord = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[^\s*]{1,40}\*?$")]

LISTS = ("da", "en")

# Characters that stand in for letters; mapped in both the text and the banned words.
_LOOK_ALIKES = str.maketrans({"@": "a", "$": "s", "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t"})
# What may sit inside a disguised word: anything that is not a letter or a digit.
_FILLER = r"[\W_]*"
# What is cut from a word's ends before it is compared; @ and $ stand for letters.
_EDGES = re.compile(r"^[^\w@$]+|[^\w@$]+$")


@cache
def default_words() -> list[str]:
    """The shipped Danish and English lists, in that order (a new battle's default)."""
    words: list[str] = []
    for language in LISTS:
        text = files("battles").joinpath(f"words/{language}.txt").read_text(encoding="utf-8")
        words += [line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(dict.fromkeys(words))


# Letters kept as they are when accents are taken off: Danish letters, not an a or an o
# with a mark (æ and ø have no decomposition anyway; å is a with a ring above).
_OWN_LETTERS = frozenset("åÅ")


@lru_cache(maxsize=4096)
def _unaccented(char: str) -> str:
    """``char`` without its accents ("ü" -> "u", a lone combining mark -> ""), except
    the letters that are letters of their own (``_OWN_LETTERS``)."""
    if char in _OWN_LETTERS:
        return char
    return "".join(part for part in unicodedata.normalize("NFD", char) if not unicodedata.combining(part))


def _normal(text: str) -> str:
    # NFKC first: "a" followed by a combining ring becomes "å", which then stays.
    composed = unicodedata.normalize("NFKC", text).casefold()
    return "".join(_unaccented(char) for char in composed).translate(_LOOK_ALIKES)


@lru_cache(maxsize=64)
def _patterns(words: tuple[str, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    compiled = []
    for word in words:
        prefix = word.endswith("*")
        letters = _normal(word.rstrip("*"))
        # Each letter may repeat, and filler may sit between two letters.
        body = _FILLER.join(f"{re.escape(letter)}+" for letter in letters)
        compiled.append((word, re.compile(body + (r".*" if prefix else ""), re.DOTALL)))
    return tuple(compiled)


def _words_of(text: str) -> list[str]:
    """The words of ``text`` as they are compared: normalised, their edges trimmed, and
    a run of single letters ("f u c k") joined into one word as well."""
    pieces = [_EDGES.sub("", piece) for piece in _normal(text).split()]
    pieces = [piece for piece in pieces if piece]
    words = list(pieces)
    run: list[str] = []
    for piece in [*pieces, ""]:
        if len(piece) == 1:
            run.append(piece)
            continue
        if len(run) > 1:
            words.append("".join(run))
        run = []
    return words


def banned_word_in(text: str, banned: list[str]) -> str | None:
    """The first banned word (as the list spells it) that ``text`` contains, or None."""
    patterns = _patterns(tuple(banned))
    for word in _words_of(text):
        for spelled, pattern in patterns:
            if pattern.fullmatch(word):
                return spelled
    return None
