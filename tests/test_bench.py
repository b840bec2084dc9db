"""The benchmark's command, end to end and small: it runs, reports, and its loss check bites.

Not the benchmark itself (docs/performance.md: `python -m bench`, minutes long); this
runs its quick mode on 100 sockets with a fault injected: after the flood, three
acknowledged ballots are removed from each server's store before the check, which
must then report them lost and exit with status 1. `python -m bench late`, whose figures
are bytes and so hold on any machine. And `python -m bench show` for a few
seconds and clicks: it prints both figures, and its slow phone and skewed phones are what
they say they are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NO_BENCH = "the bench extra is not installed: pip install -c requirements.lock -e '.[bench]'"
pytest.importorskip("picows", reason=NO_BENCH)
pytest.importorskip("socketio", reason=NO_BENCH)


@pytest.mark.timeout(120)
def test_the_quick_bench_runs_and_its_ballot_loss_check_can_fail(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    command = [
        sys.executable, "-m", "bench", "--quick", "--sockets", "100", "--hold", "0.2", "--burst-seconds", "0.2",
        "--reconnect-jitter", "0.2", "--inject-loss", "3", "--out", str(out),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110, env={**os.environ})
    assert finished.returncode == 1, finished.stderr[-3000:]
    report = out.read_text()
    assert "| flood: ballots lost | 3 | 3 | 3 |" in report, report
    figures = json.loads(Path(f"{out}.json").read_text())["rounds"][0]
    for kind in ("engine", "b0", "p1"):
        assert figures[kind]["connected"] == 100
        # The burst is checked without the fault: nothing is lost there.
        assert figures[kind]["burst"]["acked"] == 100 and figures[kind]["burst"]["lost"] == 0
        assert figures[kind]["flood"]["acked"] == 100 and figures[kind]["flood"]["lost"] == 3
        assert figures[kind]["phase"]["p99"] is not None and figures[kind]["phase_missing"] == 0
        assert figures[kind]["storm"]["dropped"] > 0
    assert figures["engine"]["server_metrics"]["battles_ballots_total[counted]"] >= 100
    # The ceiling and the peer sent updates as large as the engine's (docs/performance.md).
    engine_bytes = figures["engine"]["phase_update_bytes"]
    assert len(engine_bytes) == 7 and figures["b0"]["phase_update_bytes"] == engine_bytes, figures
    assert all(p1 >= engine for p1, engine in zip(figures["p1"]["phase_update_bytes"], engine_bytes, strict=True))


@pytest.mark.timeout(120)
def test_the_late_evening_bench_measures_one_change_against_the_whole_view(tmp_path: Path) -> None:
    # Bytes, not times: what one change costs does not depend on the machine's load.
    out = tmp_path / "late.md"
    command = [sys.executable, "-m", "bench", "late", "--phones", "9", "--out", str(out)]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110, env={**os.environ})
    assert finished.returncode == 0, finished.stderr[-3000:]
    figures = json.loads(Path(f"{out}.json").read_text())
    assert (figures["battlers"], figures["round"], figures["log_entries"]) == (10, 6, 150)
    sent, whole = figures["update_bytes"], figures["whole_view_bytes"]
    assert sent["phone"] == sent["screen"] <= 512 and sent["host"] <= 1500 and sent["announcement"] <= 2048, sent
    assert whole["phone"] > 10 * sent["phone"] and whole["host"] > 20 * sent["host"], (sent, whole)
    assert "| phone |" in out.read_text()


@pytest.mark.timeout(150)
def test_the_show_bench_prints_both_figures_with_its_slow_and_skewed_phones(tmp_path: Path) -> None:
    out = tmp_path / "show.md"
    command = [
        sys.executable,
        "-m",
        "bench",
        "show",
        "--seconds",
        "4",
        "--actions",
        "6",
        "--settle",
        "1",
        "--out",
        str(out),
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=140, env={**os.environ})
    assert finished.returncode == 0, finished.stderr[-3000:]
    report = out.read_text()
    assert "| countdown spread, max over" in report and "| host click to screen change, p99 |" in report, report
    figures = json.loads(Path(f"{out}.json").read_text())
    spread, clicks = figures["spread"], figures["click_to_screen"]
    assert spread["flips"] >= 2 and spread["spread_max_ms"] is not None and spread["baseline_seconds"] >= 2
    assert clicks["measured"] == 6 and clicks["missed"] == 0 and clicks["p99_ms"] is not None
    clocks = spread["clocks"]
    # The proxy adds its 300 ms to phone 4's every round trip; the skewed phones found their offset.
    assert clocks["phone 4 (+300 ms)"]["best_rtt_ms"] >= 300
    for name in ("phone 2 (+7 s)", "phone 3 (-4 s)"):
        assert abs(clocks[name]["offset_error_ms"]) <= clocks[name]["best_rtt_ms"] / 2 + 1, clocks


@pytest.mark.timeout(120)
def test_the_parser_bench_runs_both_parsers() -> None:
    """``python -m bench.parser`` (docs/performance.md, hiredis): small, both ways; each
    child checks that it ran with the parser asked for and that every ballot counted."""
    command = [sys.executable, "-m", "bench.parser", "--ballots", "300", "--concurrency", "50", "--rounds", "1"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "ballots_per_s  hiredis" in finished.stdout and "ratio" in finished.stdout


@pytest.mark.timeout(120)
def test_the_replication_bench_runs_both_settings() -> None:
    """``python -m bench.replication`` (docs/operations.md, wait_replicas), small."""
    command = [sys.executable, "-m", "bench.replication", "--ballots", "300", "--concurrency", "50", "--rounds", "1"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "wait_replicas 0:" in finished.stdout and "wait_replicas 1:" in finished.stdout
