"""What every endpoint shares: the ``Services`` that ``create_app`` makes once, and the
address the server is reached at."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

from starlette.requests import HTTPConnection
from starlette.templating import Jinja2Templates

from battles.hub import Hub
from battles.security import Hosts, Origins
from battles.settings import Settings
from battles.stores.base import AddressLimits, Store


@dataclass(frozen=True)
class Services:
    """What the endpoints share, made once by ``app.create_app`` and kept on ``app.state``
    (as Starlette's own examples keep theirs): each endpoint reads it from its request."""

    settings: Settings
    store: Store
    hub: Hub
    # Per client address, shared by every process of the store (battles.ratelimit): new
    # device ids, new battles, and lookups of join codes that do not exist.
    mints: AddressLimits
    creates: AddressLimits
    lookups: AddressLimits
    # Cues from the crew's desk, over HTTP and OSC (battles.cues): a socket's budget of
    # messages (message_rate, message_burst), per client address.
    cues: AddressLimits
    # The checks at the edge that a websocket's handshake makes itself (battles.sockets),
    # and the joins let in at a time (``join_concurrency``).
    origins: Origins
    hosts: Hosts
    joins: asyncio.Semaphore
    templates: Jinja2Templates
    catalogs_body: str
    catalogs_version: str


def services(connection: HTTPConnection) -> Services:
    return cast(Services, connection.app.state.services)


def base_url(connection: HTTPConnection, settings: Settings) -> str:
    """The server's own address for links: ``public_url`` when set, else what the
    request was sent to (a socket's ws:// or wss:// read as http:// or https://)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    url = connection.url
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return f"{scheme}://{url.netloc}"
