"""The websocket protocol: every message in both directions, and their schemas.

Every frame is one JSON object with a ``type``. A client may add an ``id`` (up to 64
characters) to any message; the reply to it (``ack``, ``ballot``, ``error``, ``pong``,
``snapshot``) carries the same ``id``. Host commands also carry ``seq``: the battle
version the host decided on. docs/protocol.md describes each message with an
example, and tests/test_docs.py fails when one is missing there.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from battles.commands import BattlerId, Command, ReviseVision, SubmissionId
from battles.errors import Refused
from battles.model import Data, Language, Moderation, Nickname, Reaction, SubmissionKind, SubmissionText

PROTOCOL_VERSION = "battles.v1"
# The subprotocol entry a remote phone's socket offers besides PROTOCOL_VERSION: the
# audience of the stream, whose vote windows follow its delay (docs/protocol.md).
REMOTE = "battles.remote"
# Who a socket is, from its address (docs/protocol.md, Connecting), in the order the hall
# is counted in (``presence``). Every list of roles derives from this one.
Role = Literal["audience", "screen", "host", "cohost", "battler"]
ROLES: tuple[Role, ...] = get_args(Role)
# The roles that run the show: they see the event log, the host's notes and the live totals.
HOST_ROLES: tuple[Role, ...] = ("host", "cohost")
RequestId = Annotated[str, StringConstraints(max_length=64)]
# A cue's ``seq`` may name no version (docs/protocol.md, "Cues from the crew's desk"): a
# button sends a fixed body, so the server reads the version, and commits at it.
CURRENT = "current"
Seq = int | Literal["current"]
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


class Ping(Data):
    """Clock sync: the reply ``pong`` echoes ``t`` and adds the server's time."""

    type: Literal["ping"]
    t: float = Field(allow_inf_nan=False)  # echoed in the pong, which must stay JSON


class Resync(Data):
    """Ask for a fresh ``snapshot`` (after a gap in ``seq``)."""

    type: Literal["resync"]


class SetLanguage(Data):
    """The language of this connection's error messages."""

    type: Literal["set_language"]
    language: Language


class CastVote(Data):
    type: Literal["vote"]
    # A round's vote (r2v1), or a stance poll (opening1, closing3: docs/rules.md, "Who moved minds").
    vote_id: Annotated[str, StringConstraints(pattern=r"^(r[0-9]{1,3}v|opening|closing)[0-9]{1,3}$")]
    choice: Annotated[str, StringConstraints(pattern=r"^(b[0-9]{1,3}|undecided)$")]
    ballot_id: Token


class React(Data):
    type: Literal["react"]
    kind: Reaction
    battler: Annotated[str, StringConstraints(pattern=r"^b[0-9]{1,3}$")] | None = None


class SetNickname(Data):
    type: Literal["set_nickname"]
    nickname: Nickname  # shown with the person's submissions: invisible characters go


class Submit(Data):
    """A challenge or a question from a phone, for the moderators (docs/rules.md, "The
    audience takes part"); sent under the socket's nickname unless ``anonymous``."""

    type: Literal["submit"]
    kind: SubmissionKind
    text: SubmissionText
    anonymous: bool = False
    battler: BattlerId | None = None  # a question's addressee; default: the speaker


class Moderate(Data):
    """A moderator's decision on a submission: not a host command (it changes no battle
    version, so it carries no ``seq``); what reaches the screen is ``show_submission``."""

    type: Literal["moderate"]
    submission: SubmissionId
    action: Moderation


# The longest stream delay a remote phone may send (set_delay); the battle's maximum caps it.
MAX_DELAY_MS = 120_000


class SetDelay(Data):
    """A remote phone's stream delay, measured from the sync cue or nudged by its viewer
    (docs/protocol.md, "The remote audience"); answered with the delay the server keeps."""

    type: Literal["set_delay"]
    delay_ms: int = Field(ge=0, le=MAX_DELAY_MS)


Common = Ping | Resync | SetLanguage
AudienceMessage = Annotated[Common | CastVote | React | SetNickname | Submit | SetDelay, Field(discriminator="type")]
ScreenMessage = Annotated[Common, Field(discriminator="type")]
# A battler's own link revises its vision and nothing else (docs/security.md, the parties).
BattlerMessage = Annotated[Common | ReviseVision, Field(discriminator="type")]
HostMessage = Annotated[Common | Moderate | Command, Field(discriminator="type")]

