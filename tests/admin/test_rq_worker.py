"""Jobs on the RQ queue: the server only enqueues, a real ``slotfill worker`` process runs them
against the Redis server at 127.0.0.1:6379 (database 15, a queue of its own per test).

Without a reachable Redis these tests are skipped locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from admin_support import (
    AUTH,
    FAST,
    REDIS_URL,
    REPO_ROOT,
    V1,
    MakeSettings,
    parse_version,
    wait_for,
)
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from app.main import create_app

pytestmark = pytest.mark.timeout(150)


@pytest.mark.slow
@pytest.mark.redis
def test_a_job_runs_on_a_real_slotfill_worker(
    make_settings: MakeSettings, queue_name: str, store: Path, data_dir: Path, db_url: str
) -> None:
    settings = make_settings(redis_url=REDIS_URL, job_queue=queue_name)
    with TestClient(create_app(settings)) as client:
        body = {
            "task": "slots",
            "model": "demo",
            "dataset": "demo",
            "hyperparameters": FAST,
            "activate": "always",
        }
        response = client.post("/v1/admin/train", json=body, headers=AUTH)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        with Redis.from_url(REDIS_URL) as connection:
            assert Queue(queue_name, connection=connection).count == 1
        # The server runs nothing itself when there is a queue.
        assert client.get(f"/v1/admin/jobs/{job_id}", headers=AUTH).json()["status"] == "queued"

        env = os.environ | {
            "SLOTFILL_DATABASE_URL": db_url,
            "SLOTFILL_MODEL_STORE": str(store),
            "SLOTFILL_DATA_DIR": str(data_dir),
            "SLOTFILL_DEMO_DATA_DIR": str(REPO_ROOT / "data" / "demo"),
            "SLOTFILL_REDIS_URL": REDIS_URL,
            "SLOTFILL_JOB_QUEUE": queue_name,
            "SLOTFILL_JOB_HEARTBEAT_SECONDS": "0.5",
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "slotfill.cli", "worker", "--burst"],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            output, _ = worker.communicate(timeout=120)
        finally:
            worker.kill()
        assert worker.returncode == 0, output

        job = client.get(f"/v1/admin/jobs/{job_id}", headers=AUTH).json()
        assert job["status"] == "succeeded", (job, output)
        assert job["worker"] == f"{socket.gethostname()}:{worker.pid}"
        assert job["activated"] is True
        version = job["result_version"]
        assert (store / "demo" / version / "manifest.json").is_file()
        models = client.get("/v1/admin/models", headers=AUTH).json()["models"]
        demo = next(m for m in models if m["name"] == "demo")
        assert [v["version"] for v in demo["versions"]] == [V1, version]
        assert demo["active_version"] == version
        # The server follows the pointer the worker moved.
        wait_for(lambda: parse_version(client) == version, 5, "the server to serve it")


def test_an_unreachable_queue_is_503_and_the_job_failed(make_settings: MakeSettings) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    with TestClient(create_app(settings)) as client:
        body = {"task": "slots", "model": "demo", "dataset": "demo"}
        response = client.post("/v1/admin/train", json=body, headers=AUTH)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "queue_unavailable"
        [job] = client.get("/v1/admin/jobs", headers=AUTH).json()["jobs"]
        assert job["status"] == "failed"
        assert job["error"].startswith("could not be queued")
