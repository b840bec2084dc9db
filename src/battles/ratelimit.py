"""Rate limits: how fast one socket may send, and how often one client address may
mint device ids, create battles or ask for join codes that do not exist.

Every limit is a token bucket: ``burst`` tokens, refilled at a steady rate, one
token per message or attempt. There are four:

- **Messages per socket** (``message_rate``, ``message_burst``, ``message_flood``):
  checked for every frame in ``sockets.py`` before the frame is parsed. A frame past the
  limit is dropped with an ``error`` (``rate_limited``). Dropped frames still cost a
  token, so a client that keeps sending goes into debt; ``message_flood`` frames past
  the limit close the socket with 1008. A client that slows down when told recovers.
- **Device ids minted per address** (``mints_per_minute``, ``mint_burst``): an
  audience handshake without a valid signed device id mints a new one; past the limit
  the handshake is refused with HTTP 429. A phone that reconnects offers the id it
  has and mints nothing, so a whole hall coming back after a Wi-Fi drop costs nothing.
- **Battles created per address** (``creates_per_minute``, ``create_burst``): past
  the limit ``POST /api/battles`` is answered 429, whether or not ``create_token``
  is set, so a script cannot fill the store with battles.
- **Failed lookups per address** (``lookup_failures_per_minute``,
  ``lookup_failure_burst``): ``LookupGuard`` wraps the app and counts every 404 on a
  path that names a join code (pages, API, websocket handshakes). While an address
  has no token left, every such request from it gets HTTP 429, whether the code
  exists or not, so the answer tells a script nothing.

A client address is the peer's IP address (its /64 network for IPv6, where one
device may hold a whole /64). Behind a reverse proxy it is the proxy's, unless the
proxy is trusted to say who the client is (``forwarded_allow_ips``). A venue's NAT
shows a whole hall as one address, which is why the per-address defaults allow
hundreds of new phones a minute: they stop scripts, not halls.

Where the per-address buckets live (``address_limits``): on the Redis store, in Redis,
so every process and machine spends from one budget per address (an atomic script per
step, ``stores.redis._TAKE_TOKEN``, batched with the store's other commands; its cost
is measured by ``python -m bench.limits``, docs/performance.md). A bucket's key expires
when the bucket would be full again, so Redis holds only the addresses seen within the
last ``burst / rate`` (2 minutes with the defaults). On the embedded store one process
serves everything and the buckets live in its memory, in one LRU map per limit: an
address whose bucket has refilled is forgotten (a full bucket is the same as none), and
the map never holds more than ``rate_limit_addresses`` entries (about 200 bytes each:
10,000 entries, about 2 MB); past that the least recently seen address is forgotten first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Literal

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from battles import i18n
from battles.errors import Unavailable
from battles.stores.base import AddressLimits, Store

Verdict = Literal["ok", "limited", "flood"]


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second up to ``burst``."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.updated = float(burst), now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def take(self, now: float) -> bool:
        self.refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def seconds_to_next(self, now: float) -> float:
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class MessageLimiter:
    """The frames of one socket: ``ok``, ``limited`` (drop it and say so) or ``flood``
    (close the socket). See the module docstring."""

    __slots__ = ("burst", "flood", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int, flood: int, now: float) -> None:
        self.rate, self.burst, self.flood = rate, burst, flood
        self.tokens, self.updated = float(burst), now

    def check(self, now: float) -> Verdict:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        # A dropped frame costs a token too: ignoring the notice only digs deeper.
        self.tokens -= 1
        if self.tokens >= 0:
            return "ok"
        return "flood" if self.tokens < -self.flood else "limited"


class AddressLimiter:
    """One token bucket per client address, in a bounded LRU map in this process's
    memory (see the module docstring). An ``AddressLimits``."""

    def __init__(self, per_minute: float, burst: int, max_addresses: int) -> None:
        self.rate, self.burst, self.max_addresses = per_minute / 60, burst, max_addresses
        # The time after which an untouched bucket is full again, and may be forgotten.
        self.forget_after = burst / self.rate
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _expire(self, now: float) -> None:
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated < self.forget_after and len(self._buckets) <= self.max_addresses:
                break
            self._buckets.popitem(last=False)

    def _bucket(self, address: str, now: float) -> TokenBucket:
        self._expire(now)
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = TokenBucket(self.rate, self.burst, now)
            self._expire(now)  # keep to max_addresses
        else:
            self._buckets.move_to_end(address)
        return bucket

    def check(self, address: str, spend: bool = True, now: float | None = None) -> float:
        """0.0 when the address has a token (spent when ``spend``), else the seconds
        until it has one; no debt."""
        now = time.monotonic() if now is None else now
        if not spend:
            self._expire(now)
            bucket = self._buckets.get(address)
            return 0.0 if bucket is None else bucket.seconds_to_next(now)
        bucket = self._bucket(address, now)
        return 0.0 if bucket.take(now) else bucket.seconds_to_next(now)

    async def take(self, address: str, spend: bool = True) -> float:
        return self.check(address, spend)


def address_limits(store: Store, name: str, per_minute: float, burst: int, max_addresses: int) -> AddressLimits:
    """A per-address budget: shared through the store by every process where the store
    has several (Redis), else in this process's memory (see the module docstring)."""
    return store.shared_limits(name, per_minute, burst) or AddressLimiter(per_minute, burst, max_addresses)


