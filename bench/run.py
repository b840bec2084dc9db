"""The benchmark, one command: the engine, B0 and P1 through the same scenarios.

    .venv/bin/python -m bench                   the full run: 10,000 sockets
    .venv/bin/python -m bench --quick           200 sockets, short holds (a smoke run)
    .venv/bin/python -m bench --sockets 20000   the stretch

It starts its own redis-server on a free port, then for each server (engine, B0, P1)
in turn: two server processes on one port on that Redis, the same load generator
processes (``--loadgens``, picows clients on 127.0.0.1), and these scenarios:

1. hold: N audience sockets joined and held ``--hold`` seconds; memory per socket is
   the growth of the server processes' RSS divided by N;
2. phase changes: the host moves the battle on seven times (start the round, four
   turns, the vote phase, open the vote); for every socket, the time from the host's
   send to that socket's ``update``: p50, p99, max;
3. vote burst: every socket votes once, spread evenly over ``--burst-seconds``:
   ack latency p50/p99, ballots per second, and ballots lost (the totals in the store
   against the acks received); then a flood: every socket changes its vote at the
   same instant, for ballots per second at saturation, and the loss check again;
4. vote to screen, during the burst: for each ack, the delay until the screen shows a
   ballot count at least as large as the number of ballots acknowledged by then
   (every one of them is stored, so the screen's count includes them);
5. reconnect storm: one of the two server processes is killed (and restarted by its
   supervisor); the time until each dropped socket is back with a snapshot.

Everything is bounded in time and stops by itself. It prints the table and, with
``--out FILE``, writes it and the raw figures (FILE.json). The exit status is 1 when a
ballot was lost (an acknowledged ballot missing from the store), 0 otherwise; a
missed target is reported, not fatal. ``--inject-loss K`` removes K ballots from the
store before the flood's check, so that a test can see the check fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import uvloop

from bench import loadgen
from bench.targets import TARGETS, RedisServer, Target, open_sockets, rss_bytes
from bench.wire import CHOICES, KINDS, NAMES, STEPS, Kind, public_battle


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float | None]:
    """p50, p99 and max in milliseconds (``scale`` 1000 from seconds)."""
    found = [v * scale for v in values]
    return {"p50": percentile(found, 50), "p99": percentile(found, 99), "max": max(found) if found else None}


class LoadGenerators:
    """The load generator processes and a call that reaches all of them."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for index in range(count):
            mine, theirs = context.Pipe()
            process = context.Process(target=loadgen.main, args=(theirs, index), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    async def call(self, index: int, op: str, *, answer_within: float = 120, **arguments: Any) -> dict[str, Any]:
        pipe = self.pipes[index]

        def rpc() -> dict[str, Any]:
            pipe.send({"op": op, **arguments})
            if not pipe.poll(answer_within):
                raise TimeoutError(f"load generator {index} did not answer {op} in {answer_within} s")
            answer: dict[str, Any] = pipe.recv()
            return answer

        answer = await asyncio.get_running_loop().run_in_executor(None, rpc)
        if "error" in answer:
            raise RuntimeError(f"load generator {index}, {op}: {answer['error']}")
        return answer

    async def all(self, op: str, per: list[dict[str, Any]] | None = None, **arguments: Any) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(self.call(i, op, **{**arguments, **(per[i] if per else {})}) for i in range(len(self.pipes)))
            )
        )

    async def quit(self) -> None:
        await self.all("quit")
        for process in self.processes:
            process.join(10)


