"""docker-compose.yml, the Dockerfile and deploy/nginx.conf, checked by reading them (no
Docker engine runs where the tests do), and the image's command line started the way the
Dockerfile starts it."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import yaml

from battles.settings import Settings
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions in order, as (INSTRUCTION, arguments), continuation
    lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            instructions.append((instruction.upper(), arguments.strip()))
    return instructions


def default_of(value: str) -> str:
    """The default of a compose ``${NAME:-default}`` (or the value itself)."""
    found = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", value)
    return found.group(1) if found else value


def test_redis_keeps_an_append_only_file_on_a_volume_synced_before_each_reply() -> None:
    redis = compose()["services"]["redis"]
    command = redis["command"]
    assert "--appendonly" in command and command[command.index("--appendonly") + 1] == "yes"
    # The show setting of docs/operations.md: nothing acknowledged lost even when the machine dies.
    assert default_of(command[command.index("--appendfsync") + 1]) == "always"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "healthcheck" in redis


def test_the_app_runs_as_several_replicas_on_redis_configured_by_environment() -> None:
    app = compose()["services"]["app"]
    assert app["deploy"]["replicas"] >= 2
    assert default_of(app["environment"]["BATTLES_STORE"]).startswith("redis://redis:")
    known = {f"BATTLES_{name.upper()}" for name in Settings.model_fields}
    assert set(app["environment"]) <= known, "every variable must be a real setting"
    assert "/healthz" in " ".join(app["healthcheck"]["test"])
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_proxy_passes_websocket_upgrades_to_the_app() -> None:
    proxy = compose()["services"]["proxy"]
    mounted = {volume.split(":")[0] for volume in proxy["volumes"]}
    assert "./deploy/nginx.conf" in mounted
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    # Docker's DNS asked at request time (a variable in proxy_pass), so that replicas
    # recreated on new addresses are found; not once at start (a plain upstream).
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", conf, re.MULTILINE)
    variable = re.search(r"set (\$\w+) http://app:8000;", conf)
    assert variable and f"proxy_pass {variable.group(1)};" in conf
    assert "upstream" not in conf
    # /metrics answers on each replica for Prometheus inside the network, not through the proxy.
    assert "location = /metrics {\n        return 404;" in conf
    assert "healthcheck" in proxy


def test_compose_refuses_to_start_without_a_public_url_that_phones_reach() -> None:
    public_url = compose()["services"]["app"]["environment"]["BATTLES_PUBLIC_URL"]
    # ${VAR:?message}: compose stops with the message when PUBLIC_URL is unset or empty.
    found = re.fullmatch(r"\$\{PUBLIC_URL:\?(.+)\}", public_url)
    assert found, public_url
    assert "PUBLIC_URL" in found.group(1) and "localhost" not in found.group(1)


def test_the_sentinel_profile_has_two_replicas_and_three_sentinels() -> None:
    services = compose()["services"]
    assert all(name not in services[name].get("profiles", ["sentinel"]) for name in ("redis", "app", "proxy"))
    replica = services["redis-replica"]
    assert replica["profiles"] == ["sentinel"] and replica["deploy"]["replicas"] >= 2
    assert replica["command"][replica["command"].index("--replicaof") + 1] == "redis"
    sentinels = [name for name in services if name.startswith("sentinel-")]
    assert len(sentinels) == 3
    for name in sentinels:
        assert services[name]["profiles"] == ["sentinel"]
        script = services[name]["command"][-1]
        assert "'sentinel monitor battles redis 6379 2'" in script and "--sentinel" in script
    # The URL the comment at the top gives for the profile names these three.
    header = (ROOT / "docker-compose.yml").read_text().split("services:", 1)[0]
    assert "STORE=redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/battles/0" in header


PIP_STAND_IN = """\
#!{python}
# The image's pip, recording what it was asked to install.
import json, sys
args = sys.argv[1:]
requirements = open(args[args.index("-r") + 1]).read().splitlines() if "-r" in args else []
print(json.dumps({{"args": args, "requirements": requirements}}))
"""


def test_the_image_installs_the_locked_runtime_dependencies_before_the_source(tmp_path: Path) -> None:
    assert compose()["services"]["app"]["build"] == "."
    steps = dockerfile()
    text = [f"{instruction} {arguments}" for instruction, arguments in steps]
    for folder in ("src", "static", "templates"):
        assert f"COPY {folder} ./{folder}" in text
    assert "RUN pip install --no-deps ." in text
    assert not any(" -e " in line or "--editable" in line for line in text)
    # Every other install takes requirements.lock, and the dependencies come in a layer before
    # any source, so a code change does not rebuild it.
    installs = [i for i, line in enumerate(text) if "pip install" in line and line != "RUN pip install --no-deps ."]
    assert len(installs) == 1 and "pip install -c requirements.lock " in text[installs[0]]
    assert text.index("COPY requirements.lock pyproject.toml ./") < installs[0] < text.index("COPY src ./src")

    # The step itself, run here on the files it was given, with a pip that records its request:
    # pyproject.toml's runtime dependencies (not the test and bench extras), at the lock's versions.
    for name in ("requirements.lock", "pyproject.toml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    stand_ins = tmp_path / "bin"
    stand_ins.mkdir()
    (stand_ins / "pip").write_text(PIP_STAND_IN.format(python=sys.executable))
    (stand_ins / "pip").chmod(0o755)
    (stand_ins / "python").symlink_to(sys.executable)
    command = text[installs[0]].removeprefix("RUN ")
    environment = dict(os.environ, PATH=f"{stand_ins}:{os.environ['PATH']}")
    done = subprocess.run(["sh", "-ec", command], cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    request = json.loads(done.stdout)
    assert request["args"][:3] == ["install", "-c", "requirements.lock"]
    assert request["requirements"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "pyproject.toml", "requirements.lock"]


def test_the_package_installs_every_page_file_where_the_app_looks_for_it() -> None:
    # The image installs the package, not a link to the checkout: static/ and templates/
    # reach it only through pyproject.toml's data-files, one glob per folder, under
    # share/battles/ (battles.app finds them there). A new folder needs its own line.
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    installed = {
        path.relative_to(ROOT).as_posix(): f"{target}/{path.name}"
        for target, patterns in data_files.items()
        for pattern in patterns
        for path in ROOT.glob(pattern)
        if path.is_file()
    }
    page_files = [
        path.relative_to(ROOT).as_posix() for folder in ("static", "templates") for path in (ROOT / folder).rglob("*")
    ]
    wanted = {path: f"share/battles/{path}" for path in page_files if (ROOT / path).is_file()}
    assert {path: installed.get(path) for path in wanted} == wanted


def test_the_image_runs_as_its_own_user_and_writes_only_to_the_data_volume() -> None:
    steps = dockerfile()
    user = [arguments for instruction, arguments in steps if instruction == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert ("VOLUME", "/data") in steps
    healthcheck = next(arguments for instruction, arguments in steps if instruction == "HEALTHCHECK")
    assert "/healthz" in healthcheck


def image_environment(steps: list[tuple[str, str]]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for instruction, arguments in steps:
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                environment[name] = value
    return environment


def as_unprivileged_user() -> list[str]:
    """``setpriv`` to nobody when the tests run as root and nobody gets this very Python
    (one installed under /root is out of other users' reach); else nothing."""
    if os.geteuid() != 0:
        return []
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        probe = subprocess.run(
            [*drop, sys.executable, "-c", "import sys, battles.app; print(sys.version)"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return []
    return drop if probe.returncode == 0 and probe.stdout.strip() == sys.version else []


def test_the_image_command_line_starts_and_keeps_its_store_in_the_volume(tmp_path: Path) -> None:
    """The CMD, ENV, WORKDIR and HEALTHCHECK of the Dockerfile, run here as the image
    would run them, with /data a fresh folder: the store must land in the volume (a
    plain ``docker run`` cannot write anywhere else), and SIGTERM ends it within the drain."""
    steps = dockerfile()
    data, app = tmp_path / "data", tmp_path / "app"
    data.mkdir()
    app.mkdir()  # the image's /app: root's, never written to
    drop = as_unprivileged_user()
    if drop:
        os.chown(data, 65534, 65534)
    workdir = [arguments for instruction, arguments in steps if instruction == "WORKDIR"][-1]
    assert workdir == "/data"
    environment = {name: value.replace("/data", str(data)) for name, value in image_environment(steps).items()}
    port = free_port()
    command = json.loads(next(arguments for instruction, arguments in steps if instruction == "CMD"))
    assert command[:2] == ["battles", "serve"]
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"  # 0.0.0.0 in the image; loopback here
    command[0] = str(Path(sys.executable).parent / "battles")
    healthcheck = next(arguments for instruction, arguments in steps if instruction == "HEALTHCHECK")
    probe = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert probe[0] == "python"
    probe[0] = sys.executable
    probe[-1] = probe[-1].replace(":8000", f":{port}")

    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [*drop, *command],
        cwd=str(data),
        env={"PATH": os.environ["PATH"], "HOME": str(data), **environment},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(probe, capture_output=True).returncode != 0:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the HEALTHCHECK never passed"
            time.sleep(0.2)
        created = httpx.post(f"http://127.0.0.1:{port}/api/battles", json={"title": "In the volume"}, timeout=10)
        assert created.status_code == 201, created.text
        assert (data / "battles.sqlite3").exists()
        assert list(app.iterdir()) == []
        if drop:
            assert (data / "battles.sqlite3").stat().st_uid == 65534
        os.killpg(server.pid, signal.SIGTERM)
        # uvicorn shuts down, then ends by the signal it caught (as the shell expects).
        assert server.wait(timeout=Settings().shutdown_drain_s + 10) in (0, -signal.SIGTERM)
        assert "Application shutdown complete." in (tmp_path / "server.log").read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_the_https_example_sends_hsts_and_proxies_to_the_engine() -> None:
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(r'^\s+header Strict-Transport-Security "max-age=\d+"$', caddyfile, re.MULTILINE)
    assert re.search(r"^\s+reverse_proxy 127\.0\.0\.1:8080$", caddyfile, re.MULTILINE)
    # And docs/operations.md shows that very file.
    block = re.search(r"^\{\$DOMAIN\} \{$.*?^\}$", caddyfile, re.MULTILINE | re.DOTALL)
    assert block
    shown = (ROOT / "docs" / "operations.md").read_text()
    assert all(line.strip() in shown for line in block.group(0).splitlines() if not line.strip().startswith("#"))
