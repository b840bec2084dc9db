"""Receipts and digests: a count the hall can check (docs/security.md, "Receipts and digests").

A **receipt** is a keyed MAC over (battle, vote, device): the phone gets it with the
acknowledgement of its ballot, the same one for every change of mind in that vote. Nothing
is stored for it; the server finds it again by computing the receipts of the vote's
ballots, with a key derived from the store's signing key (every process agrees on it,
``battles restore`` brings it back). Without that key a receipt cannot be forged, and it
names no device: it says nothing about who holds it.

A **digest** is a hash over the sorted (receipt, choice) pairs of a closed vote's counted
ballots: any change to the counted set (a ballot added, dropped or moved to another choice)
changes it. The console shows it with the counts before the reveal, the screen at the
reveal and the results page after: the same figure from the same ballots.

Pure: bytes and strings in, strings out; the caller reads the ballots and the key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping, Set
from dataclasses import dataclass, field

# 10 base-32 characters: 50 bits. A vote of 10,000 ballots leaves a guess a chance of
# one in 10^11, and two devices the same receipt one in 10^7 (docs/security.md).
RECEIPT_CHARS = 10
# 16 hex digits: 64 bits of SHA-256, short enough to read aloud and compare by eye.
DIGEST_HEX = 16
_KEY_LABEL = b"future-battles receipts v1"
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_PAIRS = [a + b for a in _BASE32 for b in _BASE32]  # 10 bits -> two characters
# Characters a person may type for the ones base 32 has (it has no 0, 1 or 8).
_TYPED = str.maketrans({"0": "O", "1": "I", "8": "B"})


@functools.lru_cache(maxsize=4)  # one object for every socket admitted under the same key
def receipt_key(signing_key: bytes) -> bytes:
    """The receipts' own key, derived from the store's signing key: a receipt can never
    double as a signed device id, nor the other way round."""
    return hmac.new(signing_key, _KEY_LABEL, hashlib.sha256).digest()


def receipt(key: bytes, code: str, vote_id: str, device: str) -> str:
    """The receipt of ``device``'s ballot in one vote: ``ABCDE-FGHIJ``."""
    mac = hmac.digest(key, f"{code}\n{vote_id}\n{device}".encode(), "sha256")
    # The first 50 bits in base 32 (RFC 4648's alphabet), as base64.b32encode would begin,
    # two characters at a time: that function is written in Python, and took most of the
    # time of counting a vote.
    bits = int.from_bytes(mac[:7]) >> 6
    text = "".join([_PAIRS[(bits >> shift) & 1023] for shift in (40, 30, 20, 10, 0)])
    return f"{text[:5]}-{text[5:]}"


def normalized(typed: str) -> str | None:
    """A receipt as a person typed it (any case, with or without the dash, spaces, 0 for O)
    in its canonical form; None when it cannot be one."""
    letters = "".join(ch for ch in typed.upper().translate(_TYPED) if ch.isalnum())
    if len(letters) != RECEIPT_CHARS or any(ch not in _BASE32 for ch in letters):
        return None
    return f"{letters[:5]}-{letters[5:]}"


def digest(pairs: Mapping[str, str]) -> str:
    """The digest of a counted vote from its receipt -> choice pairs: SHA-256 over the
    lines ``RECEIPT CHOICE``, sorted, each ending in a newline; its first 16 hex digits,
    in groups of four (``3f9a-1c02-77be-0d41``)."""
    text = "".join(f"{r} {choice}\n" for r, choice in sorted(pairs.items()))
    hexed = hashlib.sha256(text.encode()).hexdigest()[:DIGEST_HEX]
    return "-".join(hexed[i : i + 4] for i in range(0, DIGEST_HEX, 4))


@dataclass(frozen=True)
class Count:
    """A closed vote counted from its ballots: the totals, the number of ballots and the
    digest, all from the same rows, and each receipt's choice for the check."""

    totals: dict[str, int]
    ballots: int
    digest: str
    choices: dict[str, str] = field(repr=False)  # receipt -> choice
    online: dict[str, int] = field(default_factory=dict)  # the online part of totals

    @classmethod
    def of(
        cls, key: bytes, code: str, vote_id: str, ballots: Mapping[str, str], online: Set[str] = frozenset()
    ) -> Count:
        """``ballots``: device -> choice, every counted ballot of the vote; ``online``: the
        devices whose ballot is a remote one (docs/rules.md, "Hall and online")."""
        choices = {receipt(key, code, vote_id, device): choice for device, choice in ballots.items()}
        totals: dict[str, int] = {}
        remote: dict[str, int] = {}
        for device, choice in ballots.items():
            totals[choice] = totals.get(choice, 0) + 1
            if device in online:
                remote[choice] = remote.get(choice, 0) + 1
        return cls(totals, len(ballots), digest(choices), choices, remote)
