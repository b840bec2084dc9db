"""One message to many sockets: the frame is built once and the same bytes go to each;
and ``Connection``, one socket's way out (its ``seq``, its held updates, its bounded queue).

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
frame bytes once, for every socket that gets it. ``Connection`` writes through
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

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode

from battles import metrics
from battles.anomalies import Trail
from battles.model import Battle, Language
from battles.protocol import Role

log = logging.getLogger("battles.fanout")

EXTENSION = "battles.frames"

# How long a socket that the server closes (it fell behind its send queue) gets to
# take the close frame and answer it before its connection is cut.
CLOSE_GRACE_S = 5.0


class Outgoing:
    """A text message for one or many sockets: its frame is built on first use, once."""

    __slots__ = ("_frame", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._frame


def _woken(waiters: list[asyncio.Future[None]]) -> list[asyncio.Future[None]]:
    """Wake every waiter (each looks again at what it waits for); none is left waiting."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    return []


class Mailbox:
    """What uvicorn's protocol asks of its queue of ASGI events (``put_nowait``, ``get``,
    ``empty``), in a list. An ``asyncio.Queue`` holds three deques and an ``Event`` with
    a fourth, 3 KB a socket for a queue that holds one event at a time (uvicorn pauses
    reading while one waits): a sixth of what Python allocates per socket
    (docs/performance.md, "Where a socket's memory goes")."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        self._waiters = _woken(self._waiters)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return self._items.pop(0)


class Flag:
    """What uvicorn's protocol asks of its ``asyncio.Event`` "writable" (``set``,
    ``clear``, ``is_set``, ``wait``), without the deque every ``Event`` holds (760 bytes
    a socket, for a flag that almost never has a waiter)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        self._waiters = _woken(self._waiters)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return True


class FanOutProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, plus ``battles.frames`` in the scope, and a
    lighter queue and writable flag (``Mailbox``, ``Flag``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Mailbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]

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
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake's request and response, with their headers, are read only up
            # to the accept (the scope holds what the app reads), yet were kept for the
            # socket's life: 2.5 KB of a socket's 28 (`python -m bench census`). The
            # request's headers are emptied too: websockets' parser keeps the request
            # object as long as the connection (2.2 KB more).
            self.request.headers.clear()
            del self.request, self.response

    def send_receive_event_to_app(self) -> None:
        """A text message that is not UTF-8 closes the socket with 1007 (RFC 6455,
        8.1), as uvicorn does, but in one line of the log: uvicorn logs a traceback at
        ERROR for each, a log flood that any client can start (tests/test_fanout.py).
        Checked before uvicorn decodes it again: a message is at most
        ``max_message_bytes``, a few microseconds of decoding."""
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                (self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)).decode()
            except UnicodeDecodeError:
                self.frames = []
                self.logger.info(
                    '%s - "WebSocket %s" 1007 (a text message that is not UTF-8)',
                    get_client_addr(self.scope),
                    get_path_with_query_string(self.scope),
                )
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # Break the reference cycles a closed socket leaves, so that reference counting
        # frees it now instead of the next full garbage collection, which gctuning.py's
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
        """Drop the connection at once, unsent bytes and all (``Connection`` cuts off
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


class Connection:
    """One socket: its role, its language and a bounded queue of outgoing frames.

    A socket that cannot keep up is closed (1013, try again later) once its queue is
    full, so a slow phone never holds the others back; it reconnects and gets a fresh
    snapshot.
    """

    def __init__(
        self,
        websocket: WebSocket,
        role: Role,
        code: str,
        language: Language,
        queue_size: int,
        device: str | None = None,
        new_device: str | None = None,
    ) -> None:
        self.websocket, self.role, self.code, self.language = websocket, role, code, language
        # An audience device's id, and the signed form to hand a device that joins anew.
        self.device, self.new_device = device, new_device
        # The newest version this socket was sent (snapshot or update), and the updates
        # that wait for its snapshot: held from the start, as the first snapshot is read.
        self.seq = -1
        self._held: list[tuple[int, Outgoing]] | None = []
        self.nickname = ""
        # The battle's co-host generation this socket was admitted under (revoke_cohost);
        # for a battler's own link, whose it is and its link generation (revoke_battler).
        self.cohost_generation = 0
        # A phone's key for its ballot receipts (battles.receipts), taken at its handshake,
        # and what its ballots tell the anomaly flags (battles.anomalies).
        self.receipt_key: bytes | None = None
        self.trail: Trail | None = None
        self.battler: str | None = None
        self.battler_generation = 0
        # A phone of the stream's audience (docs/protocol.md, "The remote audience").
        self.remote = False
        # Under `battles serve`, frames go straight to the socket while it keeps up
        # (FanOutProtocol.write_frame); the queue and its writer carry them while it does not,
        # and whenever they hold something, so that frames stay in order. They are
        # made on first need: most sockets never need them, and they were 3 KB each.
        self._queue_size = queue_size
        self._queue: asyncio.Queue[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        extensions = websocket.scope.get("extensions") or {}
        self._write_frame: Callable[[bytes], bool] | None = extensions.get(EXTENSION, {}).get("write")
        self._abort: Callable[[], None] | None = extensions.get(EXTENSION, {}).get("abort")
        self._sending = False
        # Set once the socket fell behind: its close can take the close handshake's
        # timeout (the peer reads nothing), and until the socket has gone every further
        # message must be dropped, not start another close and log it again.
        self._closing: asyncio.Task[None] | None = None

    def send(self, message: str | Outgoing) -> None:
        """Send a text, or a message built once for many sockets (``Outgoing``)."""
        if self._closing is not None:
            return
        idle = self._queue is None or (not self._sending and self._queue.empty())
        if self._write_frame is not None and idle:
            outgoing = message if isinstance(message, Outgoing) else Outgoing(message)
            if self._write_frame(outgoing.frame):
                metrics.frames_direct.add()
                return
        if self._queue is None:
            self._queue = asyncio.Queue(self._queue_size)
            self._writer = asyncio.create_task(self._write(self._queue))
        try:
            self._queue.put_nowait(message.text if isinstance(message, Outgoing) else message)
            metrics.frames_queued.add()
        except asyncio.QueueFull:
            log.info("closing a %s socket of %s that fell behind", self.role, self.code)
            self._stop_writer()
            self._closing = asyncio.create_task(self._close(1013))

    def deliver(self, seq: int, frame: Outgoing) -> None:
        """An update: held while a snapshot is read, then sent if newer than what it has."""
        if self._held is not None:
            self._held.append((seq, frame))
        elif seq > self.seq:
            self.seq = seq
            self.send(frame)

    def hold(self) -> None:
        """Updates wait from now until ``release``: a snapshot is being read."""
        if self._held is None:
            self._held = []

    def release(self, snapshot: tuple[int, str] | None) -> None:
        """Send the snapshot read meanwhile (None: it failed), then the newer updates held.

        The snapshot decides even at a lower version than this socket had: the store
        may have lost its newest changes (docs/protocol.md, "Reconnecting").
        """
        held, self._held = self._held or [], None
        if snapshot is not None:
            self.seq = snapshot[0]
            self.send(snapshot[1])
        elif self.seq < 0:
            return  # never had a snapshot: an update must not come first (docs/protocol.md)
        for seq, frame in held:
            self.deliver(seq, frame)

    def close(self, code: int) -> None:
        """Close the socket from the server's side, once; later messages are dropped."""
        if self._closing is None:
            self._stop_writer()
            self._closing = asyncio.create_task(self._close(code))

    def revoked(self, battle: Battle) -> bool:
        """True for a co-host or battler socket whose link the host revoked since it
        connected (or whose battler the host took off the roster)."""
        if self.role == "battler":
            battler = battle.battler(self.battler or "")
            return battler is None or battler.link_generation != self.battler_generation
        return self.role == "cohost" and self.cohost_generation != battle.cohost_generation

    def _stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()

    async def _write(self, queue: asyncio.Queue[str]) -> None:
        with contextlib.suppress(Exception):
            while True:
                text = await queue.get()
                self._sending = True  # dequeued, not yet written: send() must queue behind it
                await self.websocket.send_text(text)
                self._sending = False

    @property
    def closing(self) -> bool:
        """Closed by the server (fell behind, revoked): no longer counted, sent nothing."""
        return self._closing is not None

    async def _close(self, code: int) -> None:
        # A socket that fell behind does not read: its close frame may never go out
        # (uvicorn's send waits for the transport to drain) or never be answered, and
        # closing a transport waits to flush what it holds. It gets CLOSE_GRACE_S for
        # the close handshake, then its connection is cut, so that its buffers go and
        # the app hears the disconnect.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_GRACE_S):
                await self.websocket.close(code)
        await asyncio.sleep(CLOSE_GRACE_S)
        if self._abort is not None:
            self._abort()

    async def stop(self) -> None:
        if self._writer is None:
            return
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
