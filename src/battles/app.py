"""The composition root: the route table, and ``create_app``, which makes what the
endpoints share and wraps them in the checks at the edge (docs/architecture.md, The app:
a table of routes). Each endpoint lives in the module of its concern."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount, Route
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from battles import api, cues, i18n, metrics, pages
from battles.assets import IMMUTABLE, REVALIDATE, Assets, asset_dir, catalogs, imported_modules, static_version
from battles.errors import Unavailable
from battles.gctuning import hold_many_sockets
from battles.headers import SecurityHeaders, server_error
from battles.hub import Hub
from battles.qr import qr_code, watch_qr_code
from battles.ratelimit import LookupGuard, address_limits, code_paths
from battles.security import HostGuard, Hosts, Origins, keep_secrets_out_of_logs, own_hosts
from battles.services import Services
from battles.settings import Settings
from battles.sockets import PATH as SOCKET_PATH
from battles.sockets import socket
from battles.stores import store_for
from battles.wordfilter import default_words

ROUTES = [
    Route("/", pages.index),
    Route("/new", pages.setup),
    Route("/healthz", api.healthz),
    Route("/metrics", metrics.metrics_page),
    Route("/join/{code:str}", functools.partial(pages.battle_page, "audience.html")),
    Route("/watch/{code:str}", pages.watch_page),
    Route("/screen/{code:str}", functools.partial(pages.battle_page, "screen.html")),
    # The screen for a video mixer (docs/operations.md, "A stream overlay in OBS"): the screen's
    # token and socket, a transparent page with a lower third.
    Route("/overlay/{code:str}", functools.partial(pages.battle_page, "overlay.html")),
    Route("/host/{code:str}", functools.partial(pages.battle_page, "host.html")),
    Route("/results/{code:str}", functools.partial(pages.battle_page, "results.html")),
    Route("/battler/{code:str}", functools.partial(pages.battle_page, "battler.html")),
    # The results link's page to print (docs/protocol.md, Charts): it reads the export
    # with the results token from its fragment, as the results page does.
    Route("/results/{code:str}/poster", functools.partial(pages.battle_page, "poster.html")),
    Route("/qr/{code:str}.svg", qr_code),
    Route("/qr/{code:str}/watch.svg", watch_qr_code),
    Route("/i18n/{version:str}.json", catalogs),
    Route("/api/battles", api.post_battle, methods=["POST"]),
    Route("/api/battles/{code:str}", api.get_battle),
    Route("/api/battles/{code:str}/commands", api.post_command, methods=["POST"]),
    Route("/api/battles/{code:str}/export.{format:str}", api.get_export),
    Route("/api/battles/{code:str}/charts/{chart:str}.svg", api.get_chart),
    Route("/api/battles/{code:str}/votes/{vote:str}/receipts/{receipt:str}", api.get_receipt),
    Route("/api/battles/{code:str}/battlers/{battler:str}/qr.svg", api.get_battler_qr),
]


class Battles(Starlette):
    """The app: pages and the API through Starlette's middleware and router; every
    websocket, /ws/ROLE/CODE, straight to ``battles.sockets``, which makes the same
    checks at the edge without a wrapper's frame held for the socket's life."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await socket(self.state.services, scope, receive, send)
            return
        await super().__call__(scope, receive, send)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    hub: Hub = app.state.services.hub
    await hub.start()
    osc = await cues.listen(app.state.services)  # only with osc_listen set
    hold_many_sockets()
    yield
    if osc is not None:
        osc.close()
    await hub.stop()


def create_app(settings: Settings | None = None) -> Battles:
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
    public = urlsplit(settings.public_url or "")
    public_origin = [f"{public.scheme}://{public.netloc}"] if public.netloc else []
    house = Services(
        settings=settings,
        store=store,
        hub=Hub(store, settings),
        mints=limits("mints", settings.mints_per_minute, settings.mint_burst),
        creates=limits("creates", settings.creates_per_minute, settings.create_burst),
        lookups=limits("lookups", settings.lookup_failures_per_minute, settings.lookup_failure_burst),
        cues=limits("cues", settings.message_rate * 60, settings.message_burst),
        origins=Origins([*settings.allowed_origins, *public_origin]),
        hosts=Hosts(own_hosts(settings.public_url, settings.allowed_origins)),
        joins=asyncio.Semaphore(settings.join_concurrency),
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
    handlers = {Exception: server_error, Unavailable: pages.store_away}
    app = Battles(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.state.services = house
    # The last added runs first: headers, then the Host (DNS rebinding), then the
    # failed-lookup count, on every path that names a code (a plain request to a websocket's
    # path included).
    app.add_middleware(LookupGuard, limiter=house.lookups, paths=[*code_paths(ROUTES), SOCKET_PATH])
    app.add_middleware(HostGuard, hosts=house.hosts)
    app.add_middleware(SecurityHeaders)
    # Compressed, a phone's first load is under a third (docs/performance.md, page weight).
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    return app
