"""Admin queries on SQLite and PostgreSQL: job claims and state changes are conditional, so
racing processes cannot both win; versions are unique; the pointer is an upsert."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from app.db import Feedback, ModelVersion, TrainingJob, insert_request_logs, make_session_factory
from app.db.admin import (
    add_feedback,
    claim_job,
    create_job,
    fail_stale_jobs,
    feedback_with_logs,
    finish_job,
    get_job,
    heartbeat,
    list_pointers,
    oldest_queued_job,
    record_version,
    request_cancel,
    set_pointer,
)
from app.db.tables import FeedbackStatus

pytestmark = pytest.mark.timeout(60)


def _job(job_id: str) -> TrainingJob:
    return TrainingJob(
        id=job_id,
        task="slots",
        model="demo",
        dataset="demo",
        params={"epochs": 1},
        activate="always",
        include_feedback=False,
    )


def _add_jobs(engine: Engine, *ids: str) -> None:
    with make_session_factory(engine)() as session, session.begin():
        for job_id in ids:
            create_job(session, _job(job_id))


def test_a_job_is_claimed_once_even_by_racing_threads(log_engine: Engine) -> None:
    ids = [f"job{i:02d}" for i in range(10)]
    _add_jobs(log_engine, *ids)
    sessions = make_session_factory(log_engine)
    barrier = threading.Barrier(3)
    won: dict[str, list[str]] = {"a": [], "b": [], "c": []}

    def claim_all(worker: str) -> None:
        barrier.wait()
        for job_id in ids:
            with sessions() as session, session.begin():
                if claim_job(session, job_id, worker):
                    won[worker].append(job_id)

    threads = [threading.Thread(target=claim_all, args=(w,)) for w in won]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(j for claimed in won.values() for j in claimed) == ids
    with sessions() as session:
        assert oldest_queued_job(session) is None
        assert {get_job(session, j).worker for j in ids} <= set(won)  # type: ignore[union-attr]


def test_running_job_life(log_engine: Engine) -> None:
    _add_jobs(log_engine, "j1")
    sessions = make_session_factory(log_engine)
    with sessions() as session, session.begin():
        assert oldest_queued_job(session) == "j1"
        assert claim_job(session, "j1", "host:1")
        assert not claim_job(session, "j1", "host:2")
    with sessions() as session, session.begin():
        assert heartbeat(session, "j1", {"epoch": 1}, "epoch 1") == (True, False)
        cancelled = request_cancel(session, "j1")
        assert cancelled is not None and cancelled.status == "running"
        assert cancelled.cancel_requested
        assert heartbeat(session, "j1", {"epoch": 2}, "epoch 2") == (True, True)
    with sessions() as session, session.begin():
        assert finish_job(session, "j1", "cancelled", error="cancelled by request")
        assert not finish_job(session, "j1", "succeeded")  # final states are final
        assert heartbeat(session, "j1", None, "") == (False, False)
    with sessions() as session:
        job = get_job(session, "j1")
        assert job is not None
        assert (job.status, job.progress, job.log_tail) == ("cancelled", {"epoch": 2}, "epoch 2")
        assert job.finished_at is not None and job.finished_at.tzinfo is not None


def test_cancelling_a_queued_job_keeps_it_from_running(log_engine: Engine) -> None:
    _add_jobs(log_engine, "q1")
    sessions = make_session_factory(log_engine)
    with sessions() as session, session.begin():
        job = request_cancel(session, "q1")
        assert job is not None and job.status == "cancelled"
        assert not claim_job(session, "q1", "host:1")
        assert request_cancel(session, "missing") is None


def test_stale_running_jobs_fail(log_engine: Engine) -> None:
    _add_jobs(log_engine, "old", "fresh")
    sessions = make_session_factory(log_engine)
    with sessions() as session, session.begin():
        claim_job(session, "old", "host:1")
        claim_job(session, "fresh", "host:2")
        stale = get_job(session, "old")
        assert stale is not None
        stale.heartbeat_at = datetime.now(UTC) - timedelta(seconds=120)
    with sessions() as session, session.begin():
        assert fail_stale_jobs(session, 60) == ["old"]
        assert fail_stale_jobs(session, 60) == []
    with sessions() as session:
        assert get_job(session, "old").status == "failed"  # type: ignore[union-attr]
        assert get_job(session, "fresh").status == "running"  # type: ignore[union-attr]


def test_versions_are_unique_and_the_pointer_is_an_upsert(log_engine: Engine) -> None:
    sessions = make_session_factory(log_engine)
    fields: dict[str, Any] = {
        "name": "demo",
        "task": "slots",
        "checksum": "ab" * 32,
        "metrics": {"slot_f1": 0.5},
    }
    with sessions() as session, session.begin():
        first = record_version(session, version="20260101T000000000001Z", **fields)
        again = record_version(session, version="20260101T000000000001Z", **fields)
        assert first.id == again.id
        record_version(session, version="20260101T000000000002Z", **fields)
        set_pointer(session, "demo", "20260101T000000000001Z", None)
    with sessions() as session, session.begin():
        set_pointer(session, "demo", "20260101T000000000002Z", "20260101T000000000001Z")
    with sessions() as session:
        [(pointer, version)] = list_pointers(session)
        assert (pointer.version, pointer.previous_version) == (
            "20260101T000000000002Z",
            "20260101T000000000001Z",
        )
        assert version is not None and version.metrics == {"slot_f1": 0.5}
    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.add(ModelVersion(version="20260101T000000000002Z", **fields))


def test_feedback_joins_its_logged_request(log_engine: Engine) -> None:
    sessions = make_session_factory(log_engine)
    row = {
        "request_id": "r1",
        "route": "/v1/parse",
        "text": "hi",
        "text_mode": "full",
        "response": {"intent": {"name": "greet"}},
        "latency_ms": 1.0,
        "status_code": 200,
    }
    with sessions() as session, session.begin():
        insert_request_logs(session, [row])
        accepted = FeedbackStatus.accepted
        add_feedback(session, Feedback(request_id="r1", text="hi", intent="bye", status=accepted))
        add_feedback(session, Feedback(request_id="gone", text="yo", slots=[], status=accepted))
        add_feedback(session, Feedback(request_id="waits", text="hey", intent="greet"))
    with sessions() as session:
        # Only accepted corrections: the pending one never reaches training.
        (fb1, log1), (fb2, log2) = feedback_with_logs(session)
    assert log1 is not None and log1.response is not None
    assert (fb1.intent, log1.response["intent"]["name"]) == ("bye", "greet")
    assert (fb2.slots, log2) == ([], None)
