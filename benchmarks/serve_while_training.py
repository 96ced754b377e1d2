"""``/v1/parse`` latency of a real server with and without a training job running beside it.

Starts ``slotfill serve`` (embedded job runner, SQLite) on a copy of the model store, sends
``--requests`` sequential parse requests of the demo valid utterances over one keep-alive
connection while idle, then again while a training job (demo data, default model size, one
torch thread, nice 10: the server's defaults) is in its epoch loop, then idle once more. The
second idle run shows how much the machine itself drifted meanwhile.

    python -m benchmarks.serve_while_training [--store model_store] [--requests 500]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from alembic.config import Config

from benchmarks.common import REPO_ROOT, format_table, latency_summary, log, write_results
from models.store import latest_version

NAME = "serve_while_training"
DEMO = REPO_ROOT / "data" / "demo"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store",
        type=Path,
        default=REPO_ROOT / "model_store",
        help="model store holding demo and demo-sentiment (slotfill bootstrap)",
    )
    parser.add_argument("--requests", type=int, default=500, help="requests per phase")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--out", type=Path, default=None, help="result JSON path")
    parser.add_argument("--quick", action="store_true", help="100 requests per phase")
    return parser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _copy_store(source: Path, dest: Path) -> None:
    for name in ("demo", "demo-sentiment"):
        version = latest_version(source, name)
        if version is None:
            sys.exit(f"{source} has no {name} model; run `slotfill bootstrap` first")
        shutil.copytree(source / name / version, dest / name / version)


def _measure(client: httpx.Client, texts: list[str], n: int) -> list[float]:
    seconds = []
    for i in range(n):
        started = time.perf_counter()
        response = client.post("/v1/parse", json={"text": texts[i % len(texts)]})
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
    return seconds


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = 100 if args.quick else args.requests
    texts = (DEMO / "valid" / "seq.in").read_text().splitlines()
    token = secrets.token_hex(16)
    auth = {"Authorization": f"Bearer {token}"}
    with tempfile.TemporaryDirectory(prefix="slotfill-bench-") as tmp:
        work = Path(tmp)
        _copy_store(args.store, work / "store")
        db_url = f"sqlite:///{work / 'slotfill.db'}"
        config = Config(str(REPO_ROOT / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", db_url)
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        port = _free_port()
        env = os.environ | {
            "SLOTFILL_MODEL_STORE": str(work / "store"),
            "SLOTFILL_DATABASE_URL": db_url,
            "SLOTFILL_DATA_DIR": str(REPO_ROOT / "data"),
            "SLOTFILL_DEMO_DATA_DIR": str(DEMO),
            "SLOTFILL_LOG_SPILL_DIR": str(work / "spill"),
            "SLOTFILL_ADMIN_TOKEN": token,
        }
        env.pop("SLOTFILL_REDIS_URL", None)
        serve = [
            sys.executable,
            "-m",
            "slotfill.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ]
        server = subprocess.Popen(serve, env=env, cwd=REPO_ROOT)
        phases: dict[str, dict[str, float]] = {}
        job: dict[str, Any] = {}
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                _wait(lambda: client.get("/readyz").status_code == 200, 120, "the server")
                log(f"server up; warming up, then {n} requests idle")
                _measure(client, texts, 50)
                phases["idle"] = latency_summary(_measure(client, texts, n))
                body = {
                    "task": "slots",
                    "model": "demo",
                    "dataset": "demo",
                    "activate": "never",
                    "hyperparameters": {"epochs": 1000, "patience": 1000},
                }
                job_id = client.post("/v1/admin/train", json=body, headers=auth).json()["job_id"]

                def in_epochs() -> bool:
                    state = client.get(f"/v1/admin/jobs/{job_id}", headers=auth).json()
                    return bool(state["status"] == "running" and state["progress"])

                _wait(in_epochs, 300, "the job's first epoch")
                log(f"job {job_id} is training; {n} requests")
                phases["training"] = latency_summary(_measure(client, texts, n))
                job = client.get(f"/v1/admin/jobs/{job_id}", headers=auth).json()
                client.post(f"/v1/admin/jobs/{job_id}/cancel", json={}, headers=auth)
                _wait(
                    lambda: (
                        client.get(f"/v1/admin/jobs/{job_id}", headers=auth).json()["status"]
                        == "cancelled"
                    ),
                    60,
                    "the job to stop",
                )
                log(f"job cancelled; {n} requests idle again")
                phases["idle_after"] = latency_summary(_measure(client, texts, n))
        finally:
            server.terminate()
            server.wait(60)
    return {
        "requests_per_phase": n,
        "workers": args.workers,
        "job": {
            "status_during": job.get("status"),
            "epoch_reached": (job.get("progress") or {}).get("epoch"),
            "nice": 10,
            "threads": 1,
        },
        "phases_ms": phases,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = datetime.now(UTC)
    payload = run(args)
    rows = [
        [phase, s["n"], s["p50_ms"], s["p90_ms"], s["p99_ms"], s["max_ms"]]
        for phase, s in payload["phases_ms"].items()
    ]
    print(format_table(["phase", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows))
    print(f"job during the 'training' phase: {payload['job']}")
    print(f"wrote {write_results(NAME, args, started, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
