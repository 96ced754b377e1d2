"""Model versions and the active-version pointer.

``active_models`` in the database says which version each model name should serve. An
activation (admin API or a finished training job) first loads and verifies the version, then
moves the pointer; every server worker polls the pointer and swaps its registry to match, so
all workers converge within ``version_poll_seconds`` and a version that fails to load never
replaces the one serving.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.admin import (
    fail_stale_jobs,
    get_pointer,
    get_version,
    list_model_versions,
    list_pointers,
    record_version,
    set_pointer,
)
from app.db.tables import ActiveModel, TrainingJob
from app.errors import ActivationFailed, NoPreviousVersion, VersionNotFound
from app.serving.registry import ModelRegistry, load_checked
from models.artifact import load_manifest
from models.errors import ArtifactError
from models.store import list_models, list_versions, version_dir

log = logging.getLogger("slotfill.versions")
Sessions = sessionmaker[Session]
# After a version fails to load, a worker waits this long before trying it again.
RETRY_FAILED_LOAD_S = 30.0
# At most one "database unreachable" warning per this many seconds from the poller.
WARN_INTERVAL_S = 60.0
# The valid score that a training job's ``activate: if_better`` compares, per task.
SCORE = {"slots": "slot_f1", "sentiment": "macro_f1"}
# Activations a pointer remembers for rollbacks.
MAX_HISTORY = 50


def register_store(sessions: Sessions, store: Path) -> int:
    """Record on-disk versions not yet in ``model_versions`` (e.g. from ``slotfill bootstrap``);
    how many were added. Unreadable artifacts are skipped with a warning."""
    with sessions() as session:
        known = {(v.name, v.version) for v in list_model_versions(session)}
    added = 0
    for name in list_models(store):
        for version in list_versions(store, name):
            if (name, version) in known:
                continue
            try:
                manifest = load_manifest(version_dir(store, name, version))
            except ArtifactError as err:
                log.warning("not registering %s@%s: %s", name, version, err)
                continue
            try:
                with sessions() as session, session.begin():
                    record_version(
                        session,
                        name=name,
                        version=version,
                        task=manifest.task,
                        checksum=manifest.weights_sha256,
                        metrics=manifest.valid_metrics,
                    )
                added += 1
            except IntegrityError:
                pass  # another worker recorded it first
    return added


def read_pins(sessions: Sessions) -> dict[str, str]:
    """name -> active version from the database; empty (serve the latest on disk) when the
    database or its tables are not there."""
    try:
        with sessions() as session:
            return {pointer.name: pointer.version for pointer, _ in list_pointers(session)}
    except SQLAlchemyError as err:
        log.warning("active versions unavailable (%s); serving the latest on disk", err)
        return {}


def _fallback_previous(sessions: Sessions, name: str, version: str) -> str | None:
    """What served ``name`` before any pointer existed: its newest other recorded version."""
    with sessions() as session:
        others = [v.version for v in list_model_versions(session, name) if v.version != version]
    return others[-1] if others else None


def pointer_history(pointer: ActiveModel) -> list[str]:
    """The versions active before the pointer's, oldest first (a pointer written before
    migration 0004 has only its ``previous_version``)."""
    if isinstance(pointer.history, list):
        return [str(v) for v in pointer.history]
    return [pointer.previous_version] if pointer.previous_version else []


def activate_version(
    sessions: Sessions,
    store: Path,
    name: str,
    version: str,
    registry: ModelRegistry | None = None,
    *,
    history: list[str] | None = None,
) -> ActiveModel:
    """Verify ``name@version`` loads (checksum, task, warm-up), then move the pointer to it.

    The version it replaces goes onto the pointer's history, unless ``history`` (a rollback)
    says what the history becomes. With ``registry`` (in a server worker) the loaded model is
    also swapped in there at once; other workers follow the pointer. Raises
    ``VersionNotFound`` or ``ActivationFailed``; the pointer is unchanged then.
    """
    register_store(sessions, store)
    with sessions() as session:
        recorded = get_version(session, name, version)
        pointer = get_pointer(session, name)
    if recorded is None:
        raise VersionNotFound(f"model '{name}' has no version '{version}'")
    served = registry.all().get(name) if registry is not None else None
    served_version = served.version if served is not None else None
    already = pointer is not None and pointer.version == version
    if (
        pointer is not None
        and already
        and history is None
        and (registry is None or served_version == version)
    ):
        return pointer
    try:
        if registry is not None:
            if not registry.serves(name, recorded.task):
                raise ActivationFailed(
                    f"this server does not serve {recorded.task} model '{name}' "
                    "(see SLOTFILL_MODELS, SLOTFILL_SENTIMENT_MODEL)"
                )
            model = registry.prepare(name, version, recorded.checksum)
        else:
            load_checked(store, name, version, checksum=recorded.checksum, task=recorded.task)
    except (ArtifactError, ValueError, OSError) as err:
        raise ActivationFailed(f"{name}@{version} cannot be activated: {err}") from err
    if history is None:
        if pointer is not None:
            history = pointer_history(pointer) + ([] if already else [pointer.version])
        elif served_version is not None and served_version != version:
            history = [served_version]
        else:
            fallback = _fallback_previous(sessions, name, version)
            history = [fallback] if fallback else []
    history = history[-MAX_HISTORY:]
    previous = history[-1] if history else None
    with sessions() as session, session.begin():
        pointer = set_pointer(session, name, version, previous, history)
    if registry is not None:
        registry.install(model)
    log.info("active version of %s: %s (previous: %s)", name, version, previous)
    return pointer


def rollback_version(
    sessions: Sessions, store: Path, name: str, registry: ModelRegistry | None = None
) -> ActiveModel:
    """Activate the version that was active before the current one, taking it off the
    history: rolling back twice goes two versions back (not back and forth)."""
    with sessions() as session:
        pointer = get_pointer(session, name)
    history = pointer_history(pointer) if pointer is not None else []
    if not history:
        raise NoPreviousVersion(f"model '{name}' has no previously active version")
    return activate_version(sessions, store, name, history[-1], registry, history=history[:-1])


def pin_if_unset(sessions: Sessions, name: str, version: str) -> None:
    """Point ``name`` at ``version`` unless a pointer exists, so that a restart keeps serving
    it rather than a newer version that was trained but not activated."""
    with sessions() as session, session.begin():
        if get_pointer(session, name) is None:
            set_pointer(session, name, version, None)


def activate_trained(
    sessions: Sessions, store: Path, job: TrainingJob, version: str, metrics: dict[str, Any]
) -> tuple[bool, str]:
    """The activation policy of a finished training job: activate its recorded ``version`` as
    ``job.activate`` says (``never``, ``if_better`` than what serves now, ``always``);
    ``(activated, why)``. When it is not activated, what serves now is pinned, so that a
    restart does not serve the newer version instead."""
    register_store(sessions, store)  # e.g. bootstrap's versions
    with sessions() as session:
        pointer = get_pointer(session, job.model)
        others = [v.version for v in list_model_versions(session, job.model)]
    others.remove(version)
    # What serves now: the pointer, else (no activation yet) the newest older version.
    current = pointer.version if pointer else (others[-1] if others else None)
    activated, note = _apply_policy(sessions, store, job, version, metrics, current)
    if not activated and current is not None:
        pin_if_unset(sessions, job.model, current)
    return activated, note


def _apply_policy(
    sessions: Sessions,
    store: Path,
    job: TrainingJob,
    version: str,
    metrics: dict[str, Any],
    current: str | None,
) -> tuple[bool, str]:
    if job.activate == "never":
        return False, "not activated (activate=never)"
    score = SCORE[job.task]
    if job.activate == "if_better" and current is not None:
        with sessions() as session:
            recorded = get_version(session, job.model, current)
        old = (recorded.metrics or {}).get(score) if recorded else None
        new = metrics.get(score)
        if old is not None and (new is None or new <= old):
            return False, f"kept {job.model}@{current}: valid {score} {new} <= {old}"
    try:
        activate_version(sessions, store, job.model, version)
    except ActivationFailed as err:
        return False, err.message
    return True, f"activated {job.model}@{version} (valid {score} {metrics.get(score)})"


class VersionPoller:
    """Background thread of each server worker: follows the pointer, fails stale jobs."""

    def __init__(
        self, registry: ModelRegistry, sessions: Sessions, period_s: float, stale_s: float
    ) -> None:
        self.registry, self.sessions = registry, sessions
        self.period_s, self.stale_s = period_s, stale_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[tuple[str, str], float] = {}
        self._last_warning = float("-inf")

    def start(self) -> None:
        """Start polling (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="version-poller", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.poll_once()
            except SQLAlchemyError as err:
                if time.monotonic() - self._last_warning > WARN_INTERVAL_S:
                    self._last_warning = time.monotonic()
                    log.warning("cannot read the active versions: %s", err)
            except Exception:
                log.exception("version poller: unexpected error")

    def poll_once(self) -> None:
        """Swap in every pointed-to version this worker serves but does not run yet; none
        if this worker swapped a version in since the pointers were read (the next poll
        reads them again)."""
        since: int | None = self.registry.generation
        with self.sessions() as session, session.begin():
            pointers = [(p.name, p.version, v) for p, v in list_pointers(session)]
            for job_id in fail_stale_jobs(session, self.stale_s):
                log.error("training job %s failed: its worker stopped sending heartbeats", job_id)
        served = self.registry.all()
        for name, version, recorded in pointers:
            current = served.get(name)
            if current is not None and current.version == version:
                continue
            task = recorded.task if recorded else self.registry.task_of(name)
            if not self.registry.serves(name, task):
                continue
            if time.monotonic() < self._retry_at.get((name, version), 0.0):
                continue
            try:
                since = self.registry.activate(
                    name, version, recorded.checksum if recorded else None, since
                )
                if since is None:
                    return
            except (ArtifactError, ValueError, OSError) as err:
                self._retry_at[(name, version)] = time.monotonic() + RETRY_FAILED_LOAD_S
                log.error(
                    "cannot activate %s@%s, still serving %s: %s",
                    name,
                    version,
                    current.ref if current else "nothing",
                    err,
                )
