"""The benchmark's command, end to end and small: it runs, reports, and its loss check bites.

Not the benchmark itself (docs/performance.md: `python -m bench`, minutes long); this
runs its quick mode on 100 sockets with a fault injected: after the flood, three
acknowledged ballots are removed from each server's store before the check, which
must then report them lost and exit with status 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("picows", reason="the bench extra is not installed: pip install -e '.[bench]'")
pytest.importorskip("socketio", reason="the bench extra is not installed: pip install -e '.[bench]'")


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
    figures = json.loads(Path(f"{out}.json").read_text())["results"]
    for kind in ("engine", "b0", "p1"):
        assert figures[kind]["connected"] == 100
        # The burst is checked without the fault: nothing is lost there.
        assert figures[kind]["burst"]["acked"] == 100 and figures[kind]["burst"]["lost"] == 0
        assert figures[kind]["flood"]["acked"] == 100 and figures[kind]["flood"]["lost"] == 3
        assert figures[kind]["phase"]["p99"] is not None and figures[kind]["phase_missing"] == 0
        assert figures[kind]["storm"]["dropped"] > 0
    assert figures["engine"]["server_metrics"]["battles_ballots_total[counted]"] >= 100


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
