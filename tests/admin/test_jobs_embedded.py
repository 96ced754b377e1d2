"""Training jobs run by the server itself (no Redis): the whole life of a job, failure,
cancellation, stale jobs, and activation that fails."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from admin_support import AUTH, FAST, JOB_WAIT, V1, parse_version, wait_for, wait_job
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import ActiveModel, ModelVersion, TrainingJob
from models.artifact import WEIGHTS, file_sha256


def _train(client: TestClient, **overrides: object) -> str:
    body = {"task": "slots", "model": "demo", "dataset": "demo", "hyperparameters": FAST}
    response = client.post("/v1/admin/train", json=body | overrides, headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert response.headers["location"] == f"/v1/admin/jobs/{response.json()['job_id']}"
    job_id: str = response.json()["job_id"]
    return job_id


def _versions(client: TestClient, name: str = "demo") -> list[str]:
    """Recorded versions of ``name`` (listing also records those only on disk)."""
    models = client.get("/v1/admin/models", headers=AUTH).json()["models"]
    return [v["version"] for m in models if m["name"] == name for v in m["versions"]]


@pytest.mark.slow
def test_job_trains_records_activates_and_serves_the_new_version(
    client: TestClient, store: Path, sessions: sessionmaker[Session]
) -> None:
    assert parse_version(client) == V1
    job_id = _train(client, activate="always")

    seen = ["queued"]

    def finished() -> dict[str, object] | None:
        job: dict[str, object] = client.get(f"/v1/admin/jobs/{job_id}", headers=AUTH).json()
        if job["status"] != seen[-1]:
            seen.append(str(job["status"]))
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, JOB_WAIT, "the job to finish")
    assert seen == ["queued", "running", "succeeded"], job
    assert job["error"] is None
    assert job["activated"] is True
    assert job["progress"]["epoch"] == 2
    assert job["progress"]["loss"] > 0
    assert "slot_f1" in job["progress"]["valid"]
    assert "activated demo@" in job["log_tail"]
    version = job["result_version"]

    # Recorded with its metrics and checksum, and the pointer moved.
    models = {m["name"]: m for m in client.get("/v1/admin/models", headers=AUTH).json()["models"]}
    demo = models["demo"]
    assert [v["version"] for v in demo["versions"]] == [V1, version]
    recorded = demo["versions"][1]
    assert recorded["checksum"] == file_sha256(store / "demo" / version / WEIGHTS)
    assert recorded["job_id"] == job_id
    assert "slot_f1" in recorded["metrics"]
    assert (demo["active_version"], demo["previous_version"]) == (version, V1)

    # The poller swaps the served model; responses name it.
    wait_for(lambda: parse_version(client) == version, 5, "/v1/parse to use the new version")

    # Rollback and activate again, each answered by this worker at once. A rollback takes
    # the version off the history: nothing is left to roll back to.
    rolled = client.post("/v1/admin/models/demo/rollback", json={}, headers=AUTH)
    assert rolled.json() == {"name": "demo", "version": V1, "previous_version": None}
    assert parse_version(client) == V1
    again = client.post("/v1/admin/models/demo/activate", json={"version": version}, headers=AUTH)
    assert again.status_code == 200, again.text
    assert again.json() == {"name": "demo", "version": version, "previous_version": V1}
    assert parse_version(client) == version


@pytest.mark.slow
def test_job_on_a_corrupt_dataset_fails_and_activates_nothing(
    client: TestClient, store: Path, sessions: sessionmaker[Session]
) -> None:
    job = wait_job(client, _train(client, dataset="corrupt", activate="always"))
    assert job["status"] == "failed"
    assert "training failed" in job["error"]
    assert "3 lines, but" in job["error"]  # the trainer's own message about seq.out
    assert job["result_version"] is None and job["activated"] is None
    assert _versions(client) == [V1]
    assert sorted(p.name for p in (store / "demo").iterdir()) == [V1]
    with sessions() as session:
        assert session.get(ActiveModel, "demo") is None
    assert parse_version(client) == V1


@pytest.mark.slow
def test_cancel_a_queued_and_a_running_job(
    client: TestClient, store: Path, sessions: sessionmaker[Session]
) -> None:
    long = FAST | {"epochs": 1000, "patience": 1000}
    running = _train(client, hyperparameters=long)

    def training() -> bool:
        job = client.get(f"/v1/admin/jobs/{running}", headers=AUTH).json()
        return job["status"] == "running" and job["progress"] is not None

    wait_for(training, JOB_WAIT, "the first epoch")  # stopped mid-training, not while starting
    queued = _train(client)  # one job at a time: this one waits

    response = client.post(f"/v1/admin/jobs/{queued}/cancel", json={}, headers=AUTH)
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"

    response = client.post(f"/v1/admin/jobs/{running}/cancel", json={}, headers=AUTH)
    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    job = wait_job(client, running)
    assert job["status"] == "cancelled"
    assert job["error"] == "cancelled by request"

    again = client.post(f"/v1/admin/jobs/{running}/cancel", json={}, headers=AUTH)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_finished"
    assert wait_job(client, queued)["status"] == "cancelled"  # never started
    assert _versions(client) == [V1]
    assert sorted(p.name for p in (store / "demo").iterdir()) == [V1]  # no partial artifact


def test_unknown_job_is_404(client: TestClient) -> None:
    for response in (
        client.get("/v1/admin/jobs/nope", headers=AUTH),
        client.post("/v1/admin/jobs/nope/cancel", json={}, headers=AUTH),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "job_not_found", "message": "no training job 'nope'"}
        }


def test_a_running_job_without_heartbeat_is_failed_by_the_next_poll(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    """What a ``kill -9`` of the worker running a job leaves behind."""
    old = datetime.now(UTC) - timedelta(minutes=10)
    with sessions() as session, session.begin():
        session.add(
            TrainingJob(
                id="f" * 32,
                status="running",
                task="slots",
                model="demo",
                dataset="demo",
                params={},
                activate="always",
                include_feedback=False,
                cancel_requested=False,
                started_at=old,
                heartbeat_at=old,
            )
        )
    # The version poller fails it (every 0.3 s here); reading the job changes nothing.
    job = wait_job(client, "f" * 32, timeout=10)
    assert job["status"] == "failed"
    assert "no heartbeat" in job["error"]
    assert job["activated"] is None


def test_activation_that_fails_to_load_keeps_the_current_version(
    client: TestClient, store: Path, sessions: sessionmaker[Session]
) -> None:
    bad = "20260101T000000000002Z"
    shutil.copytree(store / "demo" / V1, store / "demo" / bad)
    weights = store / "demo" / bad / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))

    response = client.post("/v1/admin/models/demo/activate", json={"version": bad}, headers=AUTH)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "activation_failed"
    assert "checksum" in response.json()["error"]["message"]
    assert parse_version(client) == V1
    with sessions() as session:
        assert session.get(ActiveModel, "demo") is None

    missing = "20260101T000000000009Z"
    response = client.post(
        "/v1/admin/models/demo/activate", json={"version": missing}, headers=AUTH
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "version_not_found"

    response = client.post("/v1/admin/models/demo/rollback", json={}, headers=AUTH)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_previous_version"


def test_a_sentiment_version_cannot_be_activated_as_the_tagger(
    client: TestClient, store: Path
) -> None:
    other = "20260101T000000000003Z"
    shutil.copytree(store / "demo-sentiment" / V1, store / "demo" / other)
    response = client.post("/v1/admin/models/demo/activate", json={"version": other}, headers=AUTH)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "activation_failed"
    assert parse_version(client) == V1


def _set_recorded_metrics(
    client: TestClient, sessions: sessionmaker[Session], name: str, metrics: dict[str, float]
) -> None:
    """Give the recorded version V1 of ``name`` these valid scores."""
    client.get("/v1/admin/models", headers=AUTH)  # records the versions found on disk
    with sessions() as session, session.begin():
        row = session.scalars(
            select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == V1)
        ).one()
        row.metrics = metrics


@pytest.mark.slow
def test_if_better_keeps_a_better_active_version(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    _set_recorded_metrics(client, sessions, "demo", {"slot_f1": 1.0})
    job = wait_job(client, _train(client, activate="if_better"))
    assert job["status"] == "succeeded", job
    assert job["activated"] is False
    assert f"kept demo@{V1}: valid slot_f1" in job["log_tail"]
    assert _versions(client) == [V1, job["result_version"]]
    with sessions() as session:
        pointer = session.get(ActiveModel, "demo")
        # Pinned, so that a restart keeps serving V1 rather than the newest folder.
        assert pointer is not None and pointer.version == V1
    assert parse_version(client) == V1


@pytest.mark.slow
def test_if_better_activates_a_better_sentiment_model(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    _set_recorded_metrics(client, sessions, "demo-sentiment", {"macro_f1": -1.0})
    job_id = _train(client, task="sentiment", model="demo-sentiment", activate="if_better")
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job
    assert job["activated"] is True
    assert "macro_f1" in job["progress"]["valid"]
    new = f"demo-sentiment@{job['result_version']}"

    def sentiment_ref() -> str:
        response = client.post("/v1/parse", json={"text": "thanks, great flight!"})
        ref: str = response.json()["model"]["sentiment"]
        return ref

    wait_for(lambda: sentiment_ref() == new, 5, "the new sentiment model to serve")
