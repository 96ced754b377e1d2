"""Submitting a training job: check it can run (422 before anything is queued), record it,
and with Redis configured put it on the RQ queue as well."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db.admin import create_job, get_job, list_model_versions
from app.db.tables import JobStatus, TrainingJob
from app.errors import InvalidJobRequest, QueueUnavailable
from app.operating.datasets import resolve_dataset
from models.store import check_name

Sessions = sessionmaker[Session]
# What ``slotfill worker`` runs for a queued job (app.operating.runner.run_job).
RQ_FUNCTION = "app.operating.runner.run_job"


def check_job_request(settings: Settings, sessions: Sessions, job: TrainingJob) -> None:
    """Reject a job that cannot run (422) before it is queued."""
    resolve_dataset(settings, job.dataset, job.task)
    check_name(job.model)
    if job.task == "sentiment" and "intent_weight" in job.params:
        raise InvalidJobRequest("'intent_weight' applies to slot taggers only")
    served_as = "sentiment" if job.model == settings.sentiment_model else None
    if job.model == settings.default_model or job.model in settings.models:
        served_as = "slots"
    if served_as is not None and served_as != job.task:
        raise InvalidJobRequest(f"model '{job.model}' is served as a {served_as} model")
    with sessions() as session:
        tasks = {v.task for v in list_model_versions(session, job.model)}
    if tasks - {job.task}:
        raise InvalidJobRequest(f"model '{job.model}' has {', '.join(tasks)} versions already")


def submit_job(settings: Settings, sessions: Sessions, job: TrainingJob) -> TrainingJob:
    """Validate and queue ``job``; with Redis configured, also put it on the RQ queue."""
    check_job_request(settings, sessions, job)
    job.id = uuid.uuid4().hex
    with sessions() as session, session.begin():
        create_job(session, job)
    if settings.redis_url:
        try:
            enqueue(settings, job.id)
        except Exception as err:  # redis errors, or a bad URL
            with sessions() as session, session.begin():
                stored = get_job(session, job.id)
                if stored is not None:
                    stored.status, stored.error = JobStatus.failed, f"could not be queued: {err}"
                    stored.finished_at = datetime.now(UTC)
            raise QueueUnavailable(f"the job queue is unavailable: {err}") from err
    return job


def enqueue(settings: Settings, job_id: str) -> None:
    """Put :func:`run_job` for ``job_id`` on the RQ queue."""
    from redis import Redis
    from rq import Queue

    assert settings.redis_url
    with Redis.from_url(settings.redis_url, socket_connect_timeout=3) as connection:
        Queue(settings.job_queue, connection=connection).enqueue(
            RQ_FUNCTION,
            job_id,
            job_id=f"slotfill-{job_id}",
            description=f"slotfill training job {job_id}",
            # The runner enforces job_timeout_seconds itself; RQ's limit is a backstop.
            job_timeout=int(settings.job_timeout_seconds) + 300,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
        )
