"""requirements.lock, the one set of versions every install takes, and the scripts around it:
scripts/test (and .ci/run through it), scripts/lock, the README's commands. The scripts run
here with every program they start replaced by a stand-in that records its arguments, so
what they would install is checked without installing anything."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCK = "requirements.lock"


def normal(name: str) -> str:
    """A package's name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) and version, f"not an exact pin: {line}"
            assert normal(name) not in found, f"pinned twice: {name}"
            found[normal(name)] = version
    return found


def test_the_lock_pins_every_dependency_of_the_engine_its_tests_and_its_benchmarks() -> None:
    locked = pins((ROOT / LOCK).read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    declared += project["optional-dependencies"]["bench"]
    for requirement in declared:
        name = normal(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))  # type: ignore[union-attr]
        assert name in locked, f"{LOCK} does not pin {name}: run scripts/lock"
    # scripts/test installs the lock's pip before anything else.
    assert "pip" in locked
    assert "redis" in locked and "mypy" in locked and "ruff" in locked and "playwright" in locked


STAND_IN = """\
#!{python}
# Records its arguments (and the text of a -c file) and does what the scripts need of it.
import json, os, shutil, sys
args = sys.argv[1:]
root = os.environ["STAND_IN_ROOT"]
entry = {{"program": os.path.relpath(sys.argv[0], root), "args": args}}
if "-c" in args:
    with open(args[args.index("-c") + 1]) as constraints:
        entry["constraints"] = constraints.read()
with open(os.path.join(root, "calls.jsonl"), "a") as log:
    log.write(json.dumps(entry) + "\\n")
if args[:2] == ["-m", "venv"]:
    bin = os.path.join(args[-1], "bin")
    os.makedirs(bin, exist_ok=True)
    shutil.copy(sys.argv[0], os.path.join(bin, "python"))
elif args[:3] == ["-m", "pip", "freeze"]:
    print(open(os.path.join(root, "freeze.txt")).read(), end="")
elif args[:1] == ["-"]:
    os.execv({python!r}, [{python!r}, *args])
elif args[:2] == ["-m", os.environ.get("STAND_IN_FAILS")]:
    sys.exit(1)
"""


