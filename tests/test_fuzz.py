"""Generated messages (hypothesis) against the decoder and a live server (issue 5, item 11).

Whatever a client sends, the decoder either returns a message its role may send or raises
``Refused``; and a real server answers every frame with valid JSON of a known type, never
a traceback, and keeps serving everyone else.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from battles import commands, protocol
from battles.errors import Refused
from battles.i18n import REASONS, refusal_text
from battles.model import Data
from tests.servers import Server

ROLES: tuple[protocol.Role, ...] = ("host", "cohost", "screen", "audience")
KNOWN_TYPES = set(protocol.SERVER_MESSAGES)
LEAK = re.compile(r'Traceback|File "|\.py\b|/src/|site-packages|0x[0-9a-f]{6,}')
FOUR = [{"name": f"Battler {n}", "vision": f"Vision {n}"} for n in range(1, 5)]
BATTLE = {"title": "Fuzz", "battlers": FOUR, "rules": {"vote_seconds": 600, "debate_seconds": 30}}

# --- what a client might send ------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included: json.dumps writes them, and they are not JSON
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Values a real message might carry, so generated messages get past the first checks.
plausible = {
    "id": st.text(max_size=70) | st.integers(),
    "seq": st.integers(min_value=-3, max_value=60) | st.just("CURRENT") | json_values,
    "t": st.floats() | st.integers() | st.text(max_size=5),
    "language": st.sampled_from(["da", "en", "de", ""]),
    "vote_id": st.sampled_from(["r1v1", "r1v2", "r2v1", "r999v999", "rv", "r1v1 "]),
    "choice": st.sampled_from(["b1", "b2", "b3", "b4", "b9", "b999", "B1", ""]),
    "ballot_id": st.from_regex(r"[A-Za-z0-9_-]{0,70}", fullmatch=True),
    "kind": st.sampled_from(["applause", "fire", "idea", "yawn", "tomato"]),
    "battler": st.sampled_from(["b1", "b2", "b5", "x"]),
    "battlers": st.lists(st.sampled_from(["b1", "b2", "b3", "b4", "b7"]), max_size=4),
    "nickname": st.text(max_size=40),
    "challenge": st.text(max_size=60),
    "text": st.text(max_size=60),
    "reason": st.text(max_size=60),
    "seconds": st.integers(min_value=-5, max_value=700),
    "name": st.text(max_size=70),
    "vision": st.text(max_size=150),
    "affiliation": st.text(max_size=20),
    "title": st.text(max_size=150),
    "topic": st.text(max_size=20),
    "scenario": st.text(max_size=60),
    "rules": st.fixed_dictionaries(
        {},
        optional={
            "turn_seconds": st.integers(-1, 4000),
            "vote_seconds": st.integers(-1, 4000),
            "order": st.sampled_from(["roster", "random", "rotating", "chaos"]),
            "ties": st.sampled_from(["runoff", "host", "engagement", "coin"]),
            "reactions": st.lists(st.sampled_from(["applause", "yawn", "boo"]), max_size=3),
            "live_totals": json_values,
        },
    ),
}
structured = st.fixed_dictionaries(
    {"type": st.sampled_from(protocol.CLIENT_MESSAGES) | st.text(max_size=12)},
    optional={key: value | json_values for key, value in plausible.items()},
)


def shapes() -> dict[str, list[str]]:
    """Every client message type and its own fields, read from the schemas."""
    found: dict[str, list[str]] = {}
    for module in (commands, protocol):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Data) and "type" in value.model_fields:
                (kind,) = get_args(value.model_fields["type"].annotation)
                found[kind] = [name for name in value.model_fields if name != "type"]
    assert set(found) == set(protocol.CLIENT_MESSAGES)
    return found


# Well-formed messages with plausible values, so that commands really move the battle on.
shaped = st.sampled_from(sorted(shapes().items())).flatmap(
    lambda shape: st.fixed_dictionaries(
        {"type": st.just(shape[0]), "seq": st.just("CURRENT")},
        optional={name: plausible.get(name, json_values) for name in shape[1]},
    )
)
documents = st.one_of(shaped, structured, json_values)
# One websocket frame: a JSON document, any text, or any bytes.
frames = st.one_of(
    documents.map(lambda document: ("json", document)),
    st.text(max_size=200).map(lambda text: ("text", text)),
    st.binary(max_size=200).map(lambda data: ("bytes", data)),
    st.integers(1, 3000).map(lambda depth: ("text", "[" * depth + "]" * depth)),
)


def raw(frame: tuple[str, Any], seq: int = 0) -> str | bytes:
    kind, value = frame
    if kind != "json":
        return value  # type: ignore[no-any-return]
    if isinstance(value, dict) and value.get("seq") == "CURRENT":
        value = {**value, "seq": seq}
    return json.dumps(value)


# --- the decoder ------------------------------------------------------------------------


@settings(max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=frames, role=st.sampled_from(ROLES))
def test_the_decoder_accepts_a_message_of_the_role_or_refuses_it(frame: tuple[str, Any], role: protocol.Role) -> None:
    try:
        envelope, message = protocol.decode(raw(frame, 3), role)
    except Refused as refusal:
        assert refusal.reason in REASONS
        json.dumps(refusal.params)  # it goes to the client as it is
        for language in ("da", "en"):
            assert refusal_text(language, refusal.reason, refusal.params)
        return
    assert message.type in protocol.ALLOWED[role]
    assert envelope.id is None or len(envelope.id) <= 64
    if message.type in protocol.HOST_COMMANDS:
        assert envelope.seq is not None and envelope.seq >= 0


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
        self.sockets: dict[str, ClientConnection] = {}
        self.opened = contextlib.ExitStack()
        self.seq = 0
        self.battle: dict[str, Any] = {}
        self.phases: set[str] = set()
        self.device: str | None = None
        self.replies = 0
        self.closes: list[int | None] = []

    def socket(self, role: str) -> ClientConnection:
        current = self.sockets.get(role)
        if current is not None and current.close_code is None:
            return current
        if current is not None:
            self.closes.append(current.close_code)
        offer = ["battles.v1"]
        token = self.created.get(f"{role}_token")
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

    def read_until(self, socket: ClientConnection, kind: str, request_id: str | None, also: str = "") -> None:
        """Read and check every frame until the one of ``kind`` (or ``also``) with that id, if given."""
        while True:
            text = socket.recv(timeout=10)
            assert isinstance(text, str), "the server sends text frames only"
            message = json.loads(text)  # valid JSON, or this raises
            assert isinstance(message, dict) and message.get("type") in KNOWN_TYPES, text[:200]
            self.replies += 1
            if message["type"] == "error":
                assert message["reason"] in REASONS and message["reason"] != "internal", message
                assert not LEAK.search(json.dumps(message, ensure_ascii=False)), message
            if message["type"] == "welcome" and message.get("device"):
                self.device = message["device"]
            if message["type"] in ("snapshot", "update") and message["seq"] >= self.seq:
                self.seq, self.battle = message["seq"], message["battle"]
                self.phases.add(self.battle["phase"])
            if message["type"] == "ack" and "links" in message:  # a generated revoke_cohost
                self.created["cohost_token"] = message["links"]["cohost"].split("#", 1)[1]
            if message["type"] in (kind, also) and (request_id is None or message.get("id") == request_id):
                return

    def throw(self, role: str, frame: tuple[str, Any], number: int) -> None:
        socket = self.socket(role)
        try:
            socket.send(raw(frame, self.seq))
            # A ping behind it: once its pong is in, every answer to the frame is too.
            marker = f"after-{number}"
            socket.send(json.dumps({"type": "ping", "t": number, "id": marker}))
            self.read_until(socket, "pong", marker)
        except ConnectionClosed:
            # Only a close the protocol names: a frame over the size limit, or the host
            # (a generated revoke_cohost) revoked the co-host link.
            assert socket.close_code == 1009 or (role, socket.close_code) == ("cohost", 4401), socket.close_code

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


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    folder = tmp_path_factory.mktemp("fuzz")
    # Generous message limits: this is about what the frames say, not how many there are.
    server = Server(
        f"sqlite:///{folder / 'battles.sqlite3'}", folder / "server.log", message_rate=1000, message_burst=1000
    ).start()
    fuzzer = Fuzzer(server, server.create_battle(**BATTLE))
    fuzzer.socket("host")
    yield fuzzer
    fuzzer.close()
    server.stop()


_numbers = iter(range(10**9))


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(frame=frames, role=st.sampled_from(ROLES))
def test_a_live_server_answers_generated_messages_without_a_traceback(
    live: Fuzzer, frame: tuple[str, Any], role: str
) -> None:
    number = next(_numbers)
    live.throw(role, frame, number)
    if number % 2:
        live.advance(number)


def test_the_fuzzed_server_is_alive_and_still_serves(live: Fuzzer) -> None:
    """Runs after the fuzzing above (same module, same server)."""
    server = live.server
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
        phone.send(json.dumps({"type": "vote", "vote_id": "r1v1", "choice": "b2", "ballot_id": "after-the-fuzz", "id": "v"}))
        while (reply := json.loads(phone.recv(timeout=10))).get("id") != "v":
            pass
        assert (reply["type"], reply["status"]) == ("ballot", "counted")
    log = server.log_path.read_text()
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
    assert live.replies > 300
    # The generated messages met the show in its phases, not only in the lobby.
    assert {"turn", "vote", "reveal"} <= live.phases, live.phases
