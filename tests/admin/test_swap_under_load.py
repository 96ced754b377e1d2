"""Activation and rollback under load, on a real ``slotfill serve --workers 2``.

A client thread sends ``/v1/parse`` requests back to back (a new connection each, so both
workers get them) while a new version is activated and then rolled back. No request may
fail, and both workers must report each change on ``/readyz`` within 5 seconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from admin_support import AUTH, REPO_ROOT, TOKEN, V1

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
V2 = "20260101T000000000002Z"
MAX_REQUESTS = 5000  # a bound on the load, should the test hang elsewhere
CLOSE = {"Connection": "close"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(store: Path, data_dir: Path, db_url: str, tmp_path: Path) -> Iterator[str]:
    """Base URL of a 2-worker server on this test's store and database."""
    port = _free_port()
    env = os.environ | {
        "SLOTFILL_MODEL_STORE": str(store),
        "SLOTFILL_DATA_DIR": str(data_dir),
        "SLOTFILL_DATABASE_URL": db_url,
        "SLOTFILL_LOG_SPILL_DIR": str(tmp_path / "spill"),
        "SLOTFILL_DEFAULT_MODEL": "demo",
        "SLOTFILL_SENTIMENT_MODEL": "demo-sentiment",
        "SLOTFILL_ADMIN_TOKEN": TOKEN,
        "SLOTFILL_VERSION_POLL_SECONDS": "0.5",
    }
    env.pop("SLOTFILL_REDIS_URL", None)
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "slotfill.cli", "serve", "--workers", "2", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _worker_versions(base: str, want: str, timeout: float) -> dict[int, str]:
    """pid -> served tagger version, polled until both workers serve ``want``."""
    seen: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base}/readyz", headers=CLOSE, timeout=5)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            body = response.json()
            tagger = next(m for m in body["models"] if m.startswith("demo@"))
            seen[body["pid"]] = tagger.removeprefix("demo@")
            if len(seen) == 2 and set(seen.values()) == {want}:
                return seen
        time.sleep(0.05)
    return seen


def test_activate_and_rollback_under_load_with_two_workers(server: str, store: Path) -> None:
    started = _worker_versions(server, V1, timeout=120)
    assert len(started) == 2 and set(started.values()) == {V1}, started

    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server, headers=CLOSE, timeout=10) as client:
            while not stop.is_set() and len(results) < MAX_REQUESTS:
                try:
                    response = client.post("/v1/parse", json={"text": "book a table for two"})
                    version = response.json()["model"]["version"] if response.is_success else ""
                    results.append((response.status_code, version or response.text))
                except httpx.HTTPError as err:
                    results.append((0, repr(err)))

    shutil.copytree(store / "demo" / V1, store / "demo" / V2)  # as a finished job leaves it
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        response = httpx.post(
            f"{server}/v1/admin/models/demo/activate", json={"version": V2}, headers=AUTH
        )
        assert response.status_code == 200, response.text
        t0 = time.monotonic()
        activated = _worker_versions(server, V2, timeout=5)
        print(f"both workers on {V2} after {time.monotonic() - t0:.2f}s")
        assert set(activated.values()) == {V2} and len(activated) == 2, activated
        time.sleep(1)

        response = httpx.post(f"{server}/v1/admin/models/demo/rollback", json={}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json() == {"name": "demo", "version": V1, "previous_version": None}
        t0 = time.monotonic()
        rolled_back = _worker_versions(server, V1, timeout=5)
        print(f"both workers on {V1} after {time.monotonic() - t0:.2f}s")
        assert set(rolled_back.values()) == {V1} and len(rolled_back) == 2, rolled_back
        time.sleep(1)
    finally:
        stop.set()
        thread.join(15)

    print(f"{len(results)} requests under load")
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    assert len(results) >= 20, len(results)
    assert {version for _, version in results} == {V1, V2}
