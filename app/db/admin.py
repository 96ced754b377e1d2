"""Queries behind the admin API: model versions, the active-version pointer, training jobs and
feedback. Each function takes a Session; the caller owns the transaction.

Job state changes are conditional updates (``... WHERE status = 'running'``), so two processes
racing for one job, or a runner and whoever marks it stale, cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from app.db.tables import (
    ActiveModel,
    Feedback,
    FeedbackStatus,
    JobStatus,
    ModelVersion,
    RequestLog,
    TrainingJob,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# ----------------------------------------------------------------------- model versions


def get_version(session: Session, name: str, version: str) -> ModelVersion | None:
    """The recorded version, or None."""
    return session.scalars(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    ).one_or_none()


def list_model_versions(session: Session, name: str | None = None) -> list[ModelVersion]:
    """Recorded versions (of ``name``, or all), by name then oldest first."""
    query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
    if name is not None:
        query = query.where(ModelVersion.name == name)
    return list(session.scalars(query))


def record_version(
    session: Session,
    *,
    name: str,
    version: str,
    task: str,
    checksum: str,
    metrics: dict[str, Any] | None,
    job_id: str | None = None,
) -> ModelVersion:
    """Record an artifact version (returns the existing row if it is recorded already)."""
    existing = get_version(session, name, version)
    if existing is not None:
        return existing
    row = ModelVersion(
        name=name, version=version, task=task, checksum=checksum, metrics=metrics, job_id=job_id
    )
    session.add(row)
    session.flush()
    return row


# ----------------------------------------------------------------------- active pointer


def get_pointer(session: Session, name: str) -> ActiveModel | None:
    """The active-version pointer of ``name``, or None if it was never set."""
    return session.get(ActiveModel, name)


def list_pointers(session: Session) -> list[tuple[ActiveModel, ModelVersion | None]]:
    """Every pointer with its recorded version (None if that row is missing)."""
    query = (
        select(ActiveModel, ModelVersion)
        .outerjoin(
            ModelVersion,
            (ModelVersion.name == ActiveModel.name) & (ModelVersion.version == ActiveModel.version),
        )
        .order_by(ActiveModel.name)
    )
    return [(pointer, version) for pointer, version in session.execute(query)]


def set_pointer(
    session: Session,
    name: str,
    version: str,
    previous_version: str | None,
    history: list[str] | None = None,
) -> ActiveModel:
    """Point ``name`` at ``version``. ``history``: the versions active before it, oldest
    first (a rollback activates the last); ``previous_version`` is that last one."""
    pointer = session.get(ActiveModel, name)
    if pointer is None:
        pointer = ActiveModel(
            name=name, version=version, previous_version=previous_version, history=history
        )
        session.add(pointer)
    else:
        pointer.version, pointer.previous_version = version, previous_version
        pointer.history = history
        pointer.updated_at = _now()
    session.flush()
    return pointer


# ----------------------------------------------------------------------- training jobs


def create_job(session: Session, job: TrainingJob) -> TrainingJob:
    """Insert a new job (status ``queued``)."""
    job.status = JobStatus.queued
    job.cancel_requested = False
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: str) -> TrainingJob | None:
    """A job by id, or None."""
    return session.get(TrainingJob, job_id)


def list_jobs(
    session: Session, status: JobStatus | None = None, limit: int = 50
) -> list[TrainingJob]:
    """Jobs, newest first."""
    query = select(TrainingJob).order_by(TrainingJob.created_at.desc()).limit(limit)
    if status is not None:
        query = query.where(TrainingJob.status == status)
    return list(session.scalars(query))


def oldest_queued_job(session: Session) -> str | None:
    """Id of the job that waited longest, or None."""
    return session.scalars(
        select(TrainingJob.id)
        .where(TrainingJob.status == JobStatus.queued)
        .order_by(TrainingJob.created_at)
        .limit(1)
    ).first()


def claim_job(session: Session, job_id: str, worker: str) -> bool:
    """Move a queued job to running for ``worker``; False if someone else got it first or it
    was cancelled."""
    now = _now()
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.queued)
        .values(status=JobStatus.running, started_at=now, heartbeat_at=now, worker=worker)
    )
    return _rowcount(result) == 1


def heartbeat(
    session: Session, job_id: str, progress: dict[str, Any] | None, log_tail: str
) -> tuple[bool, bool]:
    """Store progress and the log tail of a running job: (still ours, cancel requested)."""
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.running)
        .values(heartbeat_at=_now(), progress=progress, log_tail=log_tail)
    )
    if _rowcount(result) != 1:
        return False, False
    cancel = session.scalar(select(TrainingJob.cancel_requested).where(TrainingJob.id == job_id))
    return True, bool(cancel)


def finish_job(session: Session, job_id: str, status: JobStatus, **values: Any) -> bool:
    """Move a running job to a final ``status``; False if it was no longer running."""
    assert JobStatus(status).final
    result = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.running)
        .values(status=status, finished_at=_now(), **values)
    )
    return _rowcount(result) == 1


def request_cancel(session: Session, job_id: str) -> TrainingJob | None:
    """Cancel a queued job at once, or ask the runner of a running one to stop."""
    session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, finished_at=_now(), error="cancelled before it started")
    )
    session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.running)
        .values(cancel_requested=True)
    )
    job = session.get(TrainingJob, job_id)
    if job is not None:
        session.refresh(job)
    return job


def fail_stale_jobs(session: Session, stale_seconds: float) -> list[str]:
    """Mark running jobs without a heartbeat for ``stale_seconds`` failed; their ids.

    Reads first, so that the common case (nothing stale) takes no write lock on SQLite.
    """
    cutoff = _now() - timedelta(seconds=stale_seconds)
    stale = list(
        session.scalars(
            select(TrainingJob.id).where(
                TrainingJob.status == JobStatus.running, TrainingJob.heartbeat_at < cutoff
            )
        )
    )
    failed = []
    for job_id in stale:
        result = session.execute(
            update(TrainingJob)
            .where(
                TrainingJob.id == job_id,
                TrainingJob.status == JobStatus.running,
                TrainingJob.heartbeat_at < cutoff,
            )
            .values(
                status=JobStatus.failed,
                finished_at=_now(),
                error=f"the job's worker stopped responding (no heartbeat for {stale_seconds:g}s)",
            )
        )
        if _rowcount(result) == 1:
            failed.append(job_id)
    return failed


# ----------------------------------------------------------------------- feedback


def add_feedback(session: Session, feedback: Feedback) -> Feedback:
    """Insert a correction."""
    session.add(feedback)
    session.flush()
    return feedback


def feedback_of_request(session: Session, request_id: str) -> Feedback | None:
    """The correction of a logged request, or None."""
    return session.scalars(select(Feedback).where(Feedback.request_id == request_id)).one_or_none()


def get_feedback(session: Session, feedback_id: int) -> Feedback | None:
    """A correction by id, or None."""
    return session.get(Feedback, feedback_id)


def list_feedback(
    session: Session, limit: int = 100, offset: int = 0, status: FeedbackStatus | None = None
) -> list[Feedback]:
    """Corrections (with ``status``, or all), newest first."""
    query = select(Feedback).order_by(Feedback.id.desc()).limit(limit).offset(offset)
    if status is not None:
        query = query.where(Feedback.status == status)
    return list(session.scalars(query))


def review_feedback(
    session: Session, feedback_id: int, status: FeedbackStatus, reviewer: str
) -> Feedback | None:
    """Accept or reject a correction; None if there is no such correction."""
    row = session.get(Feedback, feedback_id)
    if row is None:
        return None
    row.status, row.reviewed_by, row.reviewed_at = status, reviewer, _now()
    session.flush()
    return row


def count_feedback(session: Session) -> dict[str, int]:
    """Corrections per status."""
    query = select(Feedback.status, func.count()).group_by(Feedback.status)
    return {str(status): int(n) for status, n in session.execute(query)}


def feedback_with_logs(
    session: Session, model: str | None = None
) -> Sequence[tuple[Feedback, RequestLog | None]]:
    """The accepted corrections (of parses by model ``model``, any version, if given), oldest
    first, with the logged request each corrects (if still kept). Pending and rejected ones
    never reach training."""
    query = (
        select(Feedback, RequestLog)
        .outerjoin(RequestLog, RequestLog.request_id == Feedback.request_id)
        .where(Feedback.status == FeedbackStatus.accepted)
        .order_by(Feedback.id)
    )
    if model is not None:
        query = query.where(Feedback.model.startswith(f"{model}@", autoescape=True))
    return [(fb, row) for fb, row in session.execute(query)]
