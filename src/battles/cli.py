"""The ``battles`` command: ``battles serve [--demo]``, and ``export``, ``backup`` and
``restore`` for the night after (docs/operations.md, "Backup and restore")."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import segno
import uvicorn

from battles import backup
from battles.creation import create_battle
from battles.demo import demo_draft
from battles.errors import Unavailable
from battles.settings import Settings
from battles.stores import shared, store_for
from battles.stores.base import Store
from battles.views import battler_links, export, export_csv, links

T = TypeVar("T")
STORE_HELP = "sqlite:///PATH (default sqlite:///battles.sqlite3), redis://HOST:PORT/DB or redis+sentinel://..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="battles", description="Run Future Battles evenings.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--store", help=STORE_HELP)
    serve.add_argument("--workers", type=int, help="server processes on one port (more than one needs Redis)")
    serve.add_argument("--public-url", help="base of the links handed out (default http://HOST:PORT)")
    serve.add_argument("--demo", action="store_true", help="create a sample battle and print its links")
    serve.add_argument("--language", choices=("da", "en"), default="en", help="language of the demo battle")
    exporting = commands.add_parser("export", help="write one battle's export (the whole evening) to a file")
    exporting.add_argument("code", help="the battle's join code")
    exporting.add_argument("--format", choices=("json", "csv"), default="json")
    exporting.add_argument("--output", help="file to write (default battle-CODE.FORMAT)")
    exporting.add_argument("--store", help=STORE_HELP)
    backing_up = commands.add_parser("backup", help="write every battle of the store to a file")
    backing_up.add_argument("file")
    backing_up.add_argument("--store", help=STORE_HELP)
    restoring = commands.add_parser("restore", help="put the battles of a backup into the store")
    restoring.add_argument("file")
    restoring.add_argument("--store", help=STORE_HELP)
    args = parser.parse_args(argv)
    if args.command != "serve":
        if args.store is not None:
            os.environ["BATTLES_STORE"] = args.store
        try:
            action = {"export": _export, "backup": _backup, "restore": _restore}[args.command]
            return asyncio.run(_with_store(Settings(), lambda store: action(store, args)))
        except Unavailable:
            print(f"error: the store ({Settings().store}) cannot be reached", file=sys.stderr)
            return 1
        except (backup.RestoreRefused, LookupError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    # Settings travel to the worker processes as environment variables.
    for option in ("host", "port", "store", "workers", "public_url"):
        value = getattr(args, option)
        if value is not None:
            os.environ[f"BATTLES_{option.upper()}"] = str(value)
    settings = Settings()
    if settings.workers > 1 and not shared(settings.store):
        parser.error("more than one worker needs a shared store: --store redis://HOST:PORT/0")
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    if settings.public_url is None and _all_interfaces(settings.host):
        # Listening on every interface: the printed links name the address phones on the
        # venue network reach, not 0.0.0.0, which none can open. The pages build theirs
        # (and the QR code) from the address they were opened by, so that is not fixed
        # here: in a container this machine's address is not the one phones use.
        venue = venue_address()
        if venue is None:
            print("No network interface is up besides loopback: phones cannot reach this machine yet.", flush=True)
        else:
            interface, address = venue
            base = f"http://{address}:{settings.port}"
            print(f"Phones on the venue network reach this machine at {address} (interface {interface}). "
                  "Open the pages by this address, or set --public-url, so that the QR code names it too.",
                  flush=True)  # fmt: skip
    if args.demo:
        draft = demo_draft(args.language)
        battle, tokens = asyncio.run(
            _with_store(settings, lambda store: create_battle(store, draft, settings.join_code_length))
        )
        found = links(base, battle.code, tokens)
        print(f"Demo battle {battle.code} ({args.language}) is ready:", flush=True)
        for name, link in found.items():
            print(f"  {name:8} {link}", flush=True)
        # Each battler's own link (docs/rules.md, "Visions that develop"), to hand over.
        names = {battler.id: battler.name for battler in battle.battlers}
        for battler_id, link in battler_links(base, battle.code, tokens, battle.battlers).items():
            print(f"  {battler_id:8} {link}  ({names[battler_id]})", flush=True)
        print(f"Phones join at {found['join']}:", flush=True)
        segno.make(found["join"], error="m").terminal(compact=True)
        sys.stdout.flush()
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


def _all_interfaces(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified  # 0.0.0.0 or ::
    except ValueError:
        return False  # a name


def venue_address() -> tuple[str, str] | None:
    """(interface, IPv4 address) by which phones on the venue network reach this machine.

    The interface the default route leaves by (a UDP socket "connected" to an outside
    address picks it, and sends nothing), else the first other interface that is up;
    None when only loopback is up.
    """
    candidates = [
        (name, address.address)
        for name, addresses in psutil.net_if_addrs().items()
        for address in addresses
        if address.family == socket.AF_INET
        and not ipaddress.ip_address(address.address).is_loopback
        and getattr(psutil.net_if_stats().get(name), "isup", False)
    ]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): never answers, never sent to
            routed = probe.getsockname()[0]
    except OSError:
        routed = None
    return next((c for c in candidates if c[1] == routed), candidates[0] if candidates else None)


def _serve(settings: Settings) -> None:
    uvicorn.run("battles.app:create_app", workers=settings.workers, **uvicorn_options(settings))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``battles serve`` runs the app under uvicorn (``bench.census`` runs it so too)."""
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        # uvloop where it is installed (a dependency on CPython/Linux and macOS).
        "loop": "auto",
        # uvicorn's websockets-sansio protocol, writing broadcast frames built once
        # (battles.fanout); per-message compression off, which that needs.
        # uvicorn's httptools protocol with a deadline for a request's headers, and
        # its idle keep-alive timeout (battles.slowclients).
        "http": "battles.slowclients:HeaderTimeoutProtocol",
        "timeout_keep_alive": settings.keep_alive_timeout,
        "ws": "battles.fanout:FanOutProtocol",
        "ws_max_size": settings.max_message_bytes,
        "ws_ping_interval": settings.ping_interval,
        "ws_ping_timeout": settings.ping_timeout,
        "ws_per_message_deflate": False,
        # The client address the rate limits count (battles.ratelimit): a trusted
        # reverse proxy's X-Forwarded-For, else the peer.
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "log_level": settings.log_level,
        "lifespan": "on",
        # A bounded drain on SIGTERM (docs/operations.md, "A server process dies, or
        # restarts"): sockets get 1012 and the process is gone within this, even when a
        # request or a client's close handshake hangs.
        "timeout_graceful_shutdown": settings.shutdown_drain_s,
    }


