"""How ``slotfill serve --workers N`` starts (issue 18, cold start): the supervisor parses the
command line without importing FastAPI or SQLAlchemy, loads the app once (the collector off
while it imports, what was loaded frozen) and forks its workers, which start with the app
loaded and only run its lifespan. ``slotfill.cli`` itself imports nothing of the commands
until it builds its parser, and the app leaves its feedback, admin and console routes to the
first request no other route matches (or to the OpenAPI document). Imports are checked in
fresh interpreters, since this process has imported everything."""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
from multiprocessing.context import ForkProcess

import uvicorn
from app_support import REPO_ROOT

from app import http_server

SUPERVISOR = r"""
import json, sys
from slotfill.cli import build_parser
args = build_parser().parse_args(["serve", "--workers", "2"])
from app import http_server
from app.config import get_settings
get_settings()
print(json.dumps(sorted(m for m in ("fastapi", "sqlalchemy", "torch") if m in sys.modules)))
"""

CLI_MODULE = r"""
import json, sys
import slotfill.cli
ours = ("app", "models", "training")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ours)))
"""

LAZY_ROUTES = r"""
import json, sys
from fastapi.testclient import TestClient
from app.config import Settings
from app.main import create_app
LAZY = ("app.operating.admin_routes", "app.operating.feedback_routes",
        "app.operating.console.pages", "jinja2")
app = create_app(Settings(database_url="sqlite://", session_secret="x"))
out = {"made": [m for m in LAZY if m in sys.modules]}
client = TestClient(app)
paths = ("/v1/admin/models", "/console", "/console/signin", "/nowhere")
out["first"] = [client.get(p, follow_redirects=False).status_code for p in paths]
out["imported"] = [m for m in LAZY if m in sys.modules]
out["again"] = [client.get(p, follow_redirects=False).status_code for p in paths]
print(json.dumps(out))
"""

LAZY_OPENAPI = r"""
import json
from app.config import Settings
from app.main import create_app
doc = create_app(Settings(database_url="sqlite://", session_secret="x")).openapi()
print(json.dumps(sorted(doc["paths"])))
"""


def _json(code: str) -> object:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_operating_routes_are_added_by_the_first_request_no_route_matches() -> None:
    out = _json(LAZY_ROUTES)
    assert isinstance(out, dict)
    assert out["made"] == []
    # admin disabled (no token): its own 404 shape; the console redirects to sign-in
    assert out["first"] == out["again"] == [404, 303, 200, 404]
    assert len(out["imported"]) == 4


def test_the_openapi_document_has_the_operating_routes() -> None:
    paths = _json(LAZY_OPENAPI)
    assert isinstance(paths, list)
    assert {"/v1/feedback", "/v1/admin/models", "/v1/parse", "/readyz"} <= set(paths)


def _run(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_command_line_imports_neither_fastapi_nor_sqlalchemy() -> None:
    assert _run(SUPERVISOR) == []


def test_the_cli_module_imports_the_commands_only_to_build_its_parser() -> None:
    assert _run(CLI_MODULE) == []


def tiny_app() -> object:
    async def app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
        return None

    return app


def test_the_app_is_loaded_once_with_the_collector_off_and_then_frozen() -> None:
    config = uvicorn.Config(f"{__name__}:tiny_app", factory=True, workers=2)
    seen: list[bool] = []
    real_load = config.load

    def load() -> None:
        seen.append(gc.isenabled())
        real_load()

    config.load = load  # type: ignore[method-assign]
    frozen = gc.get_freeze_count()
    try:
        http_server.load_app(config)
        assert seen == [False]
        assert config.loaded and gc.isenabled()
        assert gc.get_freeze_count() > frozen
    finally:
        gc.unfreeze()


def test_workers_are_forked_from_the_supervisor() -> None:
    config = uvicorn.Config(f"{__name__}:tiny_app", factory=True, workers=2)
    with socket.socket() as sock:
        worker = http_server.WorkerProcess(config, [sock])
        assert isinstance(worker.process, ForkProcess)
        assert not worker.process.is_alive()  # built, not started
        worker.parent_conn.close()
        worker.child_conn.close()
