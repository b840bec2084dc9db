"""Generated messages (hypothesis) against the decoder and a live server on each store.

Messages are generated from the protocol's own schemas (``protocol.py``'s and
``commands.py``'s pydantic models, read as JSON Schema): valid ones, and near-valid
ones with one field changed in type, size or encoding (lone surrogates, NUL,
right-to-left marks), with a field too many, or sent by a role that may not send them.
Every message type goes to every role. Whatever a client sends:

- the decoder returns a message its role may send or raises ``Refused``;
- a real server answers with valid JSON of a known type, never ``internal``, and writes
  no traceback to its log;
- the socket stays open, unless a documented close code applies (1009 for a frame over
  ``max_message_bytes``, 4401 for a co-host whose link a generated ``revoke_cohost``
  revoked);
- refused input leaves the battle as it was (only the timer may move it meanwhile);
- ``/healthz`` stays about as fast as it was before the storm (a ratio of medians);
- afterwards a normal evening still works on that server.

CI runs it with a fixed seed in about a minute (both stores); ``FUZZ_ROUNDS=200`` runs
longer, with a random seed that a failure prints (docs/security.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from battles import commands, protocol
from battles.errors import Refused
from battles.i18n import REASONS, refusal_text
from battles.model import Data, plain_text
from tests.clients import follow
from tests.helpers import FOUR
from tests.servers import RedisServer, Server

ROLES = protocol.ROLES
KNOWN_TYPES = set(protocol.SERVER_MESSAGES)
LEAK = re.compile(r'Traceback|File "|\.py\b|/src/|site-packages|0x[0-9a-f]{6,}')
BATTLE = {"title": "Fuzz", "battlers": FOUR, "rules": {"vote_seconds": 600, "debate_seconds": 30}}
# Rounds of the live fuzzer: each sends one message of every type to every role.
ROUNDS = int(os.environ.get("FUZZ_ROUNDS", "0"))
CI_ROUNDS = 4

# --- messages from the schemas -------------------------------------------------------------


def message_models() -> dict[str, type[Data]]:
    """Every client message type and its model, found in the protocol's modules."""
    found: dict[str, type[Data]] = {}
    for module in (commands, protocol):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Data) and "type" in value.model_fields:
                schema = value.model_json_schema()
                found[schema["properties"]["type"]["const"]] = value
    assert set(found) == set(protocol.CLIENT_MESSAGES)
    return found


MODELS = message_models()
SCHEMAS = {kind: TypeAdapter(model).json_schema() for kind, model in MODELS.items()}
# Longest text a valid message carries, so that messages stay quick to send.
TEXT_CAP = 80


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for a (pydantic-made) JSON Schema: the subset the protocol uses."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of(*(from_schema(option, defs) for option in schema["anyOf"]))
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        low = schema.get("minLength", 0)
        return st.text(min_size=low, max_size=min(schema.get("maxLength", TEXT_CAP), TEXT_CAP)).filter(
            # Names are stripped, and submissions lose their invisible characters, before their
            # length counts (plain_text does both).
            lambda text: len(plain_text(text)) >= low
        )
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        item = from_schema(schema["items"], defs)
        return st.lists(item, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 5), 5))
    if kind == "object":
        properties = {name: from_schema(field, defs) for name, field in schema["properties"].items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: value for name, value in properties.items() if name in required},
            optional={name: value for name, value in properties.items() if name not in required},
        )
    raise AssertionError(f"a schema the fuzzer does not know: {schema}")


VALID = {kind: from_schema(schema, schema.get("$defs", {})) for kind, schema in SCHEMAS.items()}


