"""The security headers on every HTTP response (docs/security.md): a Content-Security-Policy
that lets a page run only its own scripts, no framing, no MIME sniffing, no referrer."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class SecurityHeaders:
    """Wraps the app: each HTTP response gets every header of ``SECURITY_HEADERS`` that
    its endpoint did not set itself."""

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


async def server_error(request: Request, error: Exception) -> Response:
    """The 500 of an unexpected error. Starlette makes it in ServerErrorMiddleware, outside
    every middleware, ``SecurityHeaders`` included, so it carries the headers itself."""
    return PlainTextResponse("Internal Server Error", status_code=500, headers=SECURITY_HEADERS)
