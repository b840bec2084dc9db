"""Anomaly flags: what the host console is told of a vote's ballots (docs/security.md,
"Anomaly flags"). They only inform: nothing here refuses, drops or weighs a ballot; the
host may void the vote as always.

Each ballot that puts a device into the count, or moves its choice, leaves marks in the
store (``marks``), shared by every process; the console reads the vote's marks with the
hall as it was when the vote opened (the devices that had joined, by address) and gets the
``flags`` raised. Pure: times, counts and addresses in, flags out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# No person reads a vote and taps, or taps again, within this many milliseconds of the vote
# reaching the phone (or of the phone's page connecting, or of its last tap): a hand takes
# 200 ms to react to a light, and a phone adds its own delivery to that.
HUMAN_MS = 700
# A flag is raised on at least this many ballots, so that the odd late arrival, fast
# thumb or browser without the page mark informs nobody.
LATE_MIN, FAST_MIN, PAGELESS_MIN, ADDRESS_MIN = 10, 5, 10, 10
# Late devices are flagged past this share of the vote's new ballots.
LATE_SHARE = 0.1
# An address is flagged when its share of the vote's ballots is above twice its share of the
# hall (the devices that joined before the vote opened) and this much more: a hall behind
# one address is all of the hall and all of the vote.
ADDRESS_SLACK = 0.05
_PAGE_LABEL = b"future-battles page mark v1"


def page_mark(signing_key: bytes, code: str) -> str:
    """The mark the join page hands its socket (subprotocol ``page.MARK``): a socket that
    offers it came through a page that the server sent, or a copy of one."""
    key = hmac.new(signing_key, _PAGE_LABEL, hashlib.sha256).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(slots=True)
class Trail:
    """What one phone's socket tells of its ballots: where it comes from, whether it loaded
    the page, when its device was first seen in the battle, when the socket entered, and when
    it last sent a ballot that moved the count."""

    address: str
    from_page: bool
    first_seen_ms: int
    entered_ms: int
    last_ballot_ms: int = 0


def marks(trail: Trail, status: str, opened_ms: int, now_ms: int) -> list[str]:
    """The marks of one recorded ballot (its store ``status``); none for one that moved
    nothing. A device new to the count marks ``ballots`` and ``address:A``, and ``late``
    (first seen after the vote opened) and ``pageless`` (its socket never loaded the page)
    as they apply; every ballot that moved the count marks ``fast`` when it came sooner
    than a person taps."""
    if status not in ("counted", "changed"):
        return []
    found = []
    if status == "counted":
        found += ["ballots", f"address:{trail.address}"]
        found += ["late"] if trail.first_seen_ms > opened_ms else []
        found += [] if trail.from_page else ["pageless"]
    if now_ms - max(opened_ms, trail.entered_ms, trail.last_ballot_ms) < HUMAN_MS:
        found.append("fast")
    trail.last_ballot_ms = now_ms
    return found


def flags(noted: Mapping[str, int], hall: Mapping[str, int]) -> dict[str, Any]:
    """The console's view of a vote's marks: ``joined_before`` (the devices that joined
    before the vote opened) and the ``flags`` raised, each with its figures.
    ``noted``: the vote's marks -> count; ``hall``: address -> devices that joined before
    the vote opened."""
    ballots = noted.get("ballots", 0)
    joined = sum(hall.values())
    raised: list[dict[str, Any]] = []
    late = noted.get("late", 0)
    if late >= LATE_MIN and late > LATE_SHARE * ballots:
        raised.append({"flag": "late_devices", "ballots": late})
    if noted.get("fast", 0) >= FAST_MIN:
        raised.append({"flag": "inhuman_pace", "ballots": noted["fast"]})
    if noted.get("pageless", 0) >= PAGELESS_MIN:
        raised.append({"flag": "pageless", "ballots": noted["pageless"]})
    for field, count in sorted(noted.items()):
        address = field.removeprefix("address:")
        if address == field or count < ADDRESS_MIN or not ballots:
            continue
        vote_share, hall_share = count / ballots, (hall.get(address, 0) / joined if joined else 0.0)
        if vote_share > 2 * hall_share + ADDRESS_SLACK:
            raised.append({"flag": "address_share", "ballots": count, "vote_share": round(vote_share, 3),
                           "hall_share": round(hall_share, 3)})  # fmt: skip
    return {"joined_before": joined, "flags": raised}
