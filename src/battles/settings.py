"""Every setting of the engine, read from ``BATTLES_*`` environment variables.

docs/settings.md describes each one, and tests/test_docs.py fails when one is
missing there. Limits are settings with a worked-out worst case, not literals in
the middle of a handler.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATTLES_", extra="ignore")

    store: str = Field(
        "sqlite:///battles.sqlite3",
        description=(
            "Where battles live: sqlite:///PATH (embedded, one process), redis://HOST:PORT/DB, or "
            "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB] (the primary these Sentinels name)."
        ),
    )
    # docs/operations.md, "Acknowledged means replicated": what this promises and costs.
    wait_replicas: int = Field(
        0,
        ge=0,
        le=16,
        description=(
            "Redis only: acknowledge a ballot or a host command only once WAIT says this many "
            "replicas have it; 0: once the primary has it."
        ),
    )
    wait_timeout_ms: int = Field(
        1000,
        ge=10,
        le=60_000,
        description="How long a write waits for wait_replicas; fewer by then: refused with store_unavailable.",
    )
    shutdown_drain_s: int = Field(
        10,
        ge=0,
        le=300,
        description=(
            "On SIGTERM, how long requests and websocket closes in progress may finish before "
            "the process exits anyway (uvicorn's timeout_graceful_shutdown)."
        ),
    )
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Server processes sharing the port; more than one needs Redis.")
    public_url: str | None = Field(
        None, description="Base of the links handed out (https://battles.example.org); default http://HOST:PORT."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) whose pages may open websockets; empty: the server's own.",
    )
    max_message_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=64 * 1024,
        description="Largest websocket frame a client may send; a larger one closes the socket with 1009.",
    )
    send_queue: int = Field(
        64,
        ge=8,
        description=(
            "Messages waiting for one slow socket before it is closed (1013) to reconnect; "
            "worst case send_queue x the largest update, about 64 x 8 KiB = 512 KiB for a phone."
        ),
    )
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds a connection has to send a request's line and headers; then it is closed."
    )
    keep_alive_timeout: int = Field(
        5, ge=1, description="Seconds an HTTP connection may stay idle after a response before it is closed."
    )
    ping_interval: float = Field(20.0, gt=0, description="Seconds between websocket pings.")
    ping_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a pong before dropping a client.")
    reaction_cooldown_ms: int = Field(
        800, ge=0, description="A device's reactions closer together than this are dropped with a notice."
    )
    # docs/rules.md, "The audience takes part". Worst case of the queue: every waiting
    # submission is at most 200 characters (about 600 bytes as a queue item), so a full
    # queue of submissions_waiting is about 120 KB in a console's snapshot.
    submission_cooldown_ms: int = Field(
        10_000,
        ge=0,
        le=600_000,
        description="A device's challenges and questions closer together than this are refused (too_soon).",
    )
    submissions_waiting_per_device: int = Field(
        3,
        ge=1,
        le=100,
        description="A device's submissions that may wait for a moderator at once; more are refused (limit_reached).",
    )
    submissions_waiting: int = Field(
        200,
        ge=1,
        le=5000,
        description="Submissions of one battle that may wait for a moderator at once; more are refused (limit_reached).",
    )
    live_tick_ms: int = Field(100, ge=20, description="How often host and screens get live tallies and engagement.")
    audience_tick_ms: int = Field(250, ge=50, description="How often phones get live figures.")
    presence_interval_ms: int = Field(1000, ge=100, description="How often each process reports its connections.")
    presence_ttl_ms: int = Field(
        10_000, ge=1000, description="A process whose presence report is older than this is counted as gone."
    )
    join_concurrency: int = Field(
        64,
        ge=1,
        description=(
            "Websocket joins one process handles at once; more wait their turn (a hall reconnecting "
            "after a restart comes back faster in turns than all at once)."
        ),
    )
    timer_poll_ms: int = Field(200, ge=20, description="How often each process looks for deadlines that passed.")
    # The reconnect policy every client gets in its welcome (docs/protocol.md,
    # "Reconnecting"). A lone phone whose Wi-Fi blinked is back within the first
    # window; when that fails, or the server said it restarts (1012), the whole hall is
    # probably coming back at once, so every later try waits up to reconnect_max_ms:
    # 2,000 phones then arrive at about 2,000 / 15 s = 133 a second, under 10% of the
    # hall in any second, however long the restart took.
    reconnect_base_ms: int = Field(
        500, ge=50, le=60_000, description="A client's first reconnect waits a random time up to this."
    )
    reconnect_max_ms: int = Field(
        15_000,
        ge=1000,
        le=300_000,
        description="Every later reconnect, and the first after a restart (1012), waits up to this.",
    )
    # Consoles and screens are a handful in a hall and the show waits for them: they come
    # back within this, whatever the phones do.
    reconnect_staff_max_ms: int = Field(
        1000, ge=100, le=60_000, description="Every reconnect of a host, co-host or screen waits up to this."
    )
    create_token: str | None = Field(
        None,
        description="When set, POST /api/battles needs it as a bearer token; unset, anyone who can reach the server may create a battle.",
    )
    join_code_length: int = Field(6, ge=4, le=12, description="Characters in a new join code.")
    # docs/protocol.md, "Cues from the crew's desk": off unless an address is named; every
    # worker binds it with SO_REUSEPORT, and the kernel hands each datagram to one of them.
    osc_listen: str | None = Field(
        None,
        pattern=r"^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):[0-9]{1,5}$",
        description=(
            "host:port ([v6]:port) of a UDP listener for OSC cues from a theatre cue desk (QLab, ETC Eos); "
            "unset, none is opened. Every message carries the host's or co-host's token."
        ),
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    # Abuse limits (battles.ratelimit; docs/security.md). Per-address limits count what
    # scope["client"] says; behind a reverse proxy that is the proxy, unless it is
    # trusted with forwarded_allow_ips.
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description=(
            "Comma-separated addresses (or *) of reverse proxies trusted to name the client in "
            "X-Forwarded-For / X-Forwarded-Proto (uvicorn's forwarded_allow_ips)."
        ),
    )
    message_rate: float = Field(
        20.0, gt=0, description="Messages per second one socket may send on average (a token bucket per socket)."
    )
    message_burst: int = Field(
        60, ge=1, description="Messages one socket may send at once before message_rate applies; beyond: rate_limited."
    )
    message_flood: int = Field(
        200,
        ge=1,
        description="Messages past the limit (each answered with rate_limited) after which the socket is closed with 1008.",
    )
    mints_per_minute: float = Field(
        300.0, gt=0, description="New device ids one client address may get per minute (after mint_burst)."
    )
    mint_burst: int = Field(
        600, ge=1, description="New device ids one client address may get at once: a hall behind one NAT at the doors."
    )
    lookup_failures_per_minute: float = Field(
        30.0, gt=0, description="Lookups of join codes that do not exist one client address may make per minute."
    )
    lookup_failure_burst: int = Field(
        60, ge=1, description="Failed join-code lookups one client address may make at once; then HTTP 429."
    )
    creates_per_minute: float = Field(
        10.0, gt=0, description="Battles one client address may create per minute (after create_burst)."
    )
    create_burst: int = Field(
        20, ge=1, description="Battles one client address may create at once; then POST /api/battles gets HTTP 429."
    )
    rate_limit_addresses: int = Field(
        10_000,
        ge=100,
        description=(
            "On the embedded store, client addresses the process remembers per per-address limit "
            "(about 200 bytes each); on Redis the budgets live in Redis and expire once full."
        ),
    )