_ADAPTERS: dict[Role, TypeAdapter[Any]] = {
    "audience": TypeAdapter(AudienceMessage),
    "screen": TypeAdapter(ScreenMessage),
    "host": TypeAdapter(HostMessage),
    "cohost": TypeAdapter(HostMessage),
    "battler": TypeAdapter(BattlerMessage),
}
_ANY = TypeAdapter(
    Annotated[
        Common | CastVote | React | SetNickname | Submit | SetDelay | Moderate | Command, Field(discriminator="type")
    ]
)


def _types(adapter: TypeAdapter[Any]) -> frozenset[str]:
    return frozenset(adapter.json_schema()["discriminator"]["mapping"])


# Commands only the host may send: a co-host runs the show but cannot revoke the
# co-host link or a battler's (game.py refuses them too, for any caller of the core).
HOST_ONLY = frozenset({"revoke_cohost", "revoke_battler"})
ALLOWED: dict[Role, frozenset[str]] = {role: _types(adapter) for role, adapter in _ADAPTERS.items()}
ALLOWED["cohost"] = ALLOWED["cohost"] - HOST_ONLY
CLIENT_MESSAGES: tuple[str, ...] = tuple(sorted(_types(_ANY)))
HOST_COMMANDS: tuple[str, ...] = tuple(sorted(_types(TypeAdapter(Command))))
ServerMessage = Literal[
    "welcome",
    "snapshot",
    "update",
    "tally",
    "engagement",
    "presence",
    "ack",
    "ballot",
    "pong",
    "error",
    "service",
    "submissions",
    "submission",
    "your_submission",
    "flags",
]
SERVER_MESSAGES: tuple[str, ...] = get_args(ServerMessage)


class Envelope(Data):
    """What every client message may carry besides its own fields."""

    id: RequestId | None = None
    seq: Annotated[int, Field(ge=0)] | Literal["current"] | None = None


def decode(raw: str | bytes, role: Role, cue: bool = False) -> tuple[Envelope, Any]:
    """Parse one frame for a role, or raise ``Refused`` saying what is wrong with it.
    ``cue``: a command from the crew's desk (``battles.cues``), whose ``seq`` may be
    ``"current"``; a socket's never is.

    The envelope is read first, so that even a refusal can name the request's ``id``.
    Fields are validated strictly (docs/protocol.md, Envelope): ``"90"`` is not an
    integer and ``"yes"`` or ``1`` is not a boolean.
    """
    document = _document(raw)
    unicode = not (isinstance(raw, str) and _LONE_SURROGATE.search(raw)) or _unicode(document)
    envelope = _envelope(document, cue)
    if not unicode:
        # JSON may escape half of a UTF-16 pair ("\ud800"); Python reads it into a str
        # that cannot be written as UTF-8, so a reply echoing it could not be sent
        # (docs/protocol.md, Envelope: text is Unicode). No field may hold one.
        raise _with_id(Refused("bad_message", detail="text that is not Unicode (a lone surrogate)"), envelope)
    kind = document.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_MESSAGES:
        raise _with_id(Refused("unknown_type"), envelope)
    if kind not in ALLOWED[role]:
        raise _with_id(Refused("not_allowed", role=role), envelope)
    if kind in HOST_COMMANDS and envelope.seq is None:
        raise _with_id(Refused("seq_required"), envelope)
    try:
        message = _ADAPTERS[role].validate_python(document, strict=True)
    except ValidationError as error:
        raise _with_id(Refused("bad_message", detail=_first_problem(error)), envelope) from None
    return envelope, message


def request_id(raw: str | bytes) -> str | None:
    """The ``id`` of a frame that will not be decoded (it was rate limited), if any."""
    try:
        return _envelope(_document(raw)).id
    except Refused:
        return None


# A JSON escape of a UTF-16 surrogate: the only way a text frame, which is UTF-8 by
# RFC 6455, can carry text that is not Unicode; only frames holding one are checked.
_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _document(raw: str | bytes) -> dict[str, Any]:
    if not isinstance(raw, str):
        # docs/protocol.md: every frame is a JSON text frame.
        raise Refused("binary_frame")
    try:
        document = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        # RecursionError: a frame of max_message_bytes can nest arrays 16,000 deep.
        raise Refused("bad_json") from None
    if not isinstance(document, dict):
        raise Refused("bad_json")
    return document


def _envelope(document: dict[str, Any], cue: bool = False) -> Envelope:
    """Take ``id`` and ``seq`` out of the document. A malformed one is dropped rather
    than failing the whole message, so that the error reply can still be read."""
    request = document.pop("id", None)
    seq = document.pop("seq", None)
    valid_id = isinstance(request, str) and len(request) <= 64 and _unicode(request)
    # strict: not a bool, a float or "3"
    valid_seq = (type(seq) is int and 0 <= seq < 2**63) or (cue and seq == CURRENT)
    return Envelope(id=request if valid_id else None, seq=seq if valid_seq else None)


