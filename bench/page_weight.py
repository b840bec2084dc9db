"""What a phone fetches to show /join/CODE: every response of a first load, compressed as
sent, and what a reload asks the server for (docs/performance.md, page weight).

    .venv/bin/python -m bench.page_weight [CHECKOUT]

runs `battles serve` from CHECKOUT's src/ and static/ (this checkout when left out, so an
older commit checked out elsewhere can be measured the same way) on a free port with its own
SQLite file, and opens a lobby's join page in Debian's Chromium at a phone's size.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from playwright.sync_api import Request, sync_playwright

from tests.browser import DEVICES, launch
from tests.servers import Server

ROOT = Path(__file__).resolve().parents[1]


def requests_seen(log: Path) -> list[str]:
    """The requests in the server's access log with their answers, oldest first
    ("GET /join/CODE HTTP/1.1 200 OK")."""
    lines = [line.split('"', 2) for line in log.read_text().splitlines() if '"GET ' in line and "/healthz" not in line]
    return [f"{request} {answer.strip()}" for _, request, answer in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", nargs="?", type=Path, default=ROOT, help="the checkout whose server to measure")
    checkout = parser.parse_args().checkout.resolve()
    os.environ["PYTHONPATH"] = str(checkout / "src")  # the server process imports that checkout's battles
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "server.log"
        server = Server(f"sqlite:///{folder}/battles.sqlite3", log).start()
        try:
            battlers = [{"name": name, "vision": f"The vision of {name}"} for name in ("Ada", "Bo", "Cy")]
            created = server.create_battle(title="Aarhus 2079", language="da", battlers=battlers)
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_context(**DEVICES["phone"]).new_page()
                loaded: list[Request] = []
                page.on("requestfinished", lambda request: loaded.append(request))
                page.goto(created["links"]["join"])
                page.wait_for_selector("#connection-badge[data-status=connected]")
                page.wait_for_load_state("networkidle")
                print(f"{'compressed':>10} {'plain':>7}  cache-control / address")
                for request in loaded:
                    response = request.response()
                    assert response is not None, request.url
                    cache = response.headers.get("cache-control", "-")
                    print(f"{request.sizes()['responseBodySize']:>10} {len(response.body()):>7}  {cache} {request.url}")
                total = sum(request.sizes()["responseBodySize"] for request in loaded)
                print(f"first load: {total} bytes compressed in {len(loaded)} responses")
                asked = requests_seen(log)
                loaded.clear()
                page.reload()
                page.wait_for_selector("#connection-badge[data-status=connected]")
                page.wait_for_load_state("networkidle")
                document = next(request for request in loaded if request.resource_type == "document")
                print(
                    f"a reload: the page {document.sizes()['responseBodySize']} bytes compressed; the server was asked for"
                )
                for line in requests_seen(log)[len(asked) :]:
                    print(f"  {line}")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
