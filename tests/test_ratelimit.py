"""The rate limiters on their own, with time passed in as a value (battles.ratelimit).

The end-to-end behaviour (429s, rate_limited, 1008) is in tests/test_security.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from battles.ratelimit import CODE_PATH, AddressLimiter, MessageLimiter, client_address


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
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.wait_seconds("a", 0.0) == pytest.approx(1.0)
    assert limiter.allow("b", 0.0), "another address has its own budget"
    assert not limiter.allow("a", 0.5) and limiter.allow("a", 1.01)


def test_charging_a_failure_spends_a_token_without_asking() -> None:
    limiter = AddressLimiter(per_minute=30, burst=2, max_addresses=100)
    assert limiter.wait_seconds("a", 0.0) == 0
    limiter.charge("a", 0.0)
    limiter.charge("a", 0.0)
    limiter.charge("a", 0.0)  # past the budget: stays at zero, no debt
    assert limiter.wait_seconds("a", 0.0) == pytest.approx(2.0)


def test_addresses_are_forgotten_once_their_budget_refilled() -> None:
    limiter = AddressLimiter(per_minute=60, burst=10, max_addresses=1000)
    for n in range(500):
        limiter.allow(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(limiter) == 500
    limiter.allow("192.0.2.1", 10.0)  # a full refill takes 10 s: everyone else is forgotten
    assert len(limiter) == 1


def test_the_map_of_addresses_never_grows_past_its_bound() -> None:
    limiter = AddressLimiter(per_minute=1, burst=5, max_addresses=100)
    for n in range(10_000):
        limiter.allow(f"addr-{n}", n / 1000)
        assert len(limiter) <= 100
    # The most recently seen are kept.
    assert limiter.wait_seconds("addr-9999", 10.0) == 0 and len(limiter) == 100


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


@pytest.mark.parametrize(
    "path, counted",
    [
        ("/api/battles/K7RM2Q", True),
        ("/api/battles/K7RM2Q/export.json", True),
        ("/join/K7RM2Q", True),
        ("/screen/K7RM2Q", True),
        ("/host/K7RM2Q", True),
        ("/results/K7RM2Q", True),
        ("/ws/audience/K7RM2Q", True),
        ("/qr/K7RM2Q.svg", True),
        ("/api/battles", False),
        ("/", False),
        ("/new", False),
        ("/healthz", False),
        ("/static/client.js", False),
    ],
)
def test_the_lookup_guard_watches_every_path_that_names_a_code(path: str, counted: bool) -> None:
    assert bool(CODE_PATH.match(path)) is counted
