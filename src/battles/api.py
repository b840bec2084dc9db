"""The HTTP API (docs/protocol.md, HTTP): create a battle, read its public state, its
export and its charts; and ``/healthz``."""

from __future__ import annotations

import math

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from battles import charts
from battles.creation import create_battle
from battles.i18n import language_of
from battles.model import BattleDraft
from battles.ratelimit import client_address, too_many
from battles.security import results_token, same_secret
from battles.services import base_url, services
from battles.views import battle_view, export, export_csv, links, shared_submissions

MAX_REQUEST_BYTES = 64 * 1024
# The evening's charts, each drawing kept for the next request (battles.charts.Drawings).
CHART_CACHE = 32
chart_drawings = charts.Drawings(CHART_CACHE)


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


async def healthz(request: Request) -> Response:
    house = services(request)
    ok = await house.store.healthy()
    connections = sum(len(room.connections) for room in house.hub.rooms.values())
    body = {"ok": ok, "store": "reachable" if ok else "unreachable", "connections": connections}
    return JSONResponse(body, status_code=200 if ok else 503)


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
