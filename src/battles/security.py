"""Who may connect, and as whom.

- Host, co-host and screen links carry long random tokens (``stores.base.Secrets``),
  compared in constant time and never put in a URL the server sees: pages keep them
  in the fragment and hand them over in the websocket subprotocol list, so no access
  log can hold them.
- An audience device gets a signed device id when it first joins and keeps it in the
  browser; the signature stops a phone from inventing other devices' ids.
- ``Origins`` refuses a websocket handshake from a foreign page before the app
  sees it (after django/channels' ``OriginValidator``); ``HostGuard``, when
  ``public_url`` is set, refuses any request to a name that is not the server's (DNS
  rebinding).
- A co-host link can be revoked: the battle counts its co-host generations, and the
  co-host token of generation N > 0 is derived from the battle's secrets, so every
  process agrees on it without another stored secret (``cohost_token``).
- Each battler's own link is revoked the same way, by its battler's link generation
  (``battler_token``).
- ``SecretsFilter`` keeps tokens and signed device ids out of every log line, the
  websockets library's debug dump of handshakes and frames included.

See docs/security.md for the threat model.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from battles.stores.base import Secrets

AUTH_PREFIX = "auth."
DEVICE_PREFIX = "device."
PAGE_PREFIX = "page."  # the join page's mark (battles.anomalies.page_mark)


def same_secret(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def cohost_token(tokens: Secrets, generation: int) -> str:
    """The co-host token valid in co-host generation ``generation`` of a battle.

    Generation 0 is the stored token. Each ``revoke_cohost`` moves the battle to the
    next generation, whose token is an HMAC keyed with the host token: 256 bits that
    only the server and the host can compute, so a revoked co-host, who knew only
    earlier co-host tokens, cannot work out the next one.
    """
    if generation == 0:
        return tokens.cohost
    return _derived(tokens, f"cohost:{generation}:{tokens.cohost}")


def battler_token(tokens: Secrets, battler_id: str, generation: int) -> str:
    """The token of battler ``battler_id``'s own link in its link generation ``generation``
    (docs/security.md): an HMAC keyed with the host token, as a later co-host generation's,
    so every process computes it without storing it, a battler cannot work out another
    battler's, and ``revoke_battler`` makes the next one."""
    return _derived(tokens, f"battler:{battler_id}:{generation}:{tokens.screen}")


def results_token(tokens: Secrets) -> str:
    """The results link's token: it reads the export (docs/security.md), nothing else.

    An HMAC keyed with the host token, like a later co-host generation's: every process
    computes the same one without storing it, and it tells nothing about the host
    token, so sharing the results does not share the console.
    """
    return _derived(tokens, f"results:{tokens.screen}")