def checkout(tmp_path: Path, freeze: str) -> Path:
    """A copy of the scripts and the lock with the stand-ins, and what `pip freeze` will say."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    for name in ("scripts/test", "scripts/lock", LOCK):
        shutil.copy(ROOT / name, root / name)
    (root / "freeze.txt").write_text(freeze)
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    for program in ("python3", "apt-get", "sudo"):
        (stand_ins / program).write_text(STAND_IN.format(python=sys.executable))
        (stand_ins / program).chmod(0o755)
    return root


def run(root: Path, *command: str, fails: str = "", code: int = 0) -> tuple[list[dict[str, Any]], str]:
    """Runs a script with the stand-ins (the one named by ``fails``, `-m mypy` say, failing)."""
    path = f"{root.parent / 'bin'}:{os.environ['PATH']}"
    environment = dict(os.environ, STAND_IN_ROOT=str(root), STAND_IN_FAILS=fails, PATH=path)
    done = subprocess.run(
        ["bash", *command], cwd=root, env=environment, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == code, done.stderr
    lines = (root / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines], done.stdout + done.stderr


def newer_redis(lock: str) -> str:
    """The lock as `pip freeze` gives it, with redis one release ahead, six gone and a newcomer."""
    kept = [line for line in lock.splitlines() if line and not line.startswith(("#", "six=="))]
    return "\n".join(re.sub(r"^redis==.*", "redis==99.0.0", line) for line in kept) + "\nnewcomer==1.0\n"


def test_scripts_test_installs_the_lock_and_passes_its_arguments_to_pytest(tmp_path: Path) -> None:
    root = checkout(tmp_path, freeze="")
    calls, _ = run(root, "scripts/test", "-q", "-k", "vote")
    assert calls[0] == {"program": "../bin/python3", "args": ["-m", "venv", ".venv"]}
    steps = [call["args"] for call in calls[1:]]
    assert all(call["program"] == ".venv/bin/python" for call in calls[1:])
    installs = [args for args in steps if args[:3] == ["-m", "pip", "install"]]
    assert installs == [
        ["-m", "pip", "install", "-q", "-c", LOCK, "pip"],
        ["-m", "pip", "install", "-q", "-c", LOCK, "-e", ".[test,bench]"],
    ]
    assert steps[len(installs) :] == [
        ["-m", "ruff", "format", "--check", "--quiet", "."],
        ["-m", "ruff", "check", "--quiet", "."],
        ["-m", "mypy"],
        ["-m", "pytest", "-n", "2", "--dist", "loadfile", "-q", "-k", "vote"],
    ]
    # On the lock a failing check stops it before the suite.
    (root / "calls.jsonl").unlink()
    calls, _ = run(root, "scripts/test", fails="mypy", code=1)
    assert calls[-1]["args"] == ["-m", "mypy"]


def test_scripts_test_latest_tries_the_newest_versions_in_a_venv_of_its_own(tmp_path: Path) -> None:
    root = checkout(tmp_path, freeze=newer_redis((ROOT / LOCK).read_text()))
    (root / ".venv-latest" / "bin").mkdir(parents=True)
    (root / ".venv-latest" / "stale").write_text("from last week")
    calls, output = run(root, "scripts/test", "--latest", "-x")
    assert calls[0]["args"] == ["-m", "venv", "--clear", ".venv-latest"]
    assert not any(call["program"].startswith(".venv/") for call in calls)
    installs = [call["args"] for call in calls if call["args"][:3] == ["-m", "pip", "install"]]
    assert installs and all("--upgrade" in args and "-c" not in args for args in installs)
    assert ["-m", "pip", "install", "-q", "--upgrade", "--upgrade-strategy", "eager", "-e", ".[test,bench]"] in installs
    assert calls[-1] == {
        "program": ".venv-latest/bin/python",
        "args": ["-m", "pytest", "-n", "2", "--dist", "loadfile", "-x"],
    }
    assert [call["args"][1] for call in calls[-4:]] == ["ruff", "ruff", "mypy", "pytest"]
    locked = pins((ROOT / LOCK).read_text())
    assert output.splitlines() == [
        "the newest versions that differ from requirements.lock:",
        "  newcomer: (not in the lock) -> 1.0",
        f"  redis: {locked['redis']} -> 99.0.0",
        f"  six: {locked['six']} -> (no longer installed)",
    ]
    # A failing check does not hide the suite's result: every step runs, and those that failed are named.
    (root / "calls.jsonl").unlink()
    calls, output = run(root, "scripts/test", "--latest", fails="mypy", code=1)
    assert [call["args"][1] for call in calls[-4:]] == ["ruff", "ruff", "mypy", "pytest"]
    assert output.splitlines()[-1] == "failed on the newest versions: mypy"


def test_scripts_lock_keeps_the_pins_it_is_not_told_to_upgrade(tmp_path: Path) -> None:
    lock = (ROOT / LOCK).read_text()
    root = checkout(tmp_path, freeze=newer_redis(lock))
    calls, _ = run(root, "scripts/lock", "--upgrade", "Redis", "TYPING_extensions")
    installs = [call for call in calls if call["args"][:3] == ["-m", "pip", "install"]]
    assert [call["args"][-1] for call in installs] == ["pip", ".[test,bench]"]
    kept = pins(installs[-1]["constraints"])
    assert kept == {name: version for name, version in pins(lock).items() if name not in ("redis", "typing-extensions")}
    # The new lock is what was installed, under the lock's header.
    written = (root / LOCK).read_text()
    assert pins(written) == pins(newer_redis(lock))
    header = [line for line in written.splitlines() if line.startswith("#")]
    assert written.startswith("#") and any("scripts/lock" in line for line in header)
    # --upgrade alone keeps nothing back.
    (root / "calls.jsonl").unlink()
    calls, _ = run(root, "scripts/lock", "--upgrade")
    assert [call["constraints"] for call in calls if call["args"][:3] == ["-m", "pip", "install"]] == ["", ""]


def commands(text: str) -> list[str]:
    """Every `pip install` in a text, up to the end of its line or the next `&&`."""
    return re.findall(r"pip install[^\n&]*", text)


def test_every_install_the_readme_and_the_docs_give_takes_the_lock() -> None:
    readme = (ROOT / "README.md").read_text()
    # The README's first command: a demo from a fresh clone, at the tested versions.
    first = re.search(r"^    (python3 -m venv .*)$", readme, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert f"pip install -c {LOCK} -e ." in first and first.endswith("battles serve --demo")
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = [(path.name, command) for path in documents for command in commands(path.read_text())]
    assert len(found) >= 3
    for name, command in found:
        assert f"-c {LOCK}" in command, f"{name}: `{command}` does not install from {LOCK}"


def test_ci_starts_from_an_empty_venv_and_runs_the_readme_test_command() -> None:
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if not line.startswith("#")]
    assert lines.index("rm -rf .venv") < next(i for i, line in enumerate(lines) if "bash scripts/test" in line)
    assert "    bash scripts/test\n" in (ROOT / "README.md").read_text()
