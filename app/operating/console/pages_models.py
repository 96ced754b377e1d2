"""Console pages: training jobs with their learning curve, versions, comparing two versions,
activating and rolling back (each behind a confirmation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from app import paths
from app.db.admin import (
    count_feedback,
    get_job,
    get_pointer,
    list_jobs,
    list_model_versions,
    request_cancel,
)
from app.db.tables import FeedbackStatus, JobStatus, TrainingJob
from app.deps import RegistryDep, SessionsDep, SettingsDep
from app.errors import ActivationFailed, JobNotFound, VersionNotFound, hide_paths
from app.operating.console.auth import PagePrincipal, check_csrf, require_admin
from app.operating.console.charts import line_chart
from app.operating.console.compare import compare
from app.operating.console.pages import redirect, render
from app.operating.datasets import available_datasets, resolve_dataset
from app.operating.submission import submit_job
from app.operating.versions import (
    activate_version,
    pointer_history,
    register_store,
    rollback_version,
)
from models.errors import ArtifactError
from models.store import NAME_PATTERN, VERSION_PATTERN

router = APIRouter(prefix=paths.CONSOLE, include_in_schema=False)
ModelName = Annotated[str, Query(pattern=NAME_PATTERN)]
Version = Annotated[str, Query(pattern=VERSION_PATTERN)]
Csrf = Annotated[str, Form(max_length=128)]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$")]
REFRESH_SECONDS = 2


@router.get("/train", response_class=HTMLResponse)
def train_page(
    request: Request,
    principal: PagePrincipal,
    sessions: SessionsDep,
    settings: SettingsDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """Start a training job (admins); the jobs so far."""
    with sessions() as session:
        jobs = list_jobs(session, None, 50)
        accepted = count_feedback(session).get(FeedbackStatus.accepted, 0)
    taggers = [m.name for m in registry.taggers()]
    return render(
        request,
        "train.html",
        principal,
        title="Train",
        nav="Train",
        jobs=jobs,
        accepted=accepted,
        taggers=taggers,
        datasets=available_datasets(settings, "slots"),
    )


@router.post("/train")
def train(
    principal: PagePrincipal,
    sessions: SessionsDep,
    settings: SettingsDep,
    model: Annotated[str, Form(pattern=NAME_PATTERN)],
    dataset: Annotated[str, Form(max_length=64)],
    epochs: Annotated[int, Form(ge=1, le=1000)] = 10,
    include_feedback: Annotated[bool, Form()] = False,
    csrf: Csrf = "",
) -> Response:
    """Queue a job on ``dataset`` (plus the accepted corrections); it does not activate."""
    check_csrf(principal, csrf)
    require_admin(principal)
    job = submit_job(
        settings,
        sessions,
        TrainingJob(
            task="slots",
            model=model,
            dataset=dataset,
            params={"epochs": epochs},
            activate="never",
            include_feedback=include_feedback,
        ),
    )
    return redirect(f"{paths.CONSOLE}/jobs/{job.id}", "Training job queued.")


def curve_chart(progress: dict[str, Any] | None) -> tuple[Any, int]:
    """The learning curve (loss, valid score per epoch) of a job's progress; its epochs."""
    curve = (progress or {}).get("curve") or []
    loss, score = [], []
    for point in curve:
        epoch = point.get("epoch")
        if not isinstance(epoch, int | float):
            continue
        if isinstance(point.get("loss"), int | float):
            loss.append((float(epoch), float(point["loss"])))
        valid = point.get("valid") or {}
        value = valid.get("slot_f1", valid.get("macro_f1"))
        if isinstance(value, int | float):
            score.append((float(epoch), float(value)))
    chart = line_chart("learning curve", {"training loss": loss, "valid F1": score})
    return chart, len(curve)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request, principal: PagePrincipal, sessions: SessionsDep, job_id: JobId
) -> HTMLResponse:
    """One job: status, learning curve (refreshing while it runs), log, cancel."""
    with sessions() as session:
        job = get_job(session, job_id)
    if job is None:
        raise JobNotFound(f"no training job '{job_id}'")
    final = JobStatus(job.status).final
    chart, epochs = curve_chart(job.progress)
    return render(
        request,
        "job.html",
        principal,
        title=f"Training job {job.id[:8]}",
        nav="Train",
        job=job,
        log=hide_paths(job.log_tail or ""),
        error=hide_paths(job.error) if job.error else None,
        curve=chart,
        epochs=epochs,
        final=final,
        refresh=None if final else REFRESH_SECONDS,
    )


