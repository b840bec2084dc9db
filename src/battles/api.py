"""The HTTP API (docs/protocol.md, HTTP): create a battle, read its public state, its
export and its charts, a battler link's QR code for the console, a host command from
the crew's desk (``battles.cues``); and ``/healthz``."""

from __future__ import annotations

import math

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from battles import charts, cues, receipts
from battles.creation import create_battle
from battles.i18n import language_of
from battles.model import BattleDraft
from battles.qr import qr_svg
from battles.ratelimit import client_address, too_many
from battles.security import current_secrets, results_token, same_secret
from battles.services import base_url, services
from battles.views import battle_view, battler_links, export, export_csv, links, shared_submissions

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
    battle, tokens = await create_battle(house.store, draft, house.settings.join_code_length)
    here = base_url(request, house.settings)
    code = battle.code
    mine = battler_links(here, code, tokens, battle.battlers)
    return JSONResponse({"code": code, "links": links(here, code, tokens), "battler_links": mine}, status_code=201)


async def get_battle(request: Request) -> Response:
    battle = await services(request).store.load(request.path_params["code"].upper())
    if battle is None:
        raise HTTPException(404, "no battle has that code")
    return JSONResponse(battle_view(battle, "screen"))  # what a screen gets: no log, no word list


async def post_command(request: Request) -> Response:
    """A host command as a host socket sends it, with the host's or co-host's token as a
    bearer token; the answer is the socket's ``ack`` or ``error`` (docs/protocol.md, "Cues
    from the crew's desk"). A body over max_message_bytes, a frame that closes a socket: 413."""
    house = services(request)
    body = await _read_limited(request, house.settings.max_message_bytes)
    here = base_url(request, house.settings)
    code, sender = request.path_params["code"].upper(), client_address(request.scope)
    cue = await cues.answer(house, code, _bearer(request.headers), body, sender, here)
    return Response(cue.frame, status_code=cue.status, media_type="application/json")


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
    minds = await store.persuasion(battle)
    if not as_host:
        submissions = shared_submissions(submissions)
    filename = f"battle-{code}.{request.path_params['format']}"
    disposition = {"content-disposition": f'attachment; filename="{filename}"'}
    if request.path_params["format"] == "csv":
        return Response(
            export_csv(battle, reactions, submissions, minds), media_type="text/csv; charset=utf-8", headers=disposition
        )
    return JSONResponse(export(battle, reactions, submissions, minds), headers=disposition)


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


async def get_receipt(request: Request) -> Response:
    """Whether a receipt is in a closed vote's count, and as which choice: that ballot's
    alone, nothing of the others (docs/security.md, "Receipts and digests"). No token: the
    receipt is the secret. A miss is a 404 that ``LookupGuard`` counts, so guessing stays slow."""
    house = services(request)
    code = request.path_params["code"].upper()
    battle = await house.store.load(code)
    vote = (
        next((v for rnd in battle.rounds for v in rnd.votes if v.id == request.path_params["vote"]), None)
        if battle
        else None
    )
    if battle is None or vote is None:
        raise HTTPException(404, "no battle has that code, or no vote that id")
    runner = house.hub.runner
    if vote.status == "open" or (vote.status == "closed" and await runner.windows_run(battle)):
        # Open, in the hall or in a remote phone's window: a ballot may still change.
        return JSONResponse({"error": "vote_open", "vote_id": vote.id}, status_code=409)
    if vote.status == "voided":  # no ballot of it counts
        return JSONResponse({"error": "vote_voided", "vote_id": vote.id}, status_code=409)
    receipt = receipts.normalized(request.path_params["receipt"])
    count = await runner.counted(code, vote.id)
    choice = count.choices.get(receipt) if receipt else None
    if receipt is None or choice is None:
        return JSONResponse({"error": "not_counted", "vote_id": vote.id}, status_code=404)
    return JSONResponse({"vote_id": vote.id, "receipt": receipt, "choice": choice, "digest": count.digest})


async def healthz(request: Request) -> Response:
    house = services(request)
    ok = await house.store.healthy()
    connections = sum(len(room.connections) for room in house.hub.rooms.values())
    body = {"ok": ok, "store": "reachable" if ok else "unreachable", "connections": connections}
    return JSONResponse(body, status_code=200 if ok else 503)


async def get_battler_qr(request: Request) -> Response:
    """The QR code of one battler's own link, for the console to hand it over (docs/security.md):
    with the host token or the co-host's of the current generation, which see the link itself."""
    house = services(request)
    code = request.path_params["code"].upper()
    battle, tokens = await house.store.load(code), await house.store.secrets(code)
    if battle is None or tokens is None:
        raise HTTPException(404, "no battle has that code")
    now = current_secrets(tokens, battle.cohost_generation)
    given = _bearer(request.headers)
    if not (same_secret(given, now.host) or same_secret(given, now.cohost)):
        raise HTTPException(401, "the host or co-host token is required (Authorization: Bearer TOKEN)")
    battler = battle.battler(request.path_params["battler"])
    if battler is None:
        raise HTTPException(404, "no such battler")
    link = battler_links(base_url(request, house.settings), code, tokens, [battler])[battler.id]
    return Response(qr_svg(link), media_type="image/svg+xml", headers={"cache-control": "no-store"})


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else None


async def _read_limited(request: Request, limit: int = MAX_REQUEST_BYTES) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the request is larger than {limit} bytes")
    return body
