"""What ``slotfill serve --workers N`` imports before a worker can load its models (issue 18,
cold start). The supervisor only parses the command line, reads the settings and spawns the
workers: it imports neither FastAPI nor SQLAlchemy. Each spawned worker first runs
``slotfill.cli`` again (multiprocessing's ``__mp_main__``), which must import nothing of the
app or of training. Run in fresh interpreters, since this process has imported everything."""

from __future__ import annotations

import json
import subprocess
import sys

from app_support import REPO_ROOT

SUPERVISOR = r"""
import json, sys
from slotfill.cli import build_parser
args = build_parser().parse_args(["serve", "--workers", "2"])
from app import http_server
from app.config import get_settings
get_settings()
print(json.dumps(sorted(m for m in ("fastapi", "sqlalchemy", "torch") if m in sys.modules)))
"""

WORKER_MAIN = r"""
import json, sys
import slotfill.cli
ours = ("app", "models", "training")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ours)))
"""


def _run(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_supervisor_imports_neither_fastapi_nor_sqlalchemy() -> None:
    assert _run(SUPERVISOR) == []


def test_a_spawned_worker_reruns_the_cli_module_without_the_commands() -> None:
    assert _run(WORKER_MAIN) == []
