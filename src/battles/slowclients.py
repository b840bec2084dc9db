"""HTTP connections that hold the server without asking anything: ``HeaderTimeoutProtocol``.

uvicorn closes a keep-alive connection that stays idle ``timeout_keep_alive`` seconds
after a response (``keep_alive_timeout``), but has no deadline for a request's headers:
a connection that sends nothing, or sends its headers a byte at a time, was held for
ever (tests/test_security.py opens such connections and sees them closed). Each costs a
socket, a protocol object and a file descriptor, so a script could exhaust them.

``HeaderTimeoutProtocol`` is uvicorn's httptools protocol (its default where httptools
is installed, as ``uvicorn[standard]`` does) with a clock: from the moment a connection
opens, and from the first byte of each later request on it, the request line and
headers must be in within ``header_timeout`` seconds, or the connection is closed.
Once the headers are in the clock stops: a request body, a response and an upgraded
websocket (pinged every ``ping_interval``) are not timed by it.
"""

from __future__ import annotations

import asyncio
import functools

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from battles.settings import Settings


@functools.cache
def header_timeout() -> float:
    # Read once per process, from the environment every worker shares (battles.cli).
    return Settings().header_timeout


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_clock()  # a later request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._stop_clock()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def _start_clock(self) -> None:
        if self._clock is None:
            self._clock = self.loop.call_later(header_timeout(), self._too_slow)

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def _too_slow(self) -> None:
        self._clock = None
        if not self.transport.is_closing():
            self.transport.close()
