"""The ``battles`` command, run as a person runs it."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import segno

from tests.clients import Client
from tests.helpers import FOUR, to_the_vote
from tests.servers import RedisServer, Server, free_port
from tests.test_stores import wipe


def test_serve_on_every_interface_prints_links_and_a_qr_code_that_phones_can_use(tmp_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "battles.cli", "serve", "--host", "0.0.0.0", "--port", str(port),
        "--store", f"sqlite:///{tmp_path / 'battles.sqlite3'}", "--demo",
    ]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if k != "BATTLES_PUBLIC_URL"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "Application startup complete" not in (output := (tmp_path / "serve.log").read_text()):
            assert server.poll() is None and time.monotonic() < deadline, output
            time.sleep(0.1)
        said = re.search(r"reach this machine at (\S+) \(interface (\S+)\)", output)
        assert said, output
        address, interface = said.groups()
        # The address is one of that interface's, and the interface is up.
        assert address in [a.address for a in psutil.net_if_addrs()[interface]]
        assert psutil.net_if_stats()[interface].isup and not address.startswith("127.")
        links = dict(re.findall(r"^  (\w+) +(http\S+)$", output, re.MULTILINE))
        assert set(links) == {"join", "host", "cohost", "screen", "overlay", "results"}
        # Each battler's own link, with the battler's name (the demo has four).
        battlers = re.findall(r"^  (b\d+) +(http\S+)  \((.+)\)$", output, re.MULTILINE)
        assert [battler for battler, _, _ in battlers] == ["b1", "b2", "b3", "b4"], output
        assert all(
            urlsplit(link).path == urlsplit(links["join"]).path.replace("/join/", "/battler/")
            for _, link, _ in battlers
        )
        assert httpx.get(battlers[0][1], timeout=10).status_code == 200
        assert all(urlsplit(link).netloc == f"{address}:{port}" for link in links.values())
        # Reachable at that address (the server listens on every interface).
        assert httpx.get(links["join"], timeout=10).status_code == 200
        # The QR code of the join link, drawn in the terminal.
        drawn = io.StringIO()
        segno.make(links["join"], error="m").terminal(out=drawn, compact=True)
        assert drawn.getvalue() in output
        # Pages opened by that address hand out that address (and its QR code).
        created = httpx.post(f"http://{address}:{port}/api/battles", json={"title": "Later"}, timeout=10)
        assert created.status_code == 201
        assert urlsplit(created.json()["links"]["join"]).netloc == f"{address}:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        log.close()


def battles(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``battles ARGUMENTS...`` as an operator types it."""
    return subprocess.run([sys.executable, "-m", "battles.cli", *arguments], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kind", ["embedded", "redis"])
async def test_backup_wipe_restore_and_the_evening_goes_on(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        redis_server.start()
        redis_server.flush()
        store = redis_server.url
    else:
        store = f"sqlite:///{tmp_path / 'battles.sqlite3'}"
    server = Server(store, tmp_path / "server.log").start()
    try:
        created = server.create_battle(title="The night before", battlers=FOUR, rules={"vote_seconds": 600})
        code, token = created["code"], created["host_token"]
        host = await Client.connect(server.ws_url, "host", code, token)
        heckler = await Client.connect(server.ws_url, "audience", code)
        heard = await heckler.request({"type": "submit", "kind": "challenge", "text": "Plant a forest"})
        assert heard["type"] == "ack", heard
        assert (await host.request({"type": "moderate", "submission": heard["submission"], "action": "block"}))[
            "type"
        ] == "ack"
        await heckler.close()
        vote_id = await to_the_vote(host)
        phones = [await Client.connect(server.ws_url, "audience", code) for _ in range(3)]
        receipts = []
        for n, (phone, choice) in enumerate(zip(phones, ["b1", "b2", "b2"])):
            reply = await phone.vote(vote_id, choice, ballot_id=f"first-ballot-{n}")
            assert reply["type"] == "ballot", reply
            receipts.append(reply["receipt"])
        devices = [phone.device for phone in phones]
        for client in (host, *phones):
            await client.close()

        # The export, as the HTTP API gives it to the host.
        exported = battles("export", code.lower(), "--store", store, "--output", str(tmp_path / "evening.json"))
        assert exported.returncode == 0, exported.stderr
        auth = {"authorization": f"Bearer {token}"}
        over_http = httpx.get(f"{server.url}/api/battles/{code}/export.json", headers=auth, timeout=10).json()
        assert json.loads((tmp_path / "evening.json").read_text()) == over_http
        as_csv = battles("export", code, "--format", "csv", "--store", store, "--output", str(tmp_path / "evening.csv"))
        assert as_csv.returncode == 0, as_csv.stderr
        assert (tmp_path / "evening.csv").read_bytes() == httpx.get(
            f"{server.url}/api/battles/{code}/export.csv", headers=auth, timeout=10
        ).content
        missing = battles("export", "NOPE22", "--store", store, "--output", str(tmp_path / "none.json"))
        assert missing.returncode == 1 and "no battle has the code NOPE22" in missing.stderr
        assert not (tmp_path / "none.json").exists()

        backed_up = battles("backup", str(tmp_path / "backup.json"), "--store", store)
        assert backed_up.returncode == 0, backed_up.stderr
        assert "1 battles backed up" in backed_up.stdout

        # The store is lost.
        server.stop()
        wipe(store)
        garbage = tmp_path / "garbage.json"
        garbage.write_text('{"format": "something else"}')
        refused = battles("restore", str(garbage), "--store", store)
        assert refused.returncode == 1 and "not a backup" in refused.stderr
        restored = battles("restore", str(tmp_path / "backup.json"), "--store", store)
        assert restored.returncode == 0, restored.stderr
        assert restored.stdout.strip() == f"1 battles restored: {code}"
        again = battles("restore", str(tmp_path / "backup.json"), "--store", store)
        assert again.returncode == 1 and f"in the store already: {code}" in again.stderr

        # The evening goes on from where it was: the same links, the same phones.
        server.start()
        host = await Client.connect(server.ws_url, "host", code, token)
        assert host.battle["rounds"][-1]["votes"][-1] == over_http["battle"]["rounds"][-1]["votes"][-1]
        # The audience's challenge and the block came back with the battle.
        queue = await host.expect("submissions")
        assert queue["blocked"] == 1 and queue["items"] == over_http["submissions"]
        assert [(item["text"], item["status"]) for item in queue["items"]] == [("Plant a forest", "blocked")]
        phones = [await Client.connect(server.ws_url, "audience", code, device=device) for device in devices]
        assert [phone.device for phone in phones] == devices  # their signed ids still count
        # Their receipts too: the backup brought the key back (docs/security.md, receipts).
        assert [phone.my_ballot for phone in phones] == [
            {"vote_id": vote_id, "choice": c, "receipt": r} for c, r in zip(("b1", "b2", "b2"), receipts)
        ]
        # A resend of a ballot counted before the backup is counted once; a change replaces it.
        resent = await phones[0].vote(vote_id, "b1", ballot_id="first-ballot-0")
        assert resent["type"] == "ballot" and resent["choice"] == "b1"
        assert (await phones[1].vote(vote_id, "b3"))["type"] == "ballot"
        await host.run("close_vote")
        await host.run("reveal_results")
        assert host.battle["rounds"][-1]["votes"][-1]["totals"] == {"b1": 1, "b2": 1, "b3": 1, "b4": 0}
        for client in (host, *phones):
            await client.close()
    finally:
        server.stop()


def test_sigterm_drains_for_at_most_shutdown_drain_s(tmp_path: Path) -> None:
    """A request that never finishes (a body that stops arriving) holds the shutdown up
    for ``shutdown_drain_s`` and no longer."""
    # Both at once, each with its stalled request, stopped at the same instant.
    servers = {
        drain: Server(
            f"sqlite:///{tmp_path / f'battles-{drain}.sqlite3'}",
            tmp_path / f"server-{drain}.log",
            shutdown_drain_s=drain,
        )
        for drain in (2, 60)
    }
    stalled: list[socket.socket] = []
    stopped_after: dict[int, float | None] = {}
    try:
        for server in servers.values():
            stalled.append(socket.create_connection(("127.0.0.1", server.start().port)))
            stalled[-1].sendall(
                b"POST /api/battles HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"title": '
            )
        time.sleep(0.5)  # the requests are in the apps, reading their bodies
        began = time.monotonic()
        for server in servers.values():
            assert server.process is not None
            os.killpg(server.process.pid, signal.SIGTERM)
        for drain, server in servers.items():
            assert server.process is not None
            try:
                server.process.wait(max(0.0, began + 8 - time.monotonic()))
                stopped_after[drain] = time.monotonic() - began
            except subprocess.TimeoutExpired:
                stopped_after[drain] = None
    finally:
        for connection in stalled:
            connection.close()
        for server in servers.values():
            server.kill()
    assert stopped_after[60] is None  # still draining after 8 s: the request holds it
    assert stopped_after[2] is not None and 1.5 < stopped_after[2] < 6, stopped_after
