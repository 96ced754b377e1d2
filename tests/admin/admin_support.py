"""Helpers of the admin tests: constants, migration, waiting for jobs.

Fixtures (conftest.py) give a model store with the tiny artifacts as ``demo`` and
``demo-sentiment``, a data directory (``tiny``, ``corrupt``; ``demo`` is the repository's
bundled demo data), a migrated SQLite database, and started apps with the admin API on.

Training jobs in these tests are real ``slotfill train`` processes with tiny settings
(``FAST``): a few seconds each, most of it importing torch.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient

from app.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_DATA = REPO_ROOT / "tests" / "data"
TOKEN = "t0ken-for-admin-tests-5f2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
V1 = "20260101T000000000001Z"
# Hyper-parameters that train the demo data in about a second.
FAST: dict[str, Any] = {
    "epochs": 2,
    "hidden_size": 16,
    "word_dim": 16,
    "char_dim": 8,
    "char_filters": 8,
}
FINAL = ("succeeded", "failed", "cancelled")

MakeSettings = Callable[..., Settings]


def migrate(url: str) -> None:
    """``alembic upgrade head`` on ``url``."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


# Bound on a test's wait for a training job (to start an epoch, to end, to stop when cancelled):
# generous, so that a machine busy with other work slows these tests down instead of failing
# them, while a job that hangs still fails the test.
JOB_WAIT = 300.0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def wait_job(
    client: TestClient, job_id: str, statuses: tuple[str, ...] = FINAL, timeout: float = JOB_WAIT
) -> dict[str, Any]:
    """The job once its status is one of ``statuses``."""

    def poll() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/v1/admin/jobs/{job_id}", headers=AUTH).json()
        return job if job["status"] in statuses else None

    result: dict[str, Any] = wait_for(poll, timeout, f"job {job_id} to be {statuses}")
    return result


def parse_version(client: TestClient, text: str = "book a table for two at 7pm") -> str:
    """The tagger version ``/v1/parse`` answered with."""
    response = client.post("/v1/parse", json={"text": text})
    assert response.status_code == 200, response.text
    version: str = response.json()["model"]["version"]
    return version


REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own, for the RQ tests


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A fresh RQ queue on the test Redis: skipped without Redis locally, failed when ``CI``
    is set. The queue and every key RQ kept about it are deleted afterwards."""
    from redis import Redis
    from redis.exceptions import RedisError
    from rq import Queue

    connection = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        connection.ping()
    except RedisError as err:
        message = f"Redis at 127.0.0.1:6379 is not usable: {err}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so the Redis tests must run)", pytrace=False)
        pytest.skip(message)
    name = f"slotfill-test-{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        Queue(name, connection=connection).delete(delete_jobs=True)
        _forget_queue(connection, name)
        connection.close()


def _forget_queue(connection: Any, name: str) -> None:
    """Delete what RQ keeps about queue ``name`` beyond the queue itself: its registries, its
    jobs (the killed worker's one never expires) and its workers (the killed one's key lives
    for hours)."""
    origin = name.encode()
    for key in connection.scan_iter(match=f"rq:*:{name}", count=1000):
        connection.delete(key)
    for key in connection.scan_iter(match="rq:job:*", count=1000):
        if connection.hget(key, "origin") == origin:
            job_id = key.decode().removeprefix("rq:job:")
            connection.delete(key, f"rq:results:{job_id}", f"rq:executions:{job_id}")
    for key in connection.scan_iter(match="rq:worker:*", count=1000):
        if connection.type(key) == b"hash" and connection.hget(key, "queues") == origin:
            connection.delete(key, key + b":executions")
            connection.srem("rq:workers", key)
