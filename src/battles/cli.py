"""The ``battles`` command: ``battles serve [--demo]``."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile

import uvicorn

from battles.app import create_battle
from battles.demo import demo_draft
from battles.model import Language
from battles.settings import Settings
from battles.stores import open_store
from battles.views import links


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="battles", description="Run Future Battles evenings.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--store", help="sqlite:///PATH (default sqlite:///battles.sqlite3) or redis://HOST:PORT/DB")
    serve.add_argument("--workers", type=int, help="server processes on one port (more than one needs Redis)")
    serve.add_argument("--public-url", help="base of the links handed out (default http://HOST:PORT)")
    serve.add_argument("--demo", action="store_true", help="create a sample battle and print its links")
    serve.add_argument("--language", choices=("da", "en"), default="en", help="language of the demo battle")
    args = parser.parse_args(argv)

    # Settings travel to the worker processes as environment variables.
    for option in ("host", "port", "store", "workers", "public_url"):
        value = getattr(args, option)
        if value is not None:
            os.environ[f"BATTLES_{option.upper()}"] = str(value)
    settings = Settings()
    if settings.workers > 1 and not settings.store.startswith(("redis://", "rediss://")):
        parser.error("more than one worker needs a shared store: --store redis://HOST:PORT/0")
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    if args.demo:
        code, found = asyncio.run(_create_demo(settings, args.language))
        print(f"Demo battle {code} ({args.language}) is ready:", flush=True)
        for name, link in found.items():
            print(f"  {name:8} {link}", flush=True)
    else:
        print(f"Create a battle at {base}/new", flush=True)
    # Several workers sum their /metrics through files in one fresh directory per
    # invocation (battles.metrics); set before the workers start and import it.
    metrics_dir = None
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="battles-metrics-")
    try:
        _serve(settings)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    return 0


def _serve(settings: Settings) -> None:
    uvicorn.run(
        "battles.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # uvloop where it is installed (a dependency on CPython/Linux and macOS).
        loop="auto",
        # uvicorn's websockets-sansio protocol, writing broadcast frames built once
        # (battles.fanout); per-message compression off, which that needs.
        # uvicorn's httptools protocol with a deadline for a request's headers, and
        # its idle keep-alive timeout (battles.slowclients).
        http="battles.slowclients:HeaderTimeoutProtocol",
        timeout_keep_alive=settings.keep_alive_timeout,
        ws="battles.fanout:FanOutProtocol",
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        ws_per_message_deflate=False,
        # The client address the rate limits count (battles.ratelimit): a trusted
        # reverse proxy's X-Forwarded-For, else the peer.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        lifespan="on",
    )


async def _create_demo(settings: Settings, language: Language) -> tuple[str, dict[str, str]]:
    store = open_store(settings.store, presence_ttl_ms=settings.presence_ttl_ms)
    await store.start(lambda code, message: None)
    try:
        code, tokens = await create_battle(store, demo_draft(language), settings.join_code_length)
    finally:
        await store.close()
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return code, links(base, code, tokens)


if __name__ == "__main__":
    sys.exit(main())
