"""What the pages load beside themselves: static/ and both language catalogs, each under an
address that carries a digest of its content, so a browser keeps it for a year.

Static files and the catalogs under a versioned address are kept by browsers for a year:
a phone that comes back (a reload, the next evening) loads the page and nothing else.
Under the plain /static/ address they are checked again each time (ETag, a 304).
See docs/architecture.md, Clients, and docs/protocol.md, HTTP.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import sys
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from battles.services import services

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def asset_dir(name: str) -> Path:
    """static/ and templates/ beside src/ in a checkout, or under share/ when installed."""
    for candidate in (Path(__file__).resolve().parents[2] / name, Path(sys.prefix) / "share" / "battles" / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cannot find the {name}/ folder of the battles package")


def static_version(directory: Path) -> str:
    """A digest of every file under static/, the version in its long-lived address: a deploy
    that changes any file changes every address (the modules import each other by relative
    paths, so they share one version)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


# A module's static imports: `import ... from "./x.js";` and `import "./x.js";` (the page
# scripts keep theirs at the top, one statement each).
MODULE_IMPORT = re.compile(r'^import\s(?:[^;"]*?\sfrom\s*)?"(\.{1,2}/[^"]+)";', re.M)


def imported_modules(directory: Path, script: str) -> list[str]:
    """Every module under static/ that the page script `script` imports, directly or through
    another, in the order first met. The page names them all in <link rel="modulepreload">:
    the browser asks for them at once with the script, not one level of imports per round trip."""
    found: list[str] = []
    pending = [script]
    while pending:
        module = pending.pop(0)
        for target in MODULE_IMPORT.findall((directory / module).read_text()):
            path = posixpath.normpath(posixpath.join(posixpath.dirname(module), target))
            if path != script and path not in found:
                found.append(path)
                pending.append(path)
    return found


class Assets(StaticFiles):
    """static/, each answer with its Cache-Control."""

    def __init__(self, directory: Path, cache_control: str) -> None:
        super().__init__(directory=str(directory))
        self.cache_control = cache_control

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = self.cache_control
        return response


async def catalogs(request: Request) -> Response:
    """/i18n/VERSION.json: both catalogs (battles.i18n.catalogs_json), only under their version."""
    house = services(request)
    if request.path_params["version"] != house.catalogs_version:
        raise HTTPException(404, "no such version of the catalogs")
    return Response(house.catalogs_body, media_type="application/json", headers={"cache-control": IMMUTABLE})
