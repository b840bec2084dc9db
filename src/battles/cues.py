"""Host commands from the crew's desk (docs/protocol.md, "Cues from the crew's desk").

A cue is a host socket's command in another envelope: over HTTP, ``POST
/api/battles/CODE/commands`` with the host's or co-host's token as a bearer token
(``battles.api.post_command``); over OSC, a UDP datagram to the optional listener that
the ``osc_listen`` setting opens, for theatre cue desks. Both go through ``answer``:
the token read as the socket's handshake reads it, then the frame parsed by
``protocol.decode`` and run by ``Hub.command``, exactly as a console's socket has it
(the same refusals, the log with host or co-host as the actor, the ``seq`` rules and the
fan-out to every socket). Only two things are a cue's own: its ``seq`` may be
``"current"``, for a button that sends a fixed body, and moderation stays at the console.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, cast

from pythonosc.osc_message import OscMessage, ParseError
from pythonosc.osc_message_builder import OscMessageBuilder

from battles import protocol
from battles.errors import Refused
from battles.model import Battle, Language
from battles.protocol import Role
from battles.ratelimit import client_address
from battles.security import current_secrets, same_secret
from battles.services import Services

log = logging.getLogger("battles.cues")

# The HTTP status of a refused cue (docs/protocol.md, the table under "Cues from the crew's
# desk"); every reason not named here is the battle's state refusing the command: 409.
STATUS: dict[str, int] = {
    "bad_json": 422,
    "binary_frame": 422,
    "unknown_type": 422,
    "bad_message": 422,
    "seq_required": 422,
    "bad_token": 401,
    "link_revoked": 401,
    "not_allowed": 403,
    "not_a_cue": 403,
    "no_battle": 404,
    "rate_limited": 429,
    "internal": 500,
    "store_unavailable": 503,
}
CONFLICT_STATUS = 409
# /battles/CODE/COMMAND: an OSC address names the battle and the command.
OSC_ADDRESS = re.compile(r"/battles/(?P<code>[A-Za-z0-9]{1,16})/(?P<command>[a-z_]{1,32})")


@dataclass(frozen=True)
class Answer:
    """What a cue gets: the ``ack`` or ``error`` frame a host socket would get, its HTTP status."""

    status: int
    frame: str
    refusal: Refused | None = None


async def answer(house: Services, code: str, token: str | None, raw: bytes, sender: str, base_url: str) -> Answer:
    """Run one cue: ``raw`` is the command as a host socket sends it, ``token`` the host's or
    the co-host's, ``sender`` the client address its budget is counted against (the
    socket's budget, message_rate and message_burst, per address)."""
    language: Language = "en"  # until the battle says which
    request_id = None
    try:
        if await house.cues.take(sender) > 0:
            raise Refused("rate_limited")
        battle, role = await _console_of(house, code, token)
        language = battle.language
        envelope, message = protocol.decode(_text(raw), role, cue=True)
        request_id = envelope.id
        if message.type not in protocol.HOST_COMMANDS:
            raise Refused("not_a_cue")  # moderation, pings, resyncs: a console's (docs/protocol.md)
        generation = battle.cohost_generation
        assert envelope.seq is not None  # decode refuses a command without one
        _, _, ack = await house.hub.command(
            code, role, message, envelope.seq, request_id, base_url,
            lambda now: role == "cohost" and now.cohost_generation != generation,
        )  # fmt: skip
        return Answer(200, ack)
    except Refused as refusal:
        request_id = refusal.params.pop("request_id", request_id)
        log.info("a cue for %s from %s was refused: %s", code, sender, refusal.reason)
        status = STATUS.get(refusal.reason, CONFLICT_STATUS)
        return Answer(status, house.hub.error(language, refusal, request_id), refusal)
    except Exception:
        log.exception("a cue for %s from %s failed", code, sender)
        failed = Refused("internal")
        return Answer(STATUS["internal"], house.hub.error(language, failed, request_id), failed)


async def _console_of(house: Services, code: str, token: str | None) -> tuple[Battle, Role]:
    """The battle, and whose console the token opens: the host's, or the co-host's of the
    current generation (as ``admission`` knows a co-host on the host's endpoint)."""
    tokens, battle = await house.store.secrets(code), await house.store.load(code)
    if tokens is None or battle is None:
        raise Refused("no_battle")
    valid = current_secrets(tokens, battle.cohost_generation)
    if same_secret(token, valid.host):
        return battle, "host"
    if same_secret(token, valid.cohost):
        return battle, "cohost"
    raise Refused("bad_token")


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise Refused("bad_json") from None