def json_types(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        return json_types(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in schema:
        return set().union(*(json_types(option, defs) for option in schema["anyOf"]))
    return {schema.get("type", "string")}


# A value of each JSON type, the kinds a careless client sends: a number in words, a yes.
OF_TYPE: dict[str, list[Any]] = {
    "string": ["90", "yes", "true", ""],
    "integer": [90, 0, -1],
    "number": [1.5, -0.0],
    "boolean": [True, False],
    "null": [None],
    "array": [[], ["b1"]],
    "object": [{}, {"type": "ping"}],
}
# Text a person may not see or a server may not expect: lone surrogates, NUL, marks that
# turn text right to left, zero-width and combining characters, a byte order mark.
ODD_CHARACTERS = ["\ud800", "\udfff", "\x00", "\u202e", "\u200f", "\u2066", "\u200b", "\u0301", "\ufeff"]
MUTATIONS = ("valid", "type", "size", "encoding", "extra")


def near_valid(kind: str, mutation: str) -> st.SearchStrategy[dict[str, Any]]:
    """A valid message of ``kind``, then one field changed by ``mutation``."""
    return changed(kind, mutation).map(lambda pair: pair[1])


@st.composite
def changed(draw: st.DrawFn, kind: str, mutation: str) -> tuple[str, dict[str, Any]]:
    """The field changed, and the message (see ``near_valid``)."""
    message: dict[str, Any] = draw(VALID[kind])
    schema = SCHEMAS[kind]
    defs = schema.get("$defs", {})
    fields = {name: field for name, field in schema["properties"].items() if name != "type"}
    fields["id"] = {"type": "string", "maxLength": 64}  # the envelope's, on every message
    name = draw(st.sampled_from(sorted(fields)))
    field = fields[name]
    if mutation == "type":
        wrong = [
            value for kind_, values in OF_TYPE.items() if not json_types(field, defs) & {kind_} for value in values
        ]
        if "number" in json_types(field, defs):
            wrong = [value for value in wrong if not isinstance(value, int) or isinstance(value, bool)]
        message[name] = draw(st.sampled_from(wrong))
    elif mutation == "size":
        limits = field.get("anyOf", [field])[0]
        limits = defs.get(limits.get("$ref", "").rsplit("/", 1)[-1], limits)
        if limits.get("type") == "integer":
            message[name] = draw(
                st.sampled_from([limits.get("maximum", 2**63) + 1, limits.get("minimum", -(2**63)) - 1, 2**70])
            )
        elif limits.get("type") == "array":
            message[name] = ["b1"] * (limits.get("maxItems", 10) + draw(st.integers(1, 20)))
        else:
            longest = limits.get("maxLength", 2000)
            # Now and then past max_message_bytes (16 KiB): a documented close, 1009.
            message[name] = "x" * draw(st.sampled_from([longest + 1, longest + 50, 17_000]))
    elif mutation == "encoding":
        text = str(message.get(name) or "text")
        at = draw(st.integers(0, len(text)))
        message[name] = text[:at] + draw(st.sampled_from(ODD_CHARACTERS)) + text[at:]
    elif mutation == "extra":
        name = draw(st.sampled_from(["admin", "role", "battle", "Type", "\u202etype"]))
        message[name] = True
    return name, message


def frame_of(message: dict[str, Any]) -> str:
    # json.dumps writes a lone surrogate as its \u escape, as a careless client would.
    return json.dumps(message)


PAIRS = [(role, kind) for role in ROLES for kind in protocol.CLIENT_MESSAGES]
# Anything at all in one frame: JSON of any shape, any text, bytes, deep nesting.
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
garbage = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
)
any_message = st.tuples(st.sampled_from(sorted(MODELS)), st.sampled_from(MUTATIONS)).flatmap(
    lambda pick: near_valid(pick[0], pick[1]).map(frame_of)
)


# --- the decoder ------------------------------------------------------------------------


@settings(
    max_examples=200, deadline=None, database=None, derandomize=not ROUNDS, suppress_health_check=[HealthCheck.too_slow]
)
@given(raw=any_message | garbage, role=st.sampled_from(ROLES))
def test_the_decoder_accepts_a_message_of_the_role_or_refuses_it(raw: str | bytes, role: protocol.Role) -> None:
    try:
        envelope, message = protocol.decode(raw, role)
    except Refused as refusal:
        assert refusal.reason in REASONS and refusal.reason != "internal"
        json.dumps(refusal.params).encode()  # it goes to the client as it is, as UTF-8
        for language in ("da", "en"):
            assert refusal_text(language, refusal.reason, refusal.params)
        return
    assert message.type in protocol.ALLOWED[role]
    assert envelope.id is None or len(envelope.id) <= 64
    if message.type in protocol.HOST_COMMANDS:
        assert envelope.seq is not None and envelope.seq >= 0


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(data=st.data(), kind=st.sampled_from(sorted(MODELS)))
def test_valid_messages_decode_and_near_valid_ones_are_refused_with_bad_message(data: st.DataObject, kind: str) -> None:
    """The schema strategies are what they claim: a valid message decodes for a role that
    may send it; one changed in type or size, or with a field too many, is bad_message."""
    role = next(role for role in ROLES if kind in protocol.ALLOWED[role])
    envelope = {"seq": 0} if kind in protocol.HOST_COMMANDS else {}
    valid = data.draw(VALID[kind])
    assert protocol.decode(json.dumps({**valid, **envelope}), role)[1].type == kind
    field, broken = data.draw(changed(kind, data.draw(st.sampled_from(["type", "size", "extra"]))))
    if field == "id":
        return  # a bad id is dropped, and the message stands (docs/protocol.md, Envelope)
    with pytest.raises(Refused) as refused:
        protocol.decode(json.dumps({**broken, **envelope}), role)
    assert refused.value.reason == "bad_message"


@pytest.mark.parametrize("message_type", protocol.CLIENT_MESSAGES)
def test_the_documented_example_of_every_client_message_decodes(message_type: str) -> None:
    """docs/protocol.md's example of each message is accepted for a role that may send it
    (edit_battler and remove_battler once failed here: they named the battler in "id",
    which the envelope takes as the request's)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    example = re.search(r"```json\n(.*?)\n```", text.split(f"#### `{message_type}`\n", 1)[1], re.DOTALL)
    assert example is not None
    role = next(role for role in ROLES if message_type in protocol.ALLOWED[role])
    envelope, message = protocol.decode(example.group(1), role)
    assert message.type == message_type
    assert envelope.id == json.loads(example.group(1)).get("id")


# --- a live server ----------------------------------------------------------------------


class Fuzzer:
    """One socket per role on a real server, reopened when the server closes one."""

    def __init__(self, server: Server, created: dict[str, Any]) -> None:
        self.server, self.created = server, created
        self.http = httpx.Client(base_url=server.url, timeout=10)
        self.sockets: dict[str, ClientConnection] = {}
        self.opened = contextlib.ExitStack()
        self.seq = 0
        self.battle: dict[str, Any] = {}
        self.phases: set[str] = set()
        self.views: dict[int, tuple[int, dict[str, Any]]] = {}  # per socket: the seq and battle it built
        self.device: str | None = None
        self.replies = 0
        self.refused = 0
        self.closes: list[int | None] = []
        self.sent: set[tuple[str, str, str]] = set()  # (role, type, mutation)
        self.health: list[float] = []

    def socket(self, role: str) -> ClientConnection:
        current = self.sockets.get(role)
        if current is not None and current.close_code is None:
            return current
        if current is not None:
            self.closes.append(current.close_code)
        offer = ["battles.v1"]
        token = self.battler_token() if role == "battler" else self.created.get(f"{role}_token")
        if token:
            offer.append(f"auth.{token}")
        if role == "audience" and self.device:
            offer.append(f"device.{self.device}")
        opened = self.opened.enter_context(
            connect(f"{self.server.ws_url}/ws/{role}/{self.created['code']}", subprotocols=offer, open_timeout=10)  # type: ignore[arg-type]
        )
        self.sockets[role] = opened
        self.read_until(opened, "snapshot", None)
        return opened

    def read_until(
        self, socket: ClientConnection, kind: str, request_id: str | None, also: str = ""
    ) -> list[dict[str, Any]]:
        """Read and check every frame until the one of ``kind`` (or ``also``) with that id,
        if given; returns the errors read on the way."""
        errors = []
        while True:
            text = socket.recv(timeout=10)
            assert isinstance(text, str), "the server sends text frames only"
            message = json.loads(text)  # valid JSON, or this raises
            assert isinstance(message, dict) and message.get("type") in KNOWN_TYPES, text[:200]
            self.replies += 1
            if message["type"] == "error":
                assert message["reason"] in REASONS and message["reason"] != "internal", message
                assert not LEAK.search(json.dumps(message, ensure_ascii=False)), message
                errors.append(message)
            if message["type"] == "welcome" and message.get("device"):
                self.device = message["device"]
            if message["type"] in ("snapshot", "update"):
                held_seq, held = self.views.get(id(socket), (-1, {}))
                battle = follow(held_seq, held, message)
                assert battle is not None, ("an update that does not apply", held_seq, message)
                self.views[id(socket)] = (message["seq"], battle)
                if message["seq"] >= self.seq:
                    self.seq, self.battle = message["seq"], battle
                    self.phases.add(battle["phase"])
            if message["type"] == "ack" and "links" in message:  # a generated revoke_cohost
                self.created["cohost_token"] = message["links"]["cohost"].split("#", 1)[1]
            if "battler_links" in message:  # a host's snapshot, the ack of a revoke_battler
                self.created["battler_links"] = message["battler_links"]
            if message["type"] in (kind, also) and (request_id is None or message.get("id") == request_id):
                return errors

    def battler_token(self) -> str:
        """The token of the link of a battler still on the roster (a generated
        remove_battler may have taken the first one off)."""
        on_roster = {b["id"] for b in self.battle.get("battlers", [])}
        links = self.created["battler_links"]
        return str(next(link for bid, link in links.items() if not on_roster or bid in on_roster).split("#", 1)[1])

    def state(self) -> dict[str, Any]:
        """The battle's public state (GET /api/battles/CODE)."""
        answer = self.http.get(f"/api/battles/{self.created['code']}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def log(self) -> list[dict[str, Any]]:
        """The battle's event log, as the host's export has it."""
        auth = {"authorization": f"Bearer {self.created['host_token']}"}
        answer = self.http.get(f"/api/battles/{self.created['code']}/export.json", headers=auth)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["battle"]["log"])

    def hint(self, message: dict[str, Any]) -> dict[str, Any]:
        """Now and then the battle's real ids where the schema allows any, so that valid
        messages meet the rules, not only the patterns."""
        battlers = [b["id"] for b in self.battle.get("battlers", [])] or ["b1"]
        rounds = self.battle.get("rounds") or [{}]
        votes = rounds[-1].get("votes") or [{}]
        real = {"vote_id": votes[-1].get("id"), "choice": battlers[self.replies % len(battlers)]}
        real["battler"] = real["choice"]
        return {k: real.get(k) or v if k in real and isinstance(v, str) else v for k, v in message.items()}

    def throw(self, role: str, kind: str, mutation: str, message: dict[str, Any], number: int) -> None:
        socket = self.socket(role)
        if kind in protocol.HOST_COMMANDS and "seq" not in message:
            message = {**message, "seq": self.seq}
        if mutation == "valid":
            message = self.hint(message)
        before = self.state()
        self.sent.add((role, kind, mutation))
        try:
            socket.send(frame_of(message))
            # A ping behind it: once its pong is in, every answer to the frame is too.
            marker = f"after-{number}"
            socket.send(json.dumps({"type": "ping", "t": number, "id": marker}))
            errors = self.read_until(socket, "pong", marker)
        except ConnectionClosed:
            # Only a close the protocol names: a frame over the size limit, or the host
            # (a generated revoke_cohost, revoke_battler or remove_battler) revoked the link.
            revocable = role in ("cohost", "battler") and socket.close_code == 4401
            assert socket.close_code == 1009 or revocable, socket.close_code
            errors = [{"reason": "closed"}] if socket.close_code == 1009 else []
        if errors:
            self.refused += 1
            after = self.state()
            if after["version"] != before["version"]:
                # Only the clock may have moved it meanwhile: a vote's time ran out.
                moves = self.log()[-(after["version"] - before["version"]) :]
                assert {entry["actor"] for entry in moves} == {"timer"}, (message, errors, moves)
            else:
                assert after == before, (message, errors)

    def healthz(self) -> None:
        started = time.perf_counter()
        assert self.http.get("/healthz").status_code == 200
        self.health.append(time.perf_counter() - started)

    def advance(self, number: int) -> None:
        """The host moves the show one step on, so that generated messages meet every phase:
        lobby, turns, the debate, open and closed votes, reveals, eliminations, the final."""
        phase, rnd = self.battle["phase"], (self.battle["rounds"] or [None])[-1]
        votes = [v for v in rnd["votes"] if v["status"] != "voided"] if rnd else []
        status = votes[-1]["status"] if votes else None
        command: dict[str, Any] = {"type": "start_round"}  # lobby, elimination
        if phase in ("challenge", "turn", "debate"):
            command = {"type": "next"}
        elif phase == "vote" and status == "open":
            # A ballot before the close, so that reveals have totals to show.
            vote = votes[-1]
            choice = vote["choices"][number % len(vote["choices"])]
            ballot = {"type": "vote", "vote_id": vote["id"], "choice": choice, "ballot_id": f"drive-{number:08d}"}
            self.socket("audience").send(json.dumps(ballot))
            command = {"type": "close_vote"}
        elif phase == "vote":
            command = {"type": "reveal_results" if status == "closed" else "open_vote"}
        elif phase == "reveal":
            proposal = rnd["proposal"]
            if proposal["method"] == "runoff":
                command = {"type": "open_vote"}
            else:
                command = {"type": "confirm_elimination", "battlers": proposal["tied"][: proposal["need"]] or None}
        elif phase == "final":
            command = {"type": "undo_elimination"}
        elif phase == "finished":
            # A generated end_battle finished it: go on with a fresh battle.
            self.renew()
            return
        request_id = f"drive-{number}"
        host = self.socket("host")
        host.send(json.dumps({**command, "seq": self.seq, "id": request_id}))
        self.read_until(host, "ack", request_id, also="error")

    def renew(self) -> None:
        """Move every socket to a new battle (its own tokens; the device id stays)."""
        self.opened.close()
        self.opened, self.sockets = contextlib.ExitStack(), {}
        self.created = self.server.create_battle(**BATTLE)
        self.seq, self.battle = 0, {}
        self.socket("host")

    def close(self) -> None:
        self.opened.close()
        self.http.close()


@pytest.fixture(params=["embedded", "redis"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fuzzer]:
    """A real server on each store, its battle, and a socket per role."""
    if request.param == "embedded":
        store = f"sqlite:///{tmp_path / 'battles.sqlite3'}"
    else:
        redis: RedisServer = request.getfixturevalue("redis_server")
        redis.start()
        redis.flush()
        store = redis.url
    # Generous message limits: this is about what the frames say, not how many there are.
    server = Server(store, tmp_path / "server.log", message_rate=1000, message_burst=1000).start()
    fuzzer = Fuzzer(server, server.create_battle(**BATTLE))
    fuzzer.socket("host")
    yield fuzzer
    fuzzer.close()
    server.stop()


def test_a_live_server_takes_every_generated_message_without_a_fault(live: Fuzzer) -> None:
    """Every message type to every role, valid and near-valid, through every phase."""
    for _ in range(20):
        live.healthz()
    before = statistics.median(live.health)
    live.health.clear()
    numbers = iter(range(10**9))

    @settings(
        max_examples=ROUNDS or CI_ROUNDS,
        derandomize=not ROUNDS,
        # No shrinking: a live server's state moves on, so a smaller replay is another
        # test; the failure is reported as generated, with its messages in the log.
        phases=[Phase.explicit, Phase.generate],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one_round(data: st.DataObject) -> None:
        for role, kind in PAIRS:
            number = next(numbers)
            mutation = data.draw(st.sampled_from(MUTATIONS))
            message = data.draw(near_valid(kind, mutation))
            live.throw(role, kind, mutation, message, number)
            if number % 8 == 0:
                live.advance(number)
                live.healthz()

    one_round()
    # /healthz answered about as fast during the storm as before it.
    during = statistics.median(live.health)
    assert during < 10 * before, (before, during)
    # Every message type reached every role, and every kind of change was tried.
    assert {(role, kind) for role, kind, _ in live.sent} == set(PAIRS)
    assert {mutation for _, _, mutation in live.sent} == set(MUTATIONS)
    assert live.refused > len(PAIRS) and live.replies > 3 * len(PAIRS)
    # The generated messages met the show in its phases, not only in the lobby.
    assert {"turn", "vote", "reveal"} <= live.phases, live.phases
    the_server_still_serves_an_evening(live.server)


def the_server_still_serves_an_evening(server: Server) -> None:
    assert server.process is not None and server.process.poll() is None
    health = httpx.get(f"{server.url}/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    # A normal evening still works on a fresh battle: host, phone, vote, reveal.
    created = server.create_battle(title="After the storm", battlers=FOUR)
    code = created["code"]
    host_url, phone_url = f"{server.ws_url}/ws/host/{code}", f"{server.ws_url}/ws/audience/{code}"
    with (
        connect(host_url, subprotocols=["battles.v1", f"auth.{created['host_token']}"]) as host,  # type: ignore[list-item]
        connect(phone_url, subprotocols=["battles.v1"]) as phone,  # type: ignore[list-item]
    ):
        seq = 0
        for command in ("start_round", "next", "next", "next", "next", "open_vote"):
            host.send(json.dumps({"type": command, "seq": seq, "id": command + str(seq)}))
            while True:
                reply = json.loads(host.recv(timeout=10))
                if reply.get("id") == command + str(seq):
                    assert reply["type"] == "ack", reply
                    seq = reply["seq"]
                    break
        phone.send(
            json.dumps({"type": "vote", "vote_id": "r1v1", "choice": "b2", "ballot_id": "after-the-fuzz", "id": "v"})
        )
        while (reply := json.loads(phone.recv(timeout=10))).get("id") != "v":
            pass
        assert (reply["type"], reply["status"]) == ("ballot", "counted")
    log = server.log_path.read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
