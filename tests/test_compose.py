"""docker-compose.yml, checked by reading it: no Docker engine runs where the tests do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from battles.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_redis_keeps_an_append_only_file_on_a_volume() -> None:
    redis = compose()["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "healthcheck" in redis


def test_the_app_runs_as_several_replicas_on_redis_configured_by_environment() -> None:
    app = compose()["services"]["app"]
    assert app["deploy"]["replicas"] >= 2
    assert app["environment"]["BATTLES_STORE"].startswith("redis://redis:")
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
    assert "server app:8000;" in conf
    # /metrics answers on each replica for Prometheus inside the network, not through the proxy.
    assert "location = /metrics {\n        return 404;" in conf
    assert "healthcheck" in proxy


def test_the_image_builds_from_this_repository() -> None:
    app = compose()["services"]["app"]
    assert app["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    for folder in ("src", "static", "templates"):
        assert f"COPY {folder} ./{folder}" in dockerfile
