"""A new battle, stored under a fresh join code: the codes' alphabet and shape, and
``create_battle`` (for ``POST /api/battles`` and ``battles serve --demo``)."""

from __future__ import annotations

import re
import secrets

from battles import game
from battles.model import Battle, BattleDraft
from battles.rooms import now_ms
from battles.stores.base import Secrets, Store

JOIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a projector
# A join code as new_code makes one, at any join_code_length (4 to 12, settings.py).
CODE_SHAPE = re.compile(f"[{JOIN_ALPHABET}]{{4,12}}")


def new_code(length: int) -> str:
    return "".join(secrets.choice(JOIN_ALPHABET) for _ in range(length))


async def create_battle(store: Store, draft: BattleDraft, code_length: int) -> tuple[Battle, Secrets]:
    """Store a new battle under a fresh join code; returns it as stored, and its tokens."""
    tokens = Secrets.mint()
    for _ in range(20):
        battle = game.create(new_code(code_length), draft, now_ms())
        if await store.create(battle, tokens):
            return battle, tokens
    raise RuntimeError("no free join code after 20 tries: make join_code_length longer")