def _unicode(value: Any) -> bool:
    """True when ``value`` can be written as UTF-8 (it holds no lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON: accepted, a ping's ``t`` would come back in a pong
    # that no client can parse.
    raise ValueError(f"{name} is not JSON")


def _with_id(refusal: Refused, envelope: Envelope) -> Refused:
    refusal.params["request_id"] = envelope.id
    return refusal


def _first_problem(error: ValidationError) -> str:
    problem = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in problem["loc"][1:]) or "message"
    return f"{where}: {problem['msg']}"


# --- server to client: every message the server sends is built here -----------------


def encode(message: dict[str, Any]) -> str:
    """One server message as the text frame every recipient gets, byte for byte."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _frame(kind: ServerMessage, **fields: Any) -> str:
    return encode({"type": kind, **fields})


def welcome(
    role: Role, code: str, server_ms: int, language: Language, device: str | None,
    limits: dict[str, int], reconnect: dict[str, Any], close_codes: dict[str, int],
) -> str:  # fmt: skip
    """``limits`` and ``close_codes``: the server's, so that no page keeps a copy (docs/protocol.md)."""
    return _frame(
        "welcome", protocol=PROTOCOL_VERSION, role=role, code=code, server_ms=server_ms, language=language,
        device=device, limits=limits, reconnect=reconnect, close_codes=close_codes,
    )  # fmt: skip


def snapshot(
    request_id: str | None, seq: int, server_ms: int, battle: dict[str, Any], tally: dict[str, Any] | None,
    engagement: dict[str, Any] | None, presence: dict[str, int], **for_role: Any,
) -> str:  # fmt: skip
    """``for_role``: ``my_ballot`` for phones, ``links`` and ``flags`` for hosts."""
    return _frame(
        "snapshot", id=request_id, seq=seq, server_ms=server_ms, battle=battle, tally=tally,
        engagement=engagement, presence=presence, **for_role,
    )  # fmt: skip


def update(seq: int, base: int, server_ms: int, patch: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    """Version ``seq``: ``patch`` turns the battle of version ``base`` into it (docs/protocol.md)."""
    return _frame("update", seq=seq, base=base, server_ms=server_ms, patch=patch, events=events)


def tally(view: dict[str, Any] | None) -> str:
    return _frame("tally", **(view or {}))


def flags(view: dict[str, Any]) -> str:
    """The anomaly flags of the vote under way, for hosts and co-hosts (battles.anomalies)."""
    return _frame("flags", **view)


def engagement(round_number: int, battlers: dict[str, Any]) -> str:
    return _frame("engagement", round=round_number, battlers=battlers)


def presence(counts: dict[str, int]) -> str:
    return _frame("presence", **counts)


def ack(request_id: str | None, **fields: Any) -> str:
    """``fields``: ``seq`` for host commands, ``links`` for revoke_cohost, ``nickname``."""
    return _frame("ack", id=request_id, **fields)


def ballot(request_id: str | None, vote_id: str, ballot_id: str, choice: str, status: str, receipt: str) -> str:
    return _frame(
        "ballot", id=request_id, vote_id=vote_id, ballot_id=ballot_id, choice=choice, status=status, receipt=receipt
    )


def pong(request_id: str | None, t: float, server_ms: int) -> str:
    return _frame("pong", id=request_id, t=t, server_ms=server_ms)


def error(request_id: str | None, reason: str, message: str, params: dict[str, Any]) -> str:
    return _frame("error", id=request_id, reason=reason, message=message, params=params)


def submissions(items: list[dict[str, Any]], blocked: int, blocks: list[dict[str, Any]]) -> str:
    """The moderation queue, to hosts and co-hosts after their snapshot (docs/protocol.md)."""
    return _frame("submissions", items=items, blocked=blocked, blocks=blocks)


def submission(item: dict[str, Any]) -> str:
    """One submission stored or changed, to hosts and co-hosts."""
    return _frame("submission", item=item)


def your_submission(submission_id: str, kind: str, text: str, outcome: str, message: str) -> str:
    """What became of a phone's own submission, to that phone (docs/protocol.md)."""
    fields = {"submission": submission_id, "kind": kind, "text": text, "outcome": outcome, "message": message}
    return encode({"type": "your_submission", **fields})


def service(store_ok: bool) -> str:
    return _frame("service", store="ok" if store_ok else "unavailable")