@router.post("/jobs/{job_id}/cancel")
def cancel(
    principal: PagePrincipal, sessions: SessionsDep, job_id: JobId, csrf: Csrf = ""
) -> Response:
    """Cancel a queued or running job (admins)."""
    check_csrf(principal, csrf)
    require_admin(principal)
    with sessions() as session, session.begin():
        if request_cancel(session, job_id) is None:
            raise JobNotFound(f"no training job '{job_id}'")
    return redirect(f"{paths.CONSOLE}/jobs/{job_id}", "Cancel requested.")


@router.get("/versions", response_class=HTMLResponse)
def versions_page(
    request: Request,
    principal: PagePrincipal,
    sessions: SessionsDep,
    settings: SettingsDep,
    model: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """Every model's versions with metrics; compare, activate, roll back."""
    register_store(sessions, settings.model_store)
    by_name: dict[str, dict[str, Any]] = {}
    with sessions() as session:
        for v in list_model_versions(session, model or None):
            entry = by_name.setdefault(
                v.name, {"name": v.name, "task": v.task, "versions": [], "active": None}
            )
            entry["versions"].append(v)
        for name, entry in by_name.items():
            pointer = get_pointer(session, name)
            entry["active"] = pointer.version if pointer else None
            entry["history"] = pointer_history(pointer) if pointer else []
    return render(
        request,
        "versions.html",
        principal,
        title="Versions",
        nav="Versions",
        models=list(by_name.values()),
        datasets=available_datasets(settings, "slots"),
    )


@router.get("/versions/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    principal: PagePrincipal,
    settings: SettingsDep,
    model: ModelName,
    a: Version,
    b: Version,
    dataset: Annotated[str, Query(max_length=64)] = "demo",
) -> HTMLResponse:
    """Per-slot F1 and intent accuracy of two versions side by side, and the valid
    utterances whose parse changed."""
    data = resolve_dataset(settings, dataset, "slots")
    try:
        result = compare(settings.model_store, model, a, b, data, settings.engine)
    except (ArtifactError, ValueError, OSError) as err:
        raise VersionNotFound(f"cannot compare {model}@{a} and @{b}: {err}") from err
    return render(
        request,
        "compare.html",
        principal,
        title=f"{model}: {a} vs {b}",
        nav="Versions",
        c=result,
        model=model,
        dataset=dataset,
    )


@router.get("/versions/confirm", response_class=HTMLResponse)
def confirm_page(
    request: Request,
    principal: PagePrincipal,
    sessions: SessionsDep,
    model: ModelName,
    version: Version,
    action: Annotated[str, Query(pattern="^(activate|rollback)$")],
) -> HTMLResponse:
    """Asks before activating or rolling back."""
    require_admin(principal)
    with sessions() as session:
        pointer = get_pointer(session, model)
    return render(
        request,
        "confirm.html",
        principal,
        title="Confirm",
        nav="Versions",
        model=model,
        version=version,
        action=action,
        active=pointer.version if pointer else None,
    )


@router.post("/versions/activate")
def activate(
    principal: PagePrincipal,
    sessions: SessionsDep,
    settings: SettingsDep,
    registry: RegistryDep,
    model: Annotated[str, Form(pattern=NAME_PATTERN)],
    version: Annotated[str, Form(pattern=VERSION_PATTERN)],
    csrf: Csrf = "",
) -> Response:
    """Activate ``model@version`` on every worker (admins)."""
    check_csrf(principal, csrf)
    require_admin(principal)
    try:
        activate_version(sessions, settings.model_store, model, version, registry)
    except ActivationFailed as err:
        return redirect(f"{paths.CONSOLE}/versions?model={model}", err.message)
    return redirect(f"{paths.CONSOLE}/versions?model={model}", f"Activated {model}@{version}.")


@router.post("/versions/rollback")
def rollback(
    principal: PagePrincipal,
    sessions: SessionsDep,
    settings: SettingsDep,
    registry: RegistryDep,
    model: Annotated[str, Form(pattern=NAME_PATTERN)],
    version: Annotated[str, Form(pattern=VERSION_PATTERN)] = "",
    csrf: Csrf = "",
) -> Response:
    """Roll ``model`` back one version of its history (admins)."""
    check_csrf(principal, csrf)
    require_admin(principal)
    pointer = rollback_version(sessions, settings.model_store, model, registry)
    return redirect(
        f"{paths.CONSOLE}/versions?model={model}", f"Rolled back to {model}@{pointer.version}."
    )
