"""One message to many sockets: the frame is built once and the same bytes go to each.

What uvicorn does per socket. ``battles serve`` runs uvicorn's ``websockets-sansio``
protocol (the lighter of its two websockets implementations: no task per connection
for reading or pinging, timers instead). Each ASGI ``websocket.send`` of a text there:
waits for the transport to be writable, encodes the text to UTF-8, builds a frame
(header plus a copy of the payload), joins the output and writes it. Through
Starlette and a per-socket writer task, an update to 10,000 phones was 10,000 task
wake-ups, 10,000 UTF-8 encodes and 10,000 frame builds of the same text.

``FanOutProtocol`` is that protocol with one addition: each websocket's ASGI scope
carries an extension, ``battles.frames``, whose ``write`` puts ready-made frame bytes
on the socket's transport at once, and answers False instead when it cannot (the
handshake is not done, a close was sent or received, or the transport is paused
because the client does not read: backpressure). ``Outgoing`` builds a message's
frame bytes once, for every socket that gets it. ``hub.Connection`` writes through
the extension when it can and otherwise queues the text for the ordinary ASGI send,
so a slow socket still fills its bounded queue and is closed (1013).

Writing a whole frame outside the protocol object is sound here because the protocol
never leaves a frame half written: every ``send`` of uvicorn's drains the protocol's
output into the transport in the same step, so frames from both paths interleave
whole, in order. Per-message compression must be off (``battles serve`` turns it
off): a frame built once cannot be compressed per connection, so ``write`` answers
False when an extension was negotiated.

Under another server, or uvicorn's other protocols, the extension is absent and
every message takes the ordinary path.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

EXTENSION = "battles.frames"


class Outgoing:
    """A text message for one or many sockets: its frame is built on first use, once."""

    __slots__ = ("text", "_frame")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._frame


class FanOutProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, plus ``battles.frames`` in the scope."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][EXTENSION] = {"write": self.write_frame, "abort": self.abort}

    async def send(self, message: Any) -> None:
        await super().send(message)
        # A handshake refused with an HTTP status (401, 403, 404, 429: security.py's
        # refuse_handshake) is finished once its body is out, but this protocol never
        # marks it so, and logs "ASGI callable returned without completing handshake"
        # at ERROR for every refusal (Kludex/uvicorn#3138). Mark it, as uvicorn's wsproto
        # protocol does.
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # Break the reference cycles a closed socket leaves, so that reference counting
        # frees it now instead of the next full garbage collection, which app.py's
        # hold_many_sockets makes a hundred times rarer: measured, 10,000 sockets closed
        # for an oversized frame left about 30 MB behind (tests/test_security.py). The
        # cycles: our own scope extension holds bound methods of this protocol; the
        # websockets parser is a generator suspended on this protocol after an abnormal
        # close, and its error's traceback holds the parser's frame. Nothing reads any
        # of them once the connection is gone.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(EXTENSION, None)
        self.conn.parser.close()
        if self.conn.parser_exc is not None:
            self.conn.parser_exc.__traceback__ = None

    def keepalive_timeout(self) -> None:
        """A peer that stopped answering pings is cut off, not closed politely: the close
        frame is written, and then the connection dropped with whatever it still holds.
        A polite close waits for the send buffers to drain, and a phone gone without a
        reset (out of the venue's Wi-Fi while updates were on their way) never takes
        them: it stayed in the hall's count until TCP gave up, minutes later
        (tests/test_faults.py)."""
        super().keepalive_timeout()
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once, unsent bytes and all (``hub.Connection`` cuts off
        a socket that fell behind and did not take its close frame). The ASGI app then
        hears ``websocket.disconnect`` as for any lost connection."""
        if not self.disconnected:
            self.transport.abort()

    def write_frame(self, frame: bytes) -> bool:
        """Write one whole frame now; False when this socket cannot take it now."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.conn.extensions
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True