# --- OSC -----------------------------------------------------------------------------


def osc_command(message: OscMessage) -> tuple[str, str | None, bytes]:
    """An OSC message read as a cue: the battle's code, the token and the command's JSON.

    ``/battles/CODE/COMMAND TOKEN SEQ [NAME VALUE]...``: the token first, then ``seq`` (an
    int, or "current"), then the command's fields as name and value pairs. A message
    that is not a cue raises ``Refused`` (``unknown_type``, ``bad_message``)."""
    code, command = osc_target(message.address)
    if code is None:
        raise Refused("unknown_type")
    arguments = list(message.params)
    token = arguments[0] if arguments and isinstance(arguments[0], str) else None
    document: dict[str, Any] = {"type": command}
    if len(arguments) > 1:
        document["seq"] = arguments[1]
    fields = arguments[2:]
    if len(fields) % 2 or not all(isinstance(name, str) and name not in document for name in fields[::2]):
        # The address names the command and the second argument is seq: no pair names them again.
        raise Refused("bad_message", detail="the fields come as name and value pairs after the token and seq")
    document |= dict(zip(fields[::2], fields[1::2], strict=True))
    try:
        raw = json.dumps(document).encode()
    except TypeError:  # a blob or a MIDI message: no field of a command is one
        raise Refused("bad_message", detail="a field's value is a blob") from None
    return code, token, raw


def osc_target(address: str) -> tuple[str | None, str | None]:
    """The battle's code (upper case) and the command an OSC address names; Nones when it
    names none."""
    path = OSC_ADDRESS.fullmatch(address)
    return (path["code"].upper(), path["command"]) if path else (None, None)


def osc_reply(code: str | None, cue: Answer) -> bytes:
    """``/battles/CODE/ack SEQ [ID]`` or ``/battles/CODE/error REASON MESSAGE [ID]``
    (``/battles/error ...`` when the address named no battle)."""
    frame = json.loads(cue.frame)
    builder = OscMessageBuilder(f"/battles/{code}/{frame['type']}" if code else f"/battles/{frame['type']}")
    for value in (frame["seq"],) if cue.refusal is None else (frame["reason"], frame["message"]):
        builder.add_arg(value)
    if frame.get("id") is not None:
        builder.add_arg(frame["id"])
    return builder.build().dgram


class OscCues(asyncio.DatagramProtocol):
    """The OSC listener: every datagram one cue, answered to its sender's address."""

    def __init__(self, house: Services, base_url: str) -> None:
        self.house, self.base_url = house, base_url
        self.transport: asyncio.DatagramTransport | None = None
        self._running: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport has the interface without the class
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        task = asyncio.create_task(self._answer(data, addr))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _answer(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        sender = client_address({"client": addr})
        if len(data) > self.house.settings.max_message_bytes:
            log.info("an OSC datagram from %s larger than max_message_bytes, dropped", sender)
            return
        try:
            message = OscMessage(data)
        except ParseError:
            # Not OSC, or a bundle: another program's traffic is not answered.
            log.info("an OSC datagram from %s that is no OSC message, dropped", sender)
            return
        code, _ = osc_target(message.address)  # where a refusal is answered, too
        try:
            code, token, raw = osc_command(message)
        except Refused as refusal:
            log.info("an OSC cue from %s to %s was refused: %s", sender, message.address, refusal.reason)
            cue = Answer(STATUS[refusal.reason], self.house.hub.error("en", refusal), refusal)
        else:
            cue = await answer(self.house, code, token, raw, sender, self.base_url)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(osc_reply(code, cue), addr)


def osc_address(setting: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``, as the ``osc_listen`` setting names it."""
    host, _, port = setting.rpartition(":")
    return host.strip("[]"), int(port)


async def listen(house: Services) -> asyncio.DatagramTransport | None:
    """Open the OSC listener when ``osc_listen`` names an address, else nothing. Every
    worker of ``battles serve --workers`` binds it with SO_REUSEPORT: the kernel hands
    each datagram to exactly one of them, and any worker runs any battle's command
    through the store (docs/protocol.md, OSC)."""
    settings = house.settings
    if not settings.osc_listen:
        return None
    # The links a revocation's ack would carry are never sent over OSC (plain UDP), so
    # the listener's base address is only the server's own.
    base_url = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: OscCues(house, base_url), local_addr=osc_address(settings.osc_listen), reuse_port=True
    )
    log.info("OSC cues on udp %s", settings.osc_listen)
    return transport
