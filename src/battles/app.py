"""The Starlette application: pages, the HTTP API and the websocket endpoints."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import io
import logging
import math
import posixpath
import re
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import segno
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from battles import charts, game, i18n, metrics, protocol
from battles.admission import STORE_AWAY, JoinGate, Refusal, admit
from battles.errors import Refused, Unavailable
from battles.fanout import Connection
from battles.hub import Hub
from battles.model import BattleDraft, Language
from battles.protocol import PROTOCOL_VERSION
from battles.ratelimit import LookupGuard, MessageLimiter, address_limits, client_address, too_many
from battles.rooms import now_ms
from battles.security import HostGuard, OriginGuard, keep_secrets_out_of_logs, own_hosts, results_token, same_secret
from battles.settings import Settings
from battles.stores import store_for
from battles.stores.base import AddressLimits, Secrets, Store
from battles.views import battle_view, export, export_csv, links, shared_submissions
from battles.wordfilter import default_words

log = logging.getLogger("battles.app")

JOIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a projector
MAX_REQUEST_BYTES = 64 * 1024
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def asset_dir(name: str) -> Path:
    """static/ and templates/ beside src/ in a checkout, or under share/ when installed."""
    for candidate in (Path(__file__).resolve().parents[2] / name, Path(sys.prefix) / "share" / "battles" / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cannot find the {name}/ folder of the battles package")


# Static files and the catalogs under a versioned address are kept by browsers for a year:
# a phone that comes back (a reload, the next evening) loads the page and nothing else.
# Under the plain /static/ address they are checked again each time (ETag, a 304).
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def static_version(directory: Path) -> str:
    """A digest of every file under static/, the version in its long-lived address: a deploy
    that changes any file changes every address (the modules import each other by relative
    paths, so they share one version)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# A module's static imports: `import ... from "./x.js";` and `import "./x.js";` (the page
# scripts keep theirs at the top, one statement each).
MODULE_IMPORT = re.compile(r'^import\s(?:[^;"]*?\sfrom\s*)?"(\.{1,2}/[^"]+)";', re.M)


def imported_modules(directory: Path, script: str) -> list[str]:
    """Every module under static/ that the page script `script` imports, directly or through
    another, in the order first met. The page names them all in <link rel="modulepreload">:
    the browser asks for them at once with the script, not one level of imports per round trip."""
    found: list[str] = []
    pending = [script]
    while pending:
        module = pending.pop(0)
        for target in MODULE_IMPORT.findall((directory / module).read_text()):
            path = posixpath.normpath(posixpath.join(posixpath.dirname(module), target))
            if path != script and path not in found:
                found.append(path)
                pending.append(path)
    return found


