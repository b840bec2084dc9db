"""The rate limiters on their own, with time passed in as a value (battles.ratelimit).

The end-to-end behaviour (429s, rate_limited, 1008) is in tests/test_security.py.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import redis

from battles.app import create_app
from battles.ratelimit import AddressLimiter, LookupGuard, MessageLimiter, address_limits, client_address
from battles.settings import Settings
from battles.stores import open_store
from tests.servers import RedisServer


def test_a_socket_may_send_its_burst_then_its_rate() -> None:
    limiter = MessageLimiter(rate=10, burst=5, flood=20, now=0.0)
    assert [limiter.check(0.0) for _ in range(7)] == ["ok"] * 5 + ["limited"] * 2
    # Two dropped messages are debt: at 10 a second, the next token comes 0.3 s later.
    assert limiter.check(0.25) == "limited"
    assert limiter.check(0.65) == "ok"


def test_a_socket_that_keeps_sending_past_the_limit_floods() -> None:
    limiter = MessageLimiter(rate=10, burst=5, flood=20, now=0.0)
    verdicts = [limiter.check(0.0) for _ in range(30)]
    assert verdicts[:5] == ["ok"] * 5
    assert verdicts[5:25] == ["limited"] * 20
    assert set(verdicts[25:]) == {"flood"}


def test_a_socket_at_its_rate_is_never_limited() -> None:
    limiter = MessageLimiter(rate=20, burst=60, flood=200, now=0.0)
    assert {limiter.check(n / 20) for n in range(10_000)} == {"ok"}


def test_an_address_spends_its_burst_and_refills_at_its_rate() -> None:
    limiter = AddressLimiter(per_minute=60, burst=3, max_addresses=100)
    assert [limiter.check("a", now=0.0) for _ in range(4)] == [0, 0, 0, pytest.approx(1.0)]
    assert limiter.check("a", spend=False, now=0.0) == pytest.approx(1.0)
    assert limiter.check("b", now=0.0) == 0, "another address has its own budget"
    assert limiter.check("a", now=0.5) > 0 and limiter.check("a", now=1.01) == 0


def test_an_address_out_of_tokens_goes_into_no_debt() -> None:
    limiter = AddressLimiter(per_minute=30, burst=2, max_addresses=100)
    assert limiter.check("a", spend=False, now=0.0) == 0
    for _ in range(5):  # past the budget: stays at zero, no debt
        limiter.check("a", now=0.0)
    assert limiter.check("a", spend=False, now=0.0) == pytest.approx(2.0)


def test_looking_spends_nothing() -> None:
    limiter = AddressLimiter(per_minute=60, burst=1, max_addresses=100)
    assert [limiter.check("a", spend=False, now=0.0) for _ in range(3)] == [0, 0, 0]
    assert limiter.check("a", now=0.0) == 0 and limiter.check("a", spend=False, now=0.0) > 0


def test_addresses_are_forgotten_once_their_budget_refilled() -> None:
    limiter = AddressLimiter(per_minute=60, burst=10, max_addresses=1000)
    for n in range(500):
        limiter.check(f"10.0.{n // 256}.{n % 256}", now=0.0)
    assert len(limiter) == 500
    limiter.check("192.0.2.1", now=10.0)  # a full refill takes 10 s: everyone else is forgotten
    assert len(limiter) == 1


def test_the_map_of_addresses_never_grows_past_its_bound() -> None:
    limiter = AddressLimiter(per_minute=1, burst=5, max_addresses=100)
    for n in range(10_000):
        limiter.check(f"addr-{n}", now=n / 1000)
        assert len(limiter) <= 100
    # The most recently seen are kept.
    assert limiter.check("addr-9999", spend=False, now=10.0) == 0 and len(limiter) == 100


async def test_on_redis_every_process_spends_from_one_budget(redis_server: RedisServer) -> None:
    """Two stores on one Redis stand for two processes (docs/security.md)."""
    redis_server.flush()
    first, second = open_store(redis_server.url), open_store(redis_server.url)
    try:
        limits = [address_limits(store, "test", per_minute=60, burst=3, max_addresses=100) for store in (first, second)]
        waits = [await limits[n % 2].take("203.0.113.9") for n in range(4)]
        assert waits[:3] == [0, 0, 0] and 0 < waits[3] <= 1.0
        assert await limits[0].take("203.0.113.9", spend=False) > 0
        assert await limits[1].take("203.0.113.10") == 0, "another address has its own budget"
        await asyncio.sleep(1.05)  # one token a second: one more, from either process
        assert await limits[1].take("203.0.113.9") == 0 and await limits[0].take("203.0.113.9") > 0
        with redis.Redis(port=redis_server.port) as client:
            # Empty now: a bucket is forgotten once it would be full again, 3 s on.
            assert 2000 < client.pttl("battles:limit:test:203.0.113.9") <= 3000
            # 203.0.113.10 spent 1 of 3 over a second ago: full again, gone.
            assert not client.exists("battles:limit:test:203.0.113.10")
    finally:
        await first.close()
        await second.close()


def test_the_embedded_store_keeps_its_budgets_in_memory(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    assert isinstance(address_limits(store, "test", per_minute=60, burst=3, max_addresses=100), AddressLimiter)


def scope(host: str | None) -> dict[str, Any]:
    return {"type": "http", "client": (host, 1234) if host is not None else None}


@pytest.mark.parametrize(
    "peer, address",
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),  # the same /64: one device can hold all of it
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("testclient", "testclient"),
        (None, "unknown"),
    ],
)
def test_client_addresses_count_ipv6_by_their_64(peer: str | None, address: str) -> None:
    assert client_address(scope(peer)) == address


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> list[re.Pattern[str]]:
    """The paths the app's ``LookupGuard`` counts 404s on."""
    app = create_app(Settings(store=f"sqlite:///{tmp_path_factory.mktemp('lookups') / 'b.sqlite3'}"))
    (guard,) = [middleware for middleware in app.user_middleware if middleware.cls is LookupGuard]
    paths: list[re.Pattern[str]] = guard.kwargs["paths"]
    return paths


@pytest.mark.parametrize(
    "path, counted",
    [
        ("/api/battles/K7RM2Q", True),
        ("/api/battles/K7RM2Q/export.json", True),
        ("/api/battles/K7RM2Q/charts/votes.svg", True),
        ("/api/battles/K7RM2Q/votes/r1v1/receipts/K7QXM-2PART", True),
        ("/api/battles/K7RM2Q/battlers/b1/qr.svg", True),
        ("/join/K7RM2Q", True),
        ("/screen/K7RM2Q", True),
        ("/host/K7RM2Q", True),
        ("/results/K7RM2Q", True),
        ("/results/K7RM2Q/poster", True),
        ("/battler/K7RM2Q", True),
        ("/ws/audience/K7RM2Q", True),
        ("/qr/K7RM2Q.svg", True),
        ("/api/battles", False),
        ("/", False),
        ("/new", False),
        ("/healthz", False),
        ("/static/client/live.js", False),
    ],
)
def test_the_lookup_guard_watches_every_path_that_names_a_code(
    guarded: list[re.Pattern[str]], path: str, counted: bool
) -> None:
    assert any(pattern.fullmatch(path) for pattern in guarded) is counted
