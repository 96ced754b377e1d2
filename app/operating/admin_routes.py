"""Admin API under ``/v1/admin/``: training jobs, model versions, activation, feedback.

Every route needs ``Authorization: Bearer <SLOTFILL_ADMIN_TOKEN>``; without a configured
token the whole API answers 404 ``admin_disabled``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response

from app import paths
from app.db.admin import (
    get_job,
    list_feedback,
    list_jobs,
    list_model_versions,
    list_pointers,
    request_cancel,
)
from app.db.tables import JobStatus, TrainingJob
from app.deps import AdminDep, RegistryDep, SessionsDep, SettingsDep
from app.errors import ErrorResponse, JobFinished, JobNotFound
from app.operating.schemas import (
    ActivateRequest,
    ActivateResponse,
    AdminModelOut,
    AdminModelsResponse,
    FeedbackListResponse,
    FeedbackOut,
    JobOut,
    JobsResponse,
    TrainRequest,
    TrainResponse,
    VersionOut,
)
from app.operating.submission import submit_job
from app.operating.versions import activate_version, register_store, rollback_version
from models.store import NAME_PATTERN

router = APIRouter(
    prefix=paths.ADMIN,
    tags=["admin"],
    dependencies=[AdminDep],
    responses={code: {"model": ErrorResponse} for code in (401, 404, 409, 422, 503)},
)
ModelName = Path(pattern=NAME_PATTERN, description="Model name")


@router.post("/train", status_code=202, response_model=TrainResponse)
def train(
    body: TrainRequest, settings: SettingsDep, sessions: SessionsDep, response: Response
) -> TrainResponse:
    """Queue a training job; 422 (and nothing queued) for an unknown data set or bad
    hyper-parameters."""
    job = submit_job(
        settings,
        sessions,
        TrainingJob(
            task=body.task,
            model=body.model,
            dataset=body.dataset,
            params=body.hyperparameters.model_dump(exclude_none=True),
            activate=body.activate,
            include_feedback=body.include_feedback,
        ),
    )
    response.headers["Location"] = f"{paths.ADMIN}/jobs/{job.id}"
    return TrainResponse(job_id=job.id, status=job.status)


@router.get("/jobs", response_model=JobsResponse)
def jobs(
    sessions: SessionsDep,
    status: str | None = Query(None, pattern=f"^({'|'.join(JobStatus)})$"),
    limit: int = Query(50, ge=1, le=500),
) -> JobsResponse:
    """Jobs, newest first."""
    # Only reads: a job whose worker died is failed by the version poller (app.operating.versions).
    with sessions() as session:
        return JobsResponse(
            jobs=[
                JobOut.model_validate(j)
                for j in list_jobs(session, JobStatus(status) if status else None, limit)
            ]
        )


@router.get("/jobs/{job_id}", response_model=JobOut)
def job(job_id: str, sessions: SessionsDep) -> JobOut:
    """One job: state, progress, log tail, error, resulting version."""
    with sessions() as session:
        found = get_job(session, job_id)
        if found is None:
            raise JobNotFound(f"no training job '{job_id}'")
        return JobOut.model_validate(found)


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobOut)
def cancel(job_id: str, sessions: SessionsDep) -> JobOut:
    """Cancel a queued job at once; a running one stops within a heartbeat."""
    with sessions() as session, session.begin():
        found = get_job(session, job_id)
        if found is None:
            raise JobNotFound(f"no training job '{job_id}'")
        if JobStatus(found.status).final:
            raise JobFinished(f"job '{job_id}' already {found.status}")
        cancelled = request_cancel(session, job_id)
        assert cancelled is not None
        return JobOut.model_validate(cancelled)


@router.get("/models", response_model=AdminModelsResponse)
def models(settings: SettingsDep, sessions: SessionsDep, request: Request) -> AdminModelsResponse:
    """Every recorded model with its versions, the active pointer and what this worker
    serves."""
    register_store(sessions, settings.model_store)
    registry = getattr(request.app.state, "registry", None)
    served = registry.all() if registry is not None else {}
    with sessions() as session:
        pointers = {p.name: p for p, _ in list_pointers(session)}
        by_name: dict[str, list[Any]] = {}
        for v in list_model_versions(session):
            by_name.setdefault(v.name, []).append(v)
    out = []
    for name, versions in by_name.items():
        pointer = pointers.get(name)
        serving = served.get(name)
        out.append(
            AdminModelOut(
                name=name,
                task=versions[-1].task,
                active_version=pointer.version if pointer else None,
                previous_version=pointer.previous_version if pointer else None,
                served_version=serving.version if serving else None,
                versions=[
                    VersionOut(
                        version=v.version,
                        task=v.task,
                        checksum=v.checksum,
                        metrics=v.metrics,
                        job_id=v.job_id,
                        created_at=v.created_at,
                        active=pointer is not None and pointer.version == v.version,
                    )
                    for v in versions
                ],
            )
        )
    return AdminModelsResponse(models=out)


@router.post("/models/{name}/activate", response_model=ActivateResponse)
def activate(
    body: ActivateRequest,
    settings: SettingsDep,
    sessions: SessionsDep,
    registry: RegistryDep,
    name: str = ModelName,
) -> ActivateResponse:
    """Load, verify and warm ``version``, then make it the active one on every worker. A
    version that fails to load changes nothing (409)."""
    pointer = activate_version(sessions, settings.model_store, name, body.version, registry)
    return ActivateResponse.model_validate(pointer)


@router.post("/models/{name}/rollback", response_model=ActivateResponse)
def rollback(
    settings: SettingsDep, sessions: SessionsDep, registry: RegistryDep, name: str = ModelName
) -> ActivateResponse:
    """Activate the previously active version."""
    pointer = rollback_version(sessions, settings.model_store, name, registry)
    return ActivateResponse.model_validate(pointer)


@router.get("/feedback", response_model=FeedbackListResponse)
def feedback(
    sessions: SessionsDep,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31 - 1),  # beyond, databases overflow: a 500
) -> FeedbackListResponse:
    """Corrections sent to ``POST /v1/feedback``, newest first."""
    with sessions() as session:
        rows = list_feedback(session, limit, offset)
    return FeedbackListResponse(feedback=[FeedbackOut.model_validate(f) for f in rows])