class Run:
    """One server's run through the scenarios: what every scenario needs."""

    def __init__(self, target: Target, generators: LoadGenerators, options: argparse.Namespace) -> None:
        self.target, self.generators, self.options = target, generators, options
        sockets, loadgens = options.sockets, options.loadgens
        # The sockets each load generator holds, and the index of its first.
        self.shares = [sockets // loadgens + (1 if i < sockets % loadgens else 0) for i in range(loadgens)]
        self.firsts = [sum(self.shares[:i]) for i in range(loadgens)]
        self.settle = 0.2 if options.quick else 1.0  # pauses between scenarios, so one's tail is not in the next
        self.connected = 0


async def run_target(target: Target, generators: LoadGenerators, options: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"load_average_at_start": load_average()}
    run = Run(target, generators, options)
    await target.setup()
    await asyncio.sleep(run.settle)
    figures |= await hold(run)
    profilers = start_profiles(target, options.profile) if options.profile else []
    figures |= await phase_changes(run)
    figures |= await vote_burst(run)
    figures |= await flood(run)
    stop_profiles(profilers)
    figures |= await reconnect_storm(run)
    figures["load_average_at_end"] = load_average()
    figures["server_metrics"] = await target.metrics()
    if figures["server_metrics"]:
        log(f"  /metrics: {figures['server_metrics']}")
    await generators.all("close")
    await target.close()
    return figures


async def hold(run: Run) -> dict[str, Any]:
    """1. Hold N sockets: how many joined, and the memory each costs."""
    target = run.target
    before = rss_bytes(target.pids())
    joined = await run.generators.all(
        "connect", per=[{"count": n} for n in run.shares], kind=target.kind, url=target.url, code=target.code,
        concurrency=run.options.concurrency, timeout=30,
    )  # fmt: skip
    run.connected = connected = sum(j["connected"] for j in joined)
    figures: dict[str, Any] = {
        "connected": connected,
        "connect_failed": sum(j["failed"] for j in joined),
        "connect_errors": [e for j in joined for e in j["errors"]][:5],
        "connect_seconds": max(j["seconds"] for j in joined),
    }
    await asyncio.sleep(run.options.hold)
    after = rss_bytes(target.pids())
    figures["rss_before_mib"] = before / 2**20
    figures["rss_after_mib"] = after / 2**20
    figures["memory_per_socket_kib"] = (after - before) / max(connected, 1) / 1024
    figures["sockets_per_process"] = [open_sockets(pid) for pid in target.workers()]
    log(f"  open sockets per server process: {figures['sockets_per_process']}")
    log(f"  {connected} sockets held, {figures['memory_per_socket_kib']:.1f} KiB each")
    return figures


async def phase_changes(run: Run) -> dict[str, Any]:
    """2. The host moves the battle on seven times; each socket's delay to its update."""
    latencies: list[float] = []
    lasts: list[float] = []
    sizes: list[int | None] = []
    missing = 0
    for kind in STEPS:
        sent, seq = await (run.target.open_vote() if kind == "open_vote" else run.target.step(kind))
        times, size = await update_times(run, seq)
        sizes.append(size)
        got = [t - sent for t in times if t is not None]
        missing += run.connected - len(got)
        latencies += got
        lasts.append(max(got) if got else float("nan"))
        await asyncio.sleep(0.1 if run.options.quick else 0.3)
    figures = {
        "phase": summary(latencies),
        "phase_last_ms": [x * 1000 for x in lasts],
        "phase_missing": missing,
        "phase_update_bytes": sizes,  # each step's update frame as a phone received it
        "phase_update_bytes_total": sum(size or 0 for size in sizes),
    }
    log(
        f"  phase change p50 {ms(pick(figures, 'phase.p50'))}, p99 {ms(pick(figures, 'phase.p99'))}, max {ms(pick(figures, 'phase.max'))}, missing {missing}"
    )
    return figures


async def update_times(run: Run, seq: int) -> tuple[list[float | None], int | None]:
    """When each socket got update ``seq`` (waited for until every socket has it, up to
    20 s), and the bytes of its frame."""
    deadline = time.time() + 20
    while time.time() < deadline:
        if sum(h["have"] for h in await run.generators.all("have", seq=seq)) >= run.connected:
            break
        await asyncio.sleep(0.05)
    answers = await run.generators.all("update_times", seq=seq)
    size = next((answer["bytes"] for answer in answers if answer["bytes"] is not None), None)
    return [t for answer in answers for t in answer["times"]], size


async def vote_burst(run: Run) -> dict[str, Any]:
    """3 and 4. Every socket votes once over ``--burst-seconds``, and what the screen
    shows meanwhile."""
    screen = run.target.screen
    assert screen is not None
    await asyncio.sleep(run.settle / 2)
    screen.tallies.clear()
    burst = await vote(run, spread_s=run.options.burst_seconds, shift=0, timeout=20)
    await asyncio.sleep(2 * 0.25 + 0.1)  # the last ticks reach the screen
    figures = {"burst": ballots(burst, run.target, 0), "vote_to_screen": vote_to_screen(burst, screen.tallies)}
    log(f"  burst statuses: {figures['burst']['statuses']}")
    log(f"  burst: {figures['burst']['acked']} acked, {figures['burst']['refused']} refused, {figures['burst']['unanswered']} unanswered, "
        f"ack p99 {ms(pick(figures, 'burst.ack.p99'))}, {figures['burst']['per_second']:.0f}/s, lost {figures['burst']['lost']}; "
        f"vote to screen p99 {ms(pick(figures, 'vote_to_screen.p99'))}")  # fmt: skip
    return figures


async def flood(run: Run) -> dict[str, Any]:
    """3, at saturation: every socket changes its vote at the same instant."""
    answers = await vote(run, spread_s=0.0, shift=1, timeout=30)
    figures = {"flood": ballots(answers, run.target, run.options.inject_loss)}
    log(f"  flood: {figures['flood']['acked']} acked, {figures['flood']['refused']} refused, {figures['flood']['unanswered']} unanswered, "
        f"ack p99 {ms(pick(figures, 'flood.ack.p99'))}, {figures['flood']['per_second']:.0f}/s, lost {figures['flood']['lost']}")  # fmt: skip
    return figures


async def vote(run: Run, *, spread_s: float, shift: int, timeout: float) -> list[dict[str, Any]]:
    """Every socket votes once, spread over ``spread_s``; ``shift`` moves each one's choice."""
    return await run.generators.all(
        "vote", per=[{"first": f} for f in run.firsts], vote_id=run.target.vote_id, choices=list(CHOICES),
        start_at=time.time() + run.settle / 2, spread_s=spread_s, total=run.connected, shift=shift, timeout=timeout,
    )  # fmt: skip


async def reconnect_storm(run: Run) -> dict[str, Any]:
    """5. One of the two server processes is killed; the time until each dropped socket is back."""
    options = run.options
    await run.generators.all("mark_storm", jitter_s=options.reconnect_jitter)
    killed_at = time.time()
    victim = run.target.kill_one()
    profilers: list[subprocess.Popen[bytes]] = []
    if options.profile:
        await asyncio.sleep(0.3)
        profilers = start_profiles(run.target, options.profile, "storm", skip=victim)
    await storm_settled(run, killed_at)
    stop_profiles(profilers)
    report = await run.generators.all("storm_report")
    pairs = [(lost, b) for r in report for lost, b in zip(r["lost"], r["back"], strict=True) if lost is not None]
    back_times = [b - killed_at for _, b in pairs if b is not None]
    errors: Counter[str] = Counter()
    for r in report:
        errors.update(r["errors"])
    figures: dict[str, Any] = {"storm_errors": dict(errors.most_common(5))}
    if errors:
        log(f"  storm: reconnect errors {figures['storm_errors']}")
    figures["storm"] = {
        "dropped": len(pairs),
        "back": len(back_times),
        "never_back": len(pairs) - len(back_times),
        "back_after": summary(back_times),
        "jitter_s": options.reconnect_jitter,
    }
    log(
        f"  storm: {len(pairs)} dropped, {len(back_times)} back, p99 {ms(pick(figures, 'storm.back_after.p99'))} after the kill"
    )
    return figures


async def storm_settled(run: Run, killed_at: float) -> None:
    """Wait until every dropped socket is back (past the reconnect jitter), or ``--storm-timeout``."""
    deadline = killed_at + run.options.storm_timeout
    while time.time() < deadline:
        await asyncio.sleep(0.25)
        report = await run.generators.all("storm_report")
        lost = [t for r in report for t in r["lost"] if t is not None]
        back = [t for r in report for t in r["back"] if t is not None]
        if lost and len(back) >= len(lost) and time.time() > killed_at + run.options.reconnect_jitter + 0.5:
            return


def start_profiles(target: Target, folder: str, scenario: str = "main", skip: int = 0) -> list[subprocess.Popen[bytes]]:
    """py-spy on each server process (collapsed stacks): through scenarios 2 to 4, or the storm."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "-o",
                str(Path(folder) / f"{target.kind}-{scenario}-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in target.workers()
        if pid != skip
    ]


def stop_profiles(profilers: list[subprocess.Popen[bytes]]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(30)


# The statuses of an acknowledged ballot (docs/protocol.md, ``ballot``): every one is stored.
ACCEPTED = frozenset({"counted", "changed", "unchanged", "duplicate"})


def ballots(answers: list[dict[str, Any]], target: Target, inject_loss: int) -> dict[str, Any]:
    """The ballots of one vote: acks and their latency, and the loss check against the store."""
    sent, acked, status, choice = (
        [item for answer in answers for item in answer[key]] for key in ("sent", "acked", "status", "choice")
    )
    expected = Counter(c for c, st in zip(choice, status, strict=True) if st in ACCEPTED)
    if inject_loss:
        target.lose(inject_loss)
    stored = target.stored_choices()
    return {**acks(sent, acked, status), "expected": dict(expected), "stored": dict(stored), **losses(expected, stored)}


def acks(sent: list[float | None], acked: list[float | None], status: list[str | None]) -> dict[str, Any]:
    """How the ballots were answered, from send to ack; the rate over the first send to the last ack."""
    ok = [
        (s, a)
        for s, a, st in zip(sent, acked, status, strict=True)
        if s is not None and a is not None and st in ACCEPTED
    ]
    first = min((s for s, _ in ok), default=0.0)
    last = max((a for _, a in ok), default=0.0)
    return {
        "acked": len(ok),
        "refused": sum(1 for st in status if st and st not in ACCEPTED),
        "unanswered": sum(1 for a in acked if a is None),
        "statuses": dict(Counter(st or "unanswered" for st in status)),
        "ack": summary([a - s for s, a in ok]),
        "per_second": len(ok) / (last - first) if last > first else 0.0,
    }


def losses(expected: Counter[str], stored: dict[str, int]) -> dict[str, int]:
    """Per choice: acknowledged ballots missing from the store (lost), and stored ballots
    nobody had acknowledged (phantom)."""
    return {
        "lost": sum(max(0, expected[c] - stored.get(c, 0)) for c in expected),
        "phantom": sum(max(0, stored.get(c, 0) - expected[c]) for c in stored),
    }


def vote_to_screen(answers: list[dict[str, Any]], tallies: list[tuple[float, int]]) -> dict[str, float | None]:
    """For the k-th ack (by time), the delay until the screen shows a count of at least k."""
    acks = sorted(
        a
        for answer in answers
        for a, st in zip(answer["acked"], answer["status"], strict=True)
        if a is not None and st == "counted"
    )
    delays: list[float] = []
    shown = sorted(tallies)
    j = 0
    for k, acked in enumerate(acks, start=1):
        while j < len(shown) and shown[j][1] < k:
            j += 1
        if j == len(shown):
            delays.append(float("inf"))
            continue
        delays.append(max(0.0, shown[j][0] - acked))
    finite = [d for d in delays if d != float("inf")]
    result = summary(finite)
    result["never_shown"] = float(len(delays) - len(finite))
    return result


def load_average() -> float:
    """The machine's 1-minute load average: how much else ran (2 cores: above 2, a queue)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def print_and_write(text: str, figures: dict[str, Any], out: str | None) -> None:
    """A scenario's report on the terminal, and with ``--out FILE`` in FILE and its
    figures in FILE.json."""
    print(text)
    if out:
        Path(out).write_text(text + "\n")
        Path(out + ".json").write_text(json.dumps(figures, indent=1, default=str))


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    import os

    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{int(memory) / 2**20:.1f} GiB",
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


ROWS: list[tuple[str, str, str]] = [
    # (label, path into figures, which way is better)
    ("machine load average at start / end", "load", ""),
    ("sockets held", "connected", "more"),
    ("memory per socket (KiB)", "memory_per_socket_kib", "less"),
    ("phase change p50 (ms)", "phase.p50", "less"),
    ("phase change p99 (ms)", "phase.p99", "less"),
    ("phase change max: the last socket (ms)", "phase.max", "less"),
    # The same bytes from every server (bench.wire.update_sizes): a ratio near 1 here.
    ("phase change: bytes of its 7 updates to a phone", "phase_update_bytes_total", ""),
    ("vote burst: ack p50 (ms)", "burst.ack.p50", "less"),
    ("vote burst: ack p99 (ms)", "burst.ack.p99", "less"),
    ("vote burst: ballots acked", "burst.acked", "more"),
    ("vote burst: ballots lost", "burst.lost", "less"),
    ("vote to screen p99 (ms)", "vote_to_screen.p99", "less"),
    ("flood: ballots per second", "flood.per_second", "more"),
    ("flood: ack p99 (ms)", "flood.ack.p99", "less"),
    ("flood: ballots lost", "flood.lost", "less"),
    ("reconnect storm: sockets dropped", "storm.dropped", ""),
    ("reconnect storm: back p50 after the kill (ms)", "storm.back_after.p50", "less"),
    ("reconnect storm: all back after the kill (ms)", "storm.back_after.max", "less"),
    ("reconnect storm: never back", "storm.never_back", "less"),
]


def pick(figures: dict[str, Any], path: str) -> Any:
    if path == "load":
        return (
            f"{figures.get('load_average_at_start', 0):.1f} / {figures.get('load_average_at_end', 0):.1f}"
            if figures
            else None
        )
    value: Any = figures
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "-"
    return f"{a / b:.2f}"


def table(results: dict[Kind, dict[str, Any]]) -> str:
    kinds = [k for k in KINDS if k in results]
    head = ["figure", *(NAMES[k] for k in kinds)]
    if "b0" in results and "engine" in results:
        head.append("engine ÷ B0")
    if "p1" in results and "engine" in results:
        head.append("engine ÷ P1")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, path, _ in ROWS:
        cells = [label, *(show(pick(results[k], path)) for k in kinds)]
        mine = pick(results.get("engine", {}), path)
        if "b0" in results and "engine" in results:
            cells.append(ratio(mine, pick(results["b0"], path)))
        if "p1" in results and "engine" in results:
            cells.append(ratio(mine, pick(results["p1"], path)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_met(
    results: dict[Kind, dict[str, Any]], sockets: int, live_tick_ms: int = 100
) -> list[tuple[str, str, bool | None]]:
    """The issue's targets, each with the measured figure and whether it is met."""
    e, b, p = results.get("engine", {}), results.get("b0", {}), results.get("p1", {})

    def r(a: Any, c: Any) -> float | None:
        return a / c if isinstance(a, (int, float)) and isinstance(c, (int, float)) and c else None

    checks: list[tuple[str, float | None, bool | None]] = []
    mem = r(e.get("memory_per_socket_kib"), b.get("memory_per_socket_kib"))
    checks.append(
        (f"{sockets} sockets held on 2 processes", e.get("connected"), e.get("connected") == sockets if e else None)
    )
    checks.append(("memory per socket ≤ 1.5 × B0 (stretch 1.3 ×)", mem, None if mem is None else mem <= 1.5))
    phase = r(pick(e, "phase.p99"), pick(b, "phase.p99"))
    checks.append(("phase change p99 ≤ 1.3 × B0", phase, None if phase is None else phase <= 1.3))
    lost = pick(e, "burst.lost")
    checks.append(
        ("vote burst: no ballot lost", lost, None if lost is None else lost == 0 and pick(e, "flood.lost") == 0)
    )
    ack = pick(e, "burst.ack.p99")
    checks.append(("vote burst: ack p99 ≤ 300 ms", ack, None if ack is None else ack <= 300))
    bps = r(pick(e, "flood.per_second"), pick(p, "flood.per_second"))
    checks.append(("ballots per second ≥ 3 × P1", bps, None if bps is None else bps >= 3))
    screen = pick(e, "vote_to_screen.p99")
    checks.append(
        (
            f"vote to screen p99 ≤ {live_tick_ms + 50} ms",
            screen,
            None if screen is None else screen <= live_tick_ms + 50,
        )
    )
    better = r(pick(p, "phase.p99"), pick(e, "phase.p99"))
    checks.append(
        ("broadcast latency (phase change p99) ≥ 3 × better than P1", better, None if better is None else better >= 3)
    )
    return [(label, show(value), met) for label, value, met in checks]


async def main(options: argparse.Namespace) -> int:
    loadgen.raise_open_files()
    folder = Path(tempfile.mkdtemp(prefix="battles-bench-"))
    payload = folder / "battle.json"
    payload.write_text(json.dumps(public_battle()))
    redis_server = RedisServer(folder)
    generators = LoadGenerators(options.loadgens)
    rounds: list[dict[Kind, dict[str, Any]]] = []
    log(
        f"bench: {options.sockets} sockets, {options.loadgens} load generators, redis on {redis_server.port}, logs in {folder}"
    )
    try:
        for round_number in range(1, options.repeat + 1):
            rounds.append({})
            for kind in options.targets:
                redis_server.client.flushall()
                target = TARGETS[kind](redis_server, folder, payload)
                log(f"{NAMES[kind]}: starting (round {round_number} of {options.repeat})")
                target.start()
                try:
                    rounds[-1][kind] = await asyncio.wait_for(
                        run_target(target, generators, options), options.target_timeout
                    )
                except Exception as error:
                    # A server that could not finish (overloaded past a bound) is reported
                    # as such; the others still run.
                    log(f"  {NAMES[kind]} did not finish: {type(error).__name__}: {error}")
                    rounds[-1][kind] = {"error": f"{type(error).__name__}: {error}"}
                    await generators.all("close")
                finally:
                    target.stop()
    finally:
        await generators.quit()
        redis_server.stop()
    figures = {"machine": machine(), "options": vars(options), "rounds": rounds}
    print_and_write(report(rounds, options), figures, options.out)
    lost = sum(
        (pick(run, "burst.lost") or 0) + (pick(run, "flood.lost") or 0) for found in rounds for run in found.values()
    )
    return 1 if lost else 0


def report(rounds: list[dict[Kind, dict[str, Any]]], options: argparse.Namespace) -> str:
    """Each round's table: the servers ran one after the other, and every ratio is of
    one round's pair, with the load averages of that round beside it. Ratios from
    different rounds are never mixed: the machine is shared, and a round that met a busy
    machine is a pair measured under the same load."""
    info = machine()
    lines = [
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['memory']}, Python {info['python']}, Linux {info['kernel']}",
        f"Command: .venv/bin/python -m bench {' '.join(sys.argv[1:])}".rstrip(),
        f"Layout: 2 server processes per server, one redis-server, {options.loadgens} load generator processes, "
        f"{options.sockets} audience sockets, burst over {options.burst_seconds} s, hold {options.hold} s; "
        f"{len(rounds)} round{'s' if len(rounds) > 1 else ''}, each running {', '.join(NAMES[k] for k in options.targets)} in turn",
    ]
    for number, results in enumerate(rounds, 1):
        lines += ["", f"Round {number} of {len(rounds)}", "", table(results), "", "| target | measured | met |"]
        lines.append("|---|---|---|")
        for label, value, met in targets_met(results, options.sockets):
            lines.append(f"| {label} | {value} | {'-' if met is None else ('yes' if met else 'NO')} |")
        for kind, figures in results.items():
            if "error" in figures:
                lines.append(f"\n{NAMES[kind]} did not finish: {figures['error']}")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="200 sockets and short holds: proves the command works")
    parser.add_argument("--sockets", type=int, help="audience sockets (default 10000, --quick 200)")
    parser.add_argument("--loadgens", type=int, default=2, help="load generator processes (default 2)")
    parser.add_argument("--targets", default="engine,b0,p1", help="which servers, in order (default engine,b0,p1)")
    parser.add_argument("--hold", type=float, help="seconds to hold the sockets (default 10, --quick 1)")
    parser.add_argument("--burst-seconds", type=float, help="the vote burst's spread (default 2, --quick 0.5)")
    parser.add_argument("--concurrency", type=int, default=100, help="connects in flight per load generator")
    parser.add_argument(
        "--reconnect-jitter", type=float, help="a dropped phone waits up to this before reconnecting (default 1 s)"
    )
    parser.add_argument(
        "--storm-timeout", type=float, help="give up waiting for reconnects after this (default 60 s, --quick 10 s)"
    )
    parser.add_argument("--target-timeout", type=float, default=600.0, help="give up a server's run after this")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every server this many rounds, each a table of its own (default 1)"
    )
    parser.add_argument(
        "--inject-loss",
        type=int,
        default=0,
        help="drop this many stored ballots before the flood's check (tests the check)",
    )
    parser.add_argument(
        "--profile", help="record py-spy profiles of the server processes (scenarios 2 to 4) into this folder"
    )
    parser.add_argument("--out", help="also write the report to this file, and the raw figures to FILE.json")
    options = parser.parse_args(argv)
    options.sockets = options.sockets or (200 if options.quick else 10_000)
    options.hold = options.hold if options.hold is not None else (1.0 if options.quick else 10.0)
    options.burst_seconds = (
        options.burst_seconds if options.burst_seconds is not None else (0.5 if options.quick else 2.0)
    )
    options.reconnect_jitter = (
        options.reconnect_jitter if options.reconnect_jitter is not None else (0.3 if options.quick else 1.0)
    )
    options.storm_timeout = options.storm_timeout or (10.0 if options.quick else 60.0)
    options.targets = [t for t in options.targets.split(",") if t]
    unknown = set(options.targets) - set(KINDS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}: choose from {', '.join(KINDS)}")
    if options.sockets > 20_000 * options.loadgens - 100:
        parser.error("each load generator may hold at most 20,000 open files: add --loadgens")
    return options


def cli(argv: list[str] | None = None) -> int:
    return uvloop.run(main(parse(argv)))


if __name__ == "__main__":
    sys.exit(cli())
