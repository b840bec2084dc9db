"""What many test modules share: a battle to create, the steps that bring it to a point.

Real processes (``battles serve``, redis-server, Sentinel) are in ``tests.servers``, the
app in the test process in ``tests.inprocess``, the protocol's clients in
``tests.clients``.
"""

from __future__ import annotations

from typing import Any

from tests.clients import Client

FOUR = [
    {"name": "Asha", "vision": "A floating harbour town"},
    {"name": "Bo", "vision": "Every roof a forest"},
    {"name": "Camille", "vision": "A four-day week"},
    {"name": "Dev", "vision": "Robots lift, people dream"},
]


def with_tokens(created: dict[str, Any]) -> dict[str, Any]:
    """The answer to ``POST /api/battles``, with each secret link's token beside it
    (``host_token``, ``screen_token``, ``cohost_token``)."""
    for role in ("host", "screen", "cohost"):
        created[f"{role}_token"] = created["links"][role].split("#", 1)[1]
    return created


async def to_the_vote(host: Client, challenge: str | None = None) -> str:
    """Start a round, hear every turn, open the vote; returns the vote id."""
    await host.run("start_round", **({"challenge": challenge} if challenge else {}))
    while host.battle["phase"] != "vote":
        await host.run("next")
    await host.run("open_vote")
    return str(host.battle["rounds"][-1]["votes"][-1]["id"])