def _derived(tokens: Secrets, label: str) -> str:
    """A token derived from the host token: the HMAC of ``label``, URL-safe, unpadded."""
    mac = hmac.new(tokens.host.encode(), label.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def current_secrets(tokens: Secrets, cohost_generation: int) -> Secrets:
    """The battle's tokens as they are valid now (the co-host's of the current generation)."""
    return Secrets(host=tokens.host, screen=tokens.screen, cohost=cohost_token(tokens, cohost_generation))


async def refuse_handshake(
    scope: Scope, send: Send, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Refuse a websocket handshake with an HTTP status, before anything is set up.

    Browsers only see a failed connection; programs (and the tests) see the status.
    A server without the ASGI denial-response extension answers 403 instead.
    """
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})
        return
    body = text.encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


def offered(scope: Scope, prefix: str) -> str | None:
    """The value a client offered as subprotocol ``prefix + value``, if any."""
    for item in scope.get("subprotocols", []):
        if item.startswith(prefix):
            return str(item[len(prefix) :])
    return None


class DeviceIds:
    def __init__(self, signing_key: bytes) -> None:
        self._serializer = URLSafeSerializer(signing_key, salt="device")

    def mint(self) -> tuple[str, str]:
        """A new device: (device id, signed form the phone keeps)."""
        device = secrets.token_urlsafe(12)
        return device, str(self._serializer.dumps(device))

    def verify(self, signed: str | None) -> str | None:
        if not signed:
            return None
        try:
            device = self._serializer.loads(signed)
        except BadSignature:
            return None
        return device if isinstance(device, str) else None


class Origins:
    """Which pages may open a websocket here: a handshake from any other is refused (HTTP 403).

    Allowed: the server's own pages (an Origin whose host is the Host header, under
    either scheme), and the origins in the ``allowed_origins`` setting and of
    ``public_url``. A handshake without Origin comes from a program, not a page, and
    passes unless its User-Agent claims to be a browser (every browser sends Origin
    on a websocket handshake).
    """

    def __init__(self, allowed: Iterable[str]) -> None:
        self.allowed = {origin.rstrip("/").lower() for origin in allowed}

    def allow(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            return not headers.get("user-agent", "").startswith("Mozilla/")
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        host = headers.get("host", "").lower()
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


# Names by which a server is always its own: a page on one of them is on this machine.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Probes address a process by whatever name its network gives it (Compose: app:8000),
# and answer nothing that a page on another site could use.
PROBE_PATHS = frozenset({"/healthz", "/metrics"})
WRONG_HOST = "Invalid host header"


def own_hosts(public_url: str | None, allowed_origins: Iterable[str]) -> list[str] | None:
    """The host names this server answers to: ``public_url``'s, those of
    ``allowed_origins`` and loopback; None (any name) when ``public_url`` is unset."""
    if not public_url:
        return None
    names = {urlsplit(url).hostname or "" for url in (public_url, *allowed_origins)}
    return sorted({f"[{name}]" if ":" in name else name for name in names if name} | set(LOOPBACK_HOSTS))


class Hosts:
    """This server's names, against DNS rebinding: a request or handshake whose Host is
    none of them is refused (HTTP 400).

    A page on evil.example whose name was made to point at this server sends Host and
    Origin both evil.example, so the rule of ``Origins`` (an Origin whose host is the
    Host header is the server's own page) lets it in. With the server's names known
    (``own_hosts``), the Host header is checked first. Unknown (None): any name.
    """

    def __init__(self, names: Iterable[str] | None) -> None:
        self.names = None if names is None else frozenset(name.lower() for name in names)

    def allow(self, scope: Scope) -> bool:
        if self.names is None:
            return True
        host = Headers(scope=scope).get("host", "").lower()
        # The name without its port: "[::1]:8000" is "[::1]", "example.org:80" is "example.org".
        name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
        return name in self.names


class HostGuard:
    """Wraps the app: an HTTP request to a name that is not the server's gets 400
    (``Hosts``), but the probes answer any name (``PROBE_PATHS``). A websocket's
    handshake is checked by battles.sockets, outside the wrappers."""

    def __init__(self, app: ASGIApp, hosts: Hosts) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS or self.hosts.allow(scope):
            await self.app(scope, receive, send)
            return
        await PlainTextResponse(WRONG_HOST, status_code=400)(scope, receive, send)


def _query_without_values(query: re.Match[str]) -> str:
    """``?lang=da&token=X&Y`` as ``?lang=[redacted]&token=[redacted]&[redacted]``."""
    parts = (part.partition("=") for part in query.group()[1:].split("&"))
    return "?" + "&".join(f"{name}=[redacted]" if equals else "[redacted]" if name else "" for name, equals, _ in parts)


# What must never reach a log: the credentials in the subprotocol list, the tokens in
# the fragment of a link, a bearer token, a signed device id in a welcome, and the
# values of a URL's query string, where a client may put a token by mistake
# (``/ws/host/CODE?token=...``): no page of ours puts one there, and the engine reads
# no query value worth logging (docs/security.md, "Secrets kept out of logs"). A query
# is a "?" right after a path's character, up to a space, a quote or a fragment.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"\b(auth|device)\.[A-Za-z0-9_.-]+"), r"\1.[redacted]"),
    (re.compile(r"#[A-Za-z0-9_-]+"), "#[redacted]"),
    (re.compile(r"(?i)\b(bearer)\s+\S+"), r"\1 [redacted]"),
    (re.compile(r'"device"\s*:\s*"[^"]*"?'), '"device":"[redacted]"'),
    (re.compile(r"(?<=[\w/.%~-])\?[^\s\"'#<>]+"), _query_without_values),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretsFilter(logging.Filter):
    """Rewrites every record so that no token or signed device id is written.

    The websockets library dumps handshake headers (the subprotocol list holds the
    tokens) and the start and end of every frame (a snapshot ends with the links) at
    debug level. Frames are replaced by their kind and size, since a cut-off token
    cannot be recognised; everything else, a traceback's text included, is redacted
    by pattern.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        frame = record.args[0] if isinstance(record.args, tuple) and len(record.args) == 1 else None
        if frame is not None and hasattr(frame, "opcode") and hasattr(frame, "data"):
            record.msg, record.args = "%s %s [%d bytes]", (record.msg[:1], frame.opcode.name, len(frame.data))
            return True
        if isinstance(record.args, tuple):
            # Each argument on its own first: uvicorn's access formatter reads them, not the
            # message (client, method, path with its query, HTTP version, status), and fails
            # on a record whose arguments were merged into its message.
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        try:
            text = record.getMessage()
        except Exception:
            return True
        redacted = redact(text)
        # Not an access record's: its arguments are all it writes, redacted above, and a
        # path such as /api/bearer followed by the rest of the line is no secret to merge.
        if redacted != text and record.name != "uvicorn.access":
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            # Formatters write exc_text when it is set, instead of formatting exc_info.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_TRACEBACKS = logging.Formatter()


def keep_secrets_out_of_logs(level: str = "info") -> None:
    """Put ``SecretsFilter`` on every path a log record can take; call it after logging
    is set up (``create_app`` is, once uvicorn has configured its loggers).

    - every handler configured so far: uvicorn's and, when configured, the root's;
    - the ``battles`` loggers: when the root logger has no handler (as under
      ``battles serve``: uvicorn configures only its own), they get one of their own,
      writing to stderr at ``level``; without it their records went to Python's
      fallback handler, unfiltered, and below warning not at all;
    - Python's fallback handler (``logging.lastResort``), for any other library's
      records that find no handler.
    """
    battles = logging.getLogger("battles")
    if not logging.getLogger().handlers and not battles.handlers:
        to_stderr = logging.StreamHandler()
        to_stderr.setFormatter(logging.Formatter("%(levelname)s:%(name)s: %(message)s"))
        battles.addHandler(to_stderr)
        battles.setLevel(level.upper())
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict))]
    handlers = [handler for logger in loggers for handler in logger.handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if not any(isinstance(f, SecretsFilter) for f in handler.filters):
            handler.addFilter(SecretsFilter())
