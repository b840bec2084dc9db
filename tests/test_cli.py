"""The ``battles`` command, run as a person runs it."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import segno

from tests.servers import free_port


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
        assert set(links) == {"join", "host", "cohost", "screen", "results"}
        assert all(urlsplit(link).netloc == f"{address}:{port}" for link in links.values())
        # Reachable at that address (the server listens on every interface).
        assert httpx.get(links["join"], timeout=10).status_code == 200
        # The QR code of the join link, drawn in the terminal.
        drawn = io.StringIO()
        segno.make(links["join"], error="m").terminal(out=drawn, compact=True)
        assert drawn.getvalue() in output
        # Battles created later hand out the same address, wherever the console was opened.
        created = httpx.post(f"http://127.0.0.1:{port}/api/battles", json={"title": "Later"}, timeout=10)
        assert created.status_code == 201
        assert urlsplit(created.json()["links"]["join"]).netloc == f"{address}:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        log.close()