def client_address(scope: Scope) -> str:
    """Who is asking, as the limits count it: the IP address, or its /64 for IPv6.

    ``scope["client"]`` is the peer, or what a trusted proxy said the client is
    (uvicorn's proxy headers, ``forwarded_allow_ips``).
    """
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def code_paths(routes: Iterable[BaseRoute]) -> list[re.Pattern[str]]:
    """The paths of the routes that name a join code (a ``{code}``): pages, QR codes, the API."""
    return [route.path_regex for route in routes if isinstance(route, Route) and "code" in route.param_convertors]


def too_many() -> str:
    """The 429 text, in both languages: the person's language is not known here."""
    return " / ".join(i18n.refusal_text(lang, "rate_limited", {}) for lang in ("en", "da"))


async def lookup_wait(limiter: AddressLimits, scope: Scope) -> float:
    """How long the client must wait before it may name a code again: 0 while it has
    failed lookups left. While the store cannot be reached, lookups are let through:
    they can find no battle then anyway, and a 503 is answered where one is needed."""
    with contextlib.suppress(Unavailable):
        return await limiter.take(client_address(scope), spend=False)
    return 0.0


async def lookup_missed(limiter: AddressLimits, scope: Scope) -> None:
    """One more failed lookup (a 404 on a path that names a code) for the client."""
    with contextlib.suppress(Unavailable):
        await limiter.take(client_address(scope))


class LookupGuard:
    """Counts 404s on paths that name a join code per client address, and answers
    429 to an address that used up its ``lookup_failure`` budget (see the module
    docstring). A wrapper around the app for HTTP, so no handler needs to know; a
    websocket's handshake asks ``lookup_wait`` and tells ``lookup_missed`` itself
    (battles.sockets), outside the wrappers."""

    def __init__(self, app: ASGIApp, limiter: AddressLimits, paths: list[re.Pattern[str]]) -> None:
        self.app, self.limiter, self.paths = app, limiter, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not any(pattern.fullmatch(path) for pattern in self.paths):
            await self.app(scope, receive, send)
            return
        wait = await lookup_wait(self.limiter, scope)
        if wait > 0:
            await self._refuse(scope, send, math.ceil(wait))
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 404:
                await lookup_missed(self.limiter, scope)
            await send(message)

        await self.app(scope, receive, watch)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, retry_after: int) -> None:
        body = too_many().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
