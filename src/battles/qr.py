"""The QR code of a battle's join link, ``GET /qr/CODE.svg``: only for a battle that
exists, each drawn once and kept (docs/security.md, QR codes only for battles)."""

from __future__ import annotations

import functools
import io

import segno
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from battles.creation import CODE_SHAPE
from battles.services import base_url, services
from battles.views import links

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
