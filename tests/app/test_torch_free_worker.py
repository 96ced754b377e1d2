"""A NumPy-engine worker (``SLOTFILL_ENGINE=numpy``, the default) never imports torch: not to
start, load and warm its models, nor to parse (n-best included). Run in a fresh interpreter,
since other tests in this process import torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from app_support import REPO_ROOT, migrate

pytestmark = pytest.mark.timeout(180)

SCRIPT = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from app.config import Settings
from app.main import create_app

store, url, spill, engine = sys.argv[1:5]
settings = Settings(
    model_store=Path(store), default_model="tiny", sentiment_model="tiny-sentiment",
    database_url=url, log_spill_dir=Path(spill), engine=engine, torch_threads=1,
)
out = {}
with TestClient(create_app(settings)) as client:
    out["ready"] = client.get("/readyz").status_code
    out["after_start"] = "torch" in sys.modules
    parse = client.post("/v1/parse", json={"text": "book a table for two at 7pm tomorrow"})
    nbest = client.post("/v1/parse", json={"text": "my flight to denver", "n_best": 3})
    out["status"] = [parse.status_code, nbest.status_code]
    out["hypotheses"] = len(nbest.json()["hypotheses"])
    out["sentiment"] = parse.json()["sentiment"] is not None
out["after_parse"] = "torch" in sys.modules
print(json.dumps(out))
"""


def _run(model_store: Path, tmp_path: Path, engine: str) -> dict[str, object]:
    url = f"sqlite:///{tmp_path / f'{engine}.db'}"
    migrate(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTFILL_")}
    command = [sys.executable, "-c", SCRIPT, str(model_store), url, str(tmp_path), engine]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_numpy_engine_worker_never_imports_torch(model_store: Path, tmp_path: Path) -> None:
    out = _run(model_store, tmp_path, "numpy")
    assert out["ready"] == 200 and out["status"] == [200, 200]
    assert out["hypotheses"] and out["sentiment"]
    assert out["after_start"] is False and out["after_parse"] is False


def test_torch_engine_worker_still_serves(model_store: Path, tmp_path: Path) -> None:
    out = _run(model_store, tmp_path, "torch")
    assert out["ready"] == 200 and out["status"] == [200, 200]
    assert out["after_start"] is True