async def _with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    store = store_for(settings)
    await store.start(lambda code, message: None)
    try:
        return await action(store)
    finally:
        await store.close()


def _write(path: Path, content: bytes) -> None:
    """Written beside, then moved into place: a file cut short never replaces a good one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)


async def _export(store: Store, args: argparse.Namespace) -> int:
    code = args.code.upper()
    battle = await store.load(code)
    if battle is None:
        raise LookupError(f"no battle has the code {code}")
    reactions = await store.all_reactions(battle)
    submissions, minds = await store.submissions(battle.code), await store.persuasion(battle)
    content = (
        export_csv(battle, reactions, submissions, minds).encode()
        if args.format == "csv"
        else json.dumps(export(battle, reactions, submissions, minds)).encode()
    )
    path = Path(args.output or f"battle-{code}.{args.format}")
    _write(path, content)
    print(f"Battle {code} exported to {path}")
    return 0


async def _backup(store: Store, args: argparse.Namespace) -> int:
    content = await backup.backup(store)
    _write(Path(args.file), content)
    print(f"{len(backup.parse(content).battles)} battles backed up to {args.file}")
    return 0


async def _restore(store: Store, args: argparse.Namespace) -> int:
    restored = await backup.restore(store, Path(args.file).read_bytes())
    print(f"{len(restored)} battles restored: {' '.join(restored)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
