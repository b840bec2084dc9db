"""The HTML pages: the start page, the setup form, a battle's pages for each role, and the
page a browser gets while the store is away. Each page is a template rendered in the
language it is asked for (battles.i18n)."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from battles import i18n
from battles.admission import STORE_AWAY
from battles.anomalies import page_mark
from battles.i18n import language_of
from battles.model import Language
from battles.services import base_url, services
from battles.views import links, watch_link


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


async def battle_page(template: str, request: Request, remote: bool = False) -> Response:
    """A page of one battle (``template``, bound in app.ROUTES), or a 404 for a code no battle has."""
    code = request.path_params["code"].upper()
    battle = await services(request).store.load(code)
    if battle is None:
        # A 404, so LookupGuard counts a guessed code that does not exist.
        return page(request, "missing.html", language_of(request, "en"), status_code=404, code=code)
    # The join page hands its socket a mark: a socket without one never loaded the page
    # (docs/security.md, "Anomaly flags").
    mark = page_mark(await services(request).store.signing_key(), code) if template == "audience.html" else ""
    # The stream overlay writes where to vote as phones get it (``public_url``), not the address
    # the mixer's browser opened it at (docs/operations.md, "A stream overlay in OBS").
    join, watch = overlay_links(request, code) if template == "overlay.html" else ("", "")
    language = language_of(request, battle.language)
    return page(
        request,
        template,
        language,
        code=code,
        title=battle.title,
        mark=mark,
        remote=remote,
        join_url=join,
        watch_url=watch,
    )


def overlay_links(request: Request, code: str) -> tuple[str, str]:
    """The hall's join link, and the stream's (the remote audience's page, docs/protocol.md)."""
    here = base_url(request, services(request).settings)
    return links(here, code)["join"], watch_link(here, code)


async def watch_page(request: Request) -> Response:
    """/watch/CODE: the join page of the stream's audience (docs/protocol.md, "The remote
    audience"), while the battle's remote link is on; else a 404 that says so."""
    code = request.path_params["code"].upper()
    battle = await services(request).store.load(code)
    if battle is not None and not battle.rules.remote:
        language = language_of(request, battle.language)
        return page(request, "missing.html", language, status_code=404, code=code, remote_off=True)
    return await battle_page("audience.html", request, remote=True)


async def index(request: Request) -> Response:
    return page(request, "index.html", language_of(request, "en"))


async def setup(request: Request) -> Response:
    return page(request, "setup.html", language_of(request, "en"))


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