class Assets(StaticFiles):
    """static/, each answer with its Cache-Control."""

    def __init__(self, directory: Path, cache_control: str) -> None:
        super().__init__(directory=str(directory))
        self.cache_control = cache_control

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = self.cache_control
        return response


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def base_url(connection: HTTPConnection, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    url = connection.url
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return f"{scheme}://{url.netloc}"


# A join code as new_code makes one, at any join_code_length (4 to 12, settings.py).
CODE_SHAPE = re.compile(f"[{JOIN_ALPHABET}]{{4,12}}")
# QR codes: a join link of QR_MAX_LINK characters takes about 20 ms to draw (segno,
# measured); each is drawn once and kept, up to QR_CACHE links (about 4 KB each).
QR_MAX_LINK = 100
QR_CACHE = 256


@functools.lru_cache(maxsize=QR_CACHE)
def qr_svg(link: str) -> bytes:
    """The QR code of a battle's join link, drawn once: it never changes."""
    svg = io.BytesIO()
    segno.make(link, error="m").save(
        svg, kind="svg", scale=10, border=2, dark="#000000", light="#ffffff", xmldecl=False
    )
    return svg.getvalue()


# The evening's charts, each drawing kept for the next request (battles.charts.Drawings).
CHART_CACHE = 32
chart_drawings = charts.Drawings(CHART_CACHE)


def new_code(length: int) -> str:
    return "".join(secrets.choice(JOIN_ALPHABET) for _ in range(length))


async def create_battle(store: Store, draft: BattleDraft, code_length: int) -> tuple[str, Secrets]:
    """Store a new battle under a fresh join code; returns the code and its tokens."""
    tokens = Secrets.mint()
    for _ in range(20):
        code = new_code(code_length)
        if await store.create(game.create(code, draft, now_ms()), tokens):
            return code, tokens
    raise RuntimeError("no free join code after 20 tries: make join_code_length longer")


# Middle-generation collections between two full ones (Python's default: 10); see
# hold_many_sockets.
GC_FULL_EVERY = 1000


def hold_many_sockets() -> None:
    """Tune this process's garbage collector for thousands of long-lived sockets.

    Each open socket is a few hundred objects the collector tracks, and a full
    collection walks all of them: at 2,000 to 5,000 sockets per process, measured
    pauses of 0.2 to 2.5 s (docs/performance.md). They came when a hall joins or comes
    back after a restart, exactly when every phone waits, and a pause longer than the
    store's timeout even looked like Redis going away. So the objects of the imports
    are frozen out of every collection (``gc.freeze``), and a full collection is tried
    after ``GC_FULL_EVERY`` middle ones instead of 10: a hundred times less often.
    Young and middle collections, which are cheap, still take most cycles away.
    ``battles_gc_pause_seconds`` shows the pauses that are left.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GC_FULL_EVERY)
    metrics.watch_gc()


@dataclass(frozen=True)
class Services:
    """What the endpoints share, made once by ``create_app`` and kept on ``app.state``
    (as Starlette's own examples keep theirs): each endpoint reads it from its request."""

    settings: Settings
    store: Store
    hub: Hub
    # Per client address, shared by every process of the store (battles.ratelimit): new
    # device ids, new battles, and lookups of join codes that do not exist.
    mints: AddressLimits
    creates: AddressLimits
    lookups: AddressLimits
    templates: Jinja2Templates
    catalogs_body: str
    catalogs_version: str


def services(connection: HTTPConnection) -> Services:
    return cast(Services, connection.app.state.services)


def language_of(request: Request, default: Language) -> Language:
    wanted = request.query_params.get("lang")
    return next((lang for lang in i18n.LANGUAGES if lang == wanted), default)


def page(
    request: Request,
    template: str,
    language: Language,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    return services(request).templates.TemplateResponse(
        request,
        template,
        {
            "lang": language,
            "_": i18n.gettext(language),
            **context,
        },
        status_code=status_code,
        headers=headers,
    )


# --- pages ------------------------------------------------------------------------------


async def battle_page(template: str, request: Request) -> Response:
    """A page of one battle (``template``, bound in ROUTES), or a 404 for a code no battle has."""
    code = request.path_params["code"].upper()
    battle = await services(request).store.load(code)
    if battle is None:
        # A 404, so LookupGuard counts a guessed code that does not exist.
        return page(request, "missing.html", language_of(request, "en"), status_code=404, code=code)
    return page(request, template, language_of(request, battle.language), code=code, title=battle.title)


async def catalogs(request: Request) -> Response:
    house = services(request)
    if request.path_params["version"] != house.catalogs_version:
        raise HTTPException(404, "no such version of the catalogs")
    return Response(house.catalogs_body, media_type="application/json", headers={"cache-control": IMMUTABLE})


async def index(request: Request) -> Response:
    return page(request, "index.html", language_of(request, "en"))


async def setup(request: Request) -> Response:
    return page(request, "setup.html", language_of(request, "en"))


async def metrics_page(request: Request) -> Response:
    # Prometheus text, summed over the workers of this `battles serve` (battles.metrics).
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)


async def healthz(request: Request) -> Response:
    house = services(request)
    ok = await house.store.healthy()
    connections = sum(len(room.connections) for room in house.hub.rooms.values())
    body = {"ok": ok, "store": "reachable" if ok else "unreachable", "connections": connections}
    return JSONResponse(body, status_code=200 if ok else 503)


async def qr_code(request: Request) -> Response:
    # Only a code of the real shape that names a battle gets a QR code; anything
    # else is a 404, which LookupGuard counts like any guessed code.
    house = services(request)
    code = request.path_params["code"].upper()
    if not CODE_SHAPE.fullmatch(code) or await house.store.secrets(code) is None:
        raise HTTPException(404, "no battle has that code")
    join = links(base_url(request, house.settings), code)["join"]
    if len(join) > QR_MAX_LINK:
        raise HTTPException(404, "no QR code for a join link this long: set public_url")
    return Response(qr_svg(join), media_type="image/svg+xml")


# --- the HTTP API -----------------------------------------------------------------------


async def post_battle(request: Request) -> Response:
    house = services(request)
    if house.settings.create_token and not same_secret(_bearer(request.headers), house.settings.create_token):
        return JSONResponse({"error": "a valid create token is required"}, status_code=401)
    wait = await house.creates.take(client_address(request.scope))
    if wait > 0:
        return JSONResponse({"error": too_many()}, status_code=429, headers={"retry-after": str(math.ceil(wait))})
    body = await _read_limited(request)
    try:
        # Strict, as on the sockets (docs/protocol.md, HTTP): "90" is not a number of seconds.
        draft = BattleDraft.model_validate_json(body, strict=True)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False)
        return JSONResponse({"error": "invalid battle", "details": details}, status_code=422)
    code, tokens = await create_battle(house.store, draft, house.settings.join_code_length)
    return JSONResponse(
        {"code": code, "links": links(base_url(request, house.settings), code, tokens)}, status_code=201
    )


async def get_battle(request: Request) -> Response:
    battle = await services(request).store.load(request.path_params["code"].upper())
    if battle is None:
        raise HTTPException(404, "no battle has that code")
    return JSONResponse(battle_view(battle, "screen"))  # what a screen gets: no log, no word list


async def get_export(request: Request) -> Response:
    store = services(request).store
    code = request.path_params["code"].upper()
    battle, tokens = await store.load(code), await store.secrets(code)
    if battle is None or tokens is None or request.path_params["format"] not in ("json", "csv"):
        raise HTTPException(404, "no battle has that code")
    # The host's token, or the results link's (docs/security.md): both read the export.
    given = _bearer(request.headers)
    as_host = same_secret(given, tokens.host)
    if not (as_host or same_secret(given, results_token(tokens))):
        raise HTTPException(401, "the host token or the results token is required (Authorization: Bearer TOKEN)")
    reactions, submissions = await store.all_reactions(battle), await store.submissions(code)
    if not as_host:
        submissions = shared_submissions(submissions)
    filename = f"battle-{code}.{request.path_params['format']}"
    disposition = {"content-disposition": f'attachment; filename="{filename}"'}
    if request.path_params["format"] == "csv":
        return Response(
            export_csv(battle, reactions, submissions), media_type="text/csv; charset=utf-8", headers=disposition
        )
    return JSONResponse(export(battle, reactions, submissions), headers=disposition)


async def get_chart(request: Request) -> Response:
    # Drawn from what anyone may read already, GET /api/battles/CODE and the live
    # engagement figures, so no token (docs/security.md, charts).
    store = services(request).store
    code = request.path_params["code"].upper()
    battle = await store.load(code)
    if battle is None or request.path_params["chart"] not in charts.CHARTS:
        raise HTTPException(404, "no battle has that code, or no chart that name")
    reactions, language = await store.all_reactions(battle), language_of(request, battle.language)
    svg = chart_drawings.draw(request.path_params["chart"], battle, reactions, language)
    return Response(svg, media_type="image/svg+xml", headers={"cache-control": "no-store"})


# --- the websocket ----------------------------------------------------------------------


async def socket(websocket: WebSocket) -> None:
    """/ws/ROLE/CODE: admitted or refused at the handshake (battles.admission), then the
    socket's messages, each past the per-socket rate limit, to the hub."""
    house = services(websocket)
    role, code = websocket.path_params["role"], websocket.path_params["code"].upper()
    admitted = await admit(house.store, house.mints, websocket.scope, role, code)
    if isinstance(admitted, Refusal):
        # Refusals are HTTP answers to the handshake, before anything is set up
        # (docs/protocol.md, Connecting).
        await admitted.send(websocket.scope, websocket.send)
        return
    subprotocol = PROTOCOL_VERSION if PROTOCOL_VERSION in websocket.scope.get("subprotocols", []) else None
    await websocket.accept(subprotocol=subprotocol)
    connection = Connection(
        websocket,
        admitted.role,
        admitted.code,
        admitted.language,
        house.settings.send_queue,
        admitted.device,
        admitted.new_device,
    )
    connection.cohost_generation = admitted.cohost_generation
    await converse(websocket, connection, house)


async def converse(websocket: WebSocket, connection: Connection, house: Services) -> None:
    """An accepted socket's life: in the hub's room, its frames read until it goes."""
    hub, settings = house.hub, house.settings
    here = base_url(websocket, settings)
    limiter = MessageLimiter(settings.message_rate, settings.message_burst, settings.message_flood, time.monotonic())
    try:
        await hub.enter(connection, here)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            raw = text if text is not None else message.get("bytes") or b""
            verdict = limiter.check(time.monotonic())
            if verdict == "flood":
                await connection.stop()
                with contextlib.suppress(Exception):
                    await websocket.close(1008, "too many messages")
                break
            if verdict == "limited":
                # Dropped unread: only its id is looked up, for the client's sake.
                refusal = Refused("rate_limited")
                connection.send(hub.error(connection.language, refusal, protocol.request_id(raw)))
                continue
            await hub.handle(connection, raw, here)
    except WebSocketDisconnect:
        pass
    finally:
        await hub.leave(connection)


# --- the app ----------------------------------------------------------------------------

ROUTES = [
    Route("/", index),
    Route("/new", setup),
    Route("/healthz", healthz),
    Route("/metrics", metrics_page),
    Route("/join/{code:str}", functools.partial(battle_page, "audience.html")),
    Route("/screen/{code:str}", functools.partial(battle_page, "screen.html")),
    Route("/host/{code:str}", functools.partial(battle_page, "host.html")),
    Route("/results/{code:str}", functools.partial(battle_page, "results.html")),
    # The results link's page to print (docs/protocol.md, Charts): it reads the export
    # with the results token from its fragment, as the results page does.
    Route("/results/{code:str}/poster", functools.partial(battle_page, "poster.html")),
    Route("/qr/{code:str}.svg", qr_code),
    Route("/i18n/{version:str}.json", catalogs),
    Route("/api/battles", post_battle, methods=["POST"]),
    Route("/api/battles/{code:str}", get_battle),
    Route("/api/battles/{code:str}/export.{format:str}", get_export),
    Route("/api/battles/{code:str}/charts/{chart:str}.svg", get_chart),
    WebSocketRoute("/ws/{role:str}/{code:str}", socket),
]


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    hub: Hub = app.state.services.hub
    await hub.start()
    hold_many_sockets()
    yield
    await hub.stop()


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    keep_secrets_out_of_logs(settings.log_level)
    store = store_for(settings)
    limits = functools.partial(address_limits, store, max_addresses=settings.rate_limit_addresses)
    templates = Jinja2Templates(directory=str(asset_dir("templates")))
    static_dir = asset_dir("static")
    static_path = f"/static/{static_version(static_dir)}"
    catalogs_body, catalogs_version = i18n.catalogs_json()
    templates.env.globals.update(
        static=static_path,
        catalogs_url=f"/i18n/{catalogs_version}.json",
        modules=functools.cache(functools.partial(imported_modules, static_dir)),
        default_banned_words=default_words(),  # battle_fields.html
    )
    house = Services(
        settings=settings,
        store=store,
        hub=Hub(store, settings),
        mints=limits("mints", settings.mints_per_minute, settings.mint_burst),
        creates=limits("creates", settings.creates_per_minute, settings.create_burst),
        lookups=limits("lookups", settings.lookup_failures_per_minute, settings.lookup_failure_burst),
        templates=templates,
        catalogs_body=catalogs_body,
        catalogs_version=catalogs_version,
    )
    routes = [
        *ROUTES,
        Mount(static_path, Assets(static_dir, IMMUTABLE)),
        Mount("/static", Assets(static_dir, REVALIDATE), name="static"),
    ]
    # Starlette answers an unexpected error in ServerErrorMiddleware, outside every
    # middleware added below, SecurityHeaders included: its handler is the one place
    # that answer is made, so it carries the headers itself (then the error is logged).
    # The store away is answered inside them, as an HTTPException is.
    handlers = {Exception: server_error, Unavailable: store_away}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.services = house
    # The last added runs first: origins, then headers, then the Host (DNS rebinding),
    # then the failed-lookup count.
    # A hall joining at once (after a restart) is let in join_concurrency at a time.
    app.add_middleware(JoinGate, limit=settings.join_concurrency)
    app.add_middleware(LookupGuard, limiter=house.lookups)
    hosts = own_hosts(settings.public_url, settings.allowed_origins)
    if hosts is not None:
        app.add_middleware(HostGuard, hosts=hosts)
    app.add_middleware(SecurityHeaders)
    # Compressed, a phone's first load is under a third (docs/performance.md, page weight).
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    public = urlsplit(settings.public_url or "")
    public_origin = [f"{public.scheme}://{public.netloc}"] if public.netloc else []
    app.add_middleware(OriginGuard, allowed=[*settings.allowed_origins, *public_origin])
    return app


async def store_away(request: Request, error: Exception) -> Response:
    # The store cannot be reached right now (Redis away): ask again, as a refused handshake
    # says (docs/protocol.md). A browser gets a page in both languages that reloads itself.
    if request.scope["type"] != "http":
        raise error  # an accepted socket has no HTTP answer left to give: it ends
    seconds = math.ceil(STORE_AWAY.retry_after_s)
    retry = {"retry-after": str(seconds)}
    if "text/html" in request.headers.get("accept", ""):
        return page(request, "away.html", language_of(request, "en"), 503, retry, retry_after_s=seconds)
    return PlainTextResponse(STORE_AWAY.text, status_code=503, headers=retry)


async def server_error(request: Request, error: Exception) -> Response:
    return PlainTextResponse("Internal Server Error", status_code=500, headers=SECURITY_HEADERS)


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else None


async def _read_limited(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise HTTPException(413, f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    return body
