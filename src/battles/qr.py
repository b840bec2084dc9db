"""The QR code of a battle's join link, ``GET /qr/CODE.svg``, and of its remote join link,
``GET /qr/CODE/watch.svg``: only for a battle that exists, each drawn once and kept
(docs/security.md, QR codes only for battles)."""

from __future__ import annotations

import functools
import io

import segno
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from battles.creation import CODE_SHAPE
from battles.services import base_url, services
from battles.views import links, watch_link

# A join link of QR_MAX_LINK characters takes about 20 ms to draw (segno, measured);
# each is drawn once and kept, up to QR_CACHE links (about 4 KB each).
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


async def qr_code(request: Request) -> Response:
    return await _join_qr(request, "join")


async def watch_qr_code(request: Request) -> Response:
    """``GET /qr/CODE/watch.svg``: the remote join link's, while the battle's remote link is
    on (docs/protocol.md, "The remote audience"); a 404 while it is off."""
    return await _join_qr(request, "watch")


async def _join_qr(request: Request, link: str) -> Response:
    # Only a code of the real shape that names a battle gets a QR code; anything
    # else is a 404, which LookupGuard counts like any guessed code.
    house = services(request)
    code = request.path_params["code"].upper()
    battle = await house.store.load(code) if CODE_SHAPE.fullmatch(code) else None
    if battle is None:
        raise HTTPException(404, "no battle has that code")
    if link == "watch" and not battle.rules.remote:
        raise HTTPException(404, "the remote link of this battle is off")
    here = base_url(request, house.settings)
    address = links(here, code)["join"] if link == "join" else watch_link(here, code)
    if len(address) > QR_MAX_LINK:
        raise HTTPException(404, "no QR code for a join link this long: set public_url")
    return Response(qr_svg(address), media_type="image/svg+xml")
