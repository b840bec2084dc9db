"""Who is let into a battle's websocket, as whom, and how many at a time.

``admit`` decides a handshake before anything is set up (docs/protocol.md,
Connecting): it answers an ``Admission`` (the role the socket joins as, and for a
phone its device id) or a ``Refusal`` (the HTTP status and text the handshake gets).
Every check that needs the battle is here, in this order:

- a role the protocol does not know, or a code that names no battle: 404 (counted
  against the address as any guessed code: ``ratelimit.lookup_missed``);
- host, co-host and screen: the token the socket offers must be the role's, compared
  in constant time (``security.same_secret``); the host's link is /host/CODE#TOKEN
  for the co-host too, so the host endpoint knows a co-host by its token; else 401;
- a battler's own link: the token must be the current one of one of the battlers
  (``security.battler_token``), which names the battler; else 401;
- a phone: the signed device id it offers, or a new one under the address's budget
  of new devices (``mints_per_minute``); past the budget, 429 with Retry-After;
- the store away while any of this is read: 503, which the page retries by itself:
  it says "later", not "no such battle".

The checks that need no battle come first, in ``battles.sockets``: the Origin (403),
the Host (400) and the address's failed lookups (429) (docs/architecture.md, "Who may
connect").

A hall that joins at once is then let in a few at a time (``battles.sockets``, the
``join_concurrency`` setting). When a server process restarts, every phone it held
reconnects within a second or two, all to the processes left. Each join is a handful
of store reads and a snapshot to build. Taken all at once, thousands of joins share the
event loop: each one crawls, store replies sit unread past the store's timeout, joins
fail with an error and are retried, and the hall takes a minute to come back while the
phones already in the room wait for their updates too (measured: docs/performance.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import cast

from starlette.types import Scope, Send

from battles.anomalies import page_mark
from battles.errors import Unavailable
from battles.model import Battle, Language
from battles.protocol import REMOTE, ROLES, Role
from battles.ratelimit import client_address
from battles.receipts import receipt_key
from battles.security import (
    AUTH_PREFIX,
    DEVICE_PREFIX,
    PAGE_PREFIX,
    DeviceIds,
    battler_token,
    current_secrets,
    offered,
    refuse_handshake,
    same_secret,
)
from battles.stores.base import AddressLimits, Secrets, Store


@dataclass(frozen=True)
class Admission:
    """A socket let in: as whom, to which battle, and what of the battle it keeps.

    Only these few fields outlive the handshake: the socket's frame lives as long as
    the socket, and a whole ``Battle`` kept there was 8 KB per socket, a fifth of what
    a phone costs the server (docs/performance.md).
    """

    role: Role
    code: str
    language: Language
    # The co-host generation the socket is admitted under (``revoke_cohost`` ends it).
    cohost_generation: int
    # A phone's device id, and its signed form when the device is new (the welcome
    # hands it over for the phone to keep).
    device: str | None = None
    new_device: str | None = None
    # What a phone's ballot receipts are made with (battles.receipts), from the same key.
    receipt_key: bytes | None = None
    # Whether a phone's socket offered the join page's mark (battles.anomalies.page_mark).
    from_page: bool = False
    # A phone of the stream's audience (protocol.REMOTE offered; the remote link is on).
    remote: bool = False
    # A battler's own link: whose, and the link generation it is admitted under
    # (``revoke_battler`` ends it).
    battler: str | None = None
    battler_generation: int = 0


@dataclass(frozen=True)
class Refusal:
    """A handshake refused with an HTTP status, before anything is set up."""

    status: int
    text: str
    retry_after_s: float = 0.0

    async def send(self, scope: Scope, send: Send) -> None:
        headers = [(b"retry-after", str(math.ceil(self.retry_after_s)).encode())] if self.retry_after_s > 0 else []
        await refuse_handshake(scope, send, self.status, self.text, headers)


NO_BATTLE = Refusal(404, "no battle has that code")
NO_TOKEN = Refusal(401, "a valid token is required")
REMOTE_OFF = Refusal(403, "the remote link of this battle is off")
# Asked again in 5 s: a page away says so too (battles.pages.store_away).
STORE_AWAY = Refusal(503, "the store is unreachable", retry_after_s=5)


async def admit(store: Store, mints: AddressLimits, scope: Scope, role: str, code: str) -> Admission | Refusal:
    """Let a websocket handshake for ``/ws/ROLE/CODE`` in, or refuse it (see the module's
    docstring for the checks). Reads the store; changes nothing but, for a new phone,
    the address's budget of new devices."""
    if role not in ROLES:
        return NO_BATTLE
    try:
        tokens = await store.secrets(code)
        battle = await store.load(code) if tokens is not None else None
        if tokens is None or battle is None:
            return NO_BATTLE
        if role == "audience":
            return await _admit_phone(store, mints, scope, code, battle)
        if role == "battler":
            return _admit_battler(scope, code, battle, tokens)
        return _admit_by_token(scope, cast(Role, role), code, battle, tokens)
    except Unavailable:
        return STORE_AWAY


def _admit_by_token(scope: Scope, role: Role, code: str, battle: Battle, tokens: Secrets) -> Admission | Refusal:
    given = offered(scope, AUTH_PREFIX)
    valid = current_secrets(tokens, battle.cohost_generation)
    # The co-host's link is /host/CODE#TOKEN too: the host endpoint knows a co-host by its token.
    if role == "host" and not same_secret(given, valid.host) and same_secret(given, valid.cohost):
        role = "cohost"
    if not same_secret(given, getattr(valid, role)):
        return NO_TOKEN
    return Admission(role, code, battle.language, battle.cohost_generation)


def _admit_battler(scope: Scope, code: str, battle: Battle, tokens: Secrets) -> Admission | Refusal:
    given = offered(scope, AUTH_PREFIX)
    for battler in battle.battlers:
        if same_secret(given, battler_token(tokens, battler.id, battler.link_generation)):
            return Admission(
                "battler", code, battle.language, battle.cohost_generation,
                battler=battler.id, battler_generation=battler.link_generation,
            )  # fmt: skip
    return NO_TOKEN


async def _admit_phone(
    store: Store, mints: AddressLimits, scope: Scope, code: str, battle: Battle
) -> Admission | Refusal:
    # Read per connection: every process signs with the store's current key.
    signing_key = await store.signing_key()
    device_ids, receipts_with = DeviceIds(signing_key), receipt_key(signing_key)
    from_page = same_secret(offered(scope, PAGE_PREFIX), page_mark(signing_key, code))
    remote = REMOTE in scope.get("subprotocols", [])
    if remote and not battle.rules.remote:
        return REMOTE_OFF
    phone = functools.partial(Admission, "audience", code, battle.language, battle.cohost_generation)
    device = device_ids.verify(offered(scope, DEVICE_PREFIX))
    if device is not None:
        return phone(device, None, receipts_with, from_page, remote=remote)
    wait = await mints.take(client_address(scope))
    if wait > 0:
        return Refusal(429, "too many new devices", retry_after_s=wait)
    device, signed = device_ids.mint()
    return phone(device, signed, receipts_with, from_page, remote=remote)
