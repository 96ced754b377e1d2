"""Training jobs: submission, the runner that supervises a trainer process, and the two ways
jobs get run.

* With ``SLOTFILL_REDIS_URL``: ``POST /v1/admin/train`` enqueues :func:`run_job` on an RQ
  queue; any number of ``slotfill worker`` processes (on machines sharing the database and the
  model store) run them.
* Without Redis: an :class:`EmbeddedRunner` thread in each server worker claims queued jobs
  from the database. A file lock in the model store lets one process per host run jobs, one
  at a time.

Either way the training itself is a child process (``slotfill train ... --progress json``)
with one torch thread and a raised nice value, so it cannot starve serving. The runner reads
its JSON lines into the job row (progress, log tail, heartbeat), terminates it on cancel, and
on success records the version and applies the activation policy. State lives in the
database only; a job whose runner dies stops sending heartbeats and is failed by the next poll.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import logging
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings
from app.db.admin import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    claim_job,
    create_job,
    finish_job,
    get_job,
    get_pointer,
    get_version,
    heartbeat,
    list_model_versions,
    oldest_queued_job,
    record_version,
)
from app.db.engine import make_engine, make_session_factory
from app.db.tables import TrainingJob
from app.errors import (
    ActivationFailed,
    DatasetNotFound,
    InvalidJobRequest,
    QueueUnavailable,
)
from app.feedback import export_with_feedback
from app.versions import activate_version, pin_if_unset, register_store, valid_metrics
from models.artifact import WEIGHTS, file_sha256, read_manifest
from models.errors import ArtifactError
from models.store import check_name, inside, new_version, version_dir

log = logging.getLogger("slotfill.jobs")
Sessions = sessionmaker[Session]
RQ_FUNCTION = "app.jobs.run_job"
LOCK_FILE = ".training.lock"
# The valid score that ``if_better`` compares, per task.
SCORE = {"slots": "slot_f1", "sentiment": "macro_f1"}
TAIL_LINES = 60
TAIL_CHARS = 8000
# Seconds between SIGTERM and SIGKILL when a trainer is stopped.
KILL_GRACE_S = 5.0


# ----------------------------------------------------------------------- data sets


def _task_folder(folder: Path, task: str) -> Path | None:
    """The folder holding ``task``'s splits in data set ``folder``, if it has them."""
    if task == "slots":
        ok = all((folder / split / "seq.in").is_file() for split in ("train", "valid"))
        return folder if ok else None
    for candidate in (folder, folder / "sentiment"):
        if all((candidate / f"{split}.tsv").is_file() for split in ("train", "valid")):
            return candidate
    return None


def _dataset_roots(settings: Settings, name: str) -> list[Path]:
    """Folders the data set ``name`` may be: ``<data_dir>/<name>``, and the bundled demo data
    for ``demo``. ``ValueError`` for a name that is not a plain name or escapes the folder."""
    check_name(name)
    roots = [inside(settings.data_dir, name)]
    if name == "demo":
        roots.append(settings.demo_data_dir.resolve())
    return roots


def available_datasets(settings: Settings, task: str) -> list[str]:
    """Names of the data sets that have ``task``'s splits."""
    names = {"demo"} if _task_folder(settings.demo_data_dir, task) else set()
    if settings.data_dir.is_dir():
        for folder in settings.data_dir.iterdir():
            with contextlib.suppress(ValueError):
                if any(_task_folder(r, task) for r in _dataset_roots(settings, folder.name)):
                    names.add(folder.name)
    return sorted(names)


def resolve_dataset(settings: Settings, name: str, task: str) -> Path:
    """Folder of ``task``'s splits of data set ``name``; ``DatasetNotFound`` if there is none.

    Only plain names (``^[a-z0-9][a-z0-9_-]*$``) inside the data directory are looked up;
    ``..``, absolute paths and symlinks that lead outside it are rejected.
    """
    try:
        roots = _dataset_roots(settings, name)
    except ValueError as err:
        raise DatasetNotFound(f"invalid data set name: {err}") from err
    for root in roots:
        found = _task_folder(root, task)
        if found is not None:
            return found
    available = ", ".join(available_datasets(settings, task)) or "none"
    raise DatasetNotFound(
        f"no {task} data set named '{name}' in the data directory; available: {available}"
    )


# ----------------------------------------------------------------------- submission


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
                    stored.status, stored.error = FAILED, f"could not be queued: {err}"
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


def run_job(job_id: str) -> str:
    """RQ entry point: run one job with settings from the environment; its final status."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        return JobRunner(settings, make_session_factory(engine)).run(job_id)
    finally:
        engine.dispose()


# ----------------------------------------------------------------------- runner


@dataclass
class _Outcome:
    """What the supervised trainer did."""

    stopped: str | None = None  # why the runner stopped it: cancelled | lost | shutdown | timeout
    summary: dict[str, Any] | None = None  # the trainer's final "done" event
    progress: dict[str, Any] | None = None
    returncode: int | None = None
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES)
    )

    def text(self) -> str:
        return "\n".join(self.tail)[-TAIL_CHARS:]

    def error_line(self) -> str:
        """The trainer's own ``error: ...`` message, else its last output line."""
        for line in reversed(self.tail):
            if line.startswith("error:"):
                return line.removeprefix("error:").strip()
        return self.tail[-1] if self.tail else "no output"


class JobRunner:
    """Runs one claimed job to a final state. Used by ``slotfill worker`` and the embedded
    runner alike."""

    def __init__(
        self, settings: Settings, sessions: Sessions, stop: threading.Event | None = None
    ) -> None:
        self.settings, self.sessions = settings, sessions
        self.stop = stop or threading.Event()

    def run(self, job_id: str) -> str:
        """Claim ``job_id`` and run it; the final status (or the current one if not claimed)."""
        worker = f"{socket.gethostname()}:{os.getpid()}"
        with self.sessions() as session, session.begin():
            claimed = claim_job(session, job_id, worker)
            job = get_job(session, job_id)
        if job is None:
            log.error("training job %s does not exist", job_id)
            return "missing"
        if not claimed:
            log.info("training job %s not run: it is %s", job_id, job.status)
            return job.status
        log.info("training job %s started on %s", job_id, worker)
        try:
            status = self._run_claimed(job)
        except Exception as err:
            log.exception("training job %s: unexpected error", job_id)
            self._finish(job.id, FAILED, error=f"internal error: {err}")
            status = FAILED
        log.info("training job %s %s", job_id, status)
        return status

    def _finish(self, job_id: str, status: str, **values: Any) -> bool:
        with self.sessions() as session, session.begin():
            return finish_job(session, job_id, status, **values)

    def _run_claimed(self, job: TrainingJob) -> str:
        store = self.settings.model_store
        version = new_version()
        out = version_dir(store, job.model, version)
        with tempfile.TemporaryDirectory(prefix=f"slotfill-job-{job.id[:8]}-") as tmp:
            outcome = _Outcome()
            try:
                data = resolve_dataset(self.settings, job.dataset, job.task)
            except DatasetNotFound as err:
                self._finish(job.id, FAILED, error=err.message)
                return FAILED
            if job.include_feedback:
                data, added = export_with_feedback(
                    self.sessions, data, job.task, Path(tmp) / job.dataset
                )
                outcome.tail.append(f"added {added} feedback utterances to the training split")
            config = Path(tmp) / "hyperparameters.json"
            config.write_text(json.dumps(job.params))
            command = [
                *(sys.executable, "-m", "slotfill.cli", "train", job.task),
                *("--data", str(data), "--out", str(out), "--progress", "json"),
                *("--config", str(config), "--threads", str(self.settings.job_threads)),
            ]
            self._supervise(job.id, command, outcome)
        return self._conclude(job, version, out, outcome)

    def _supervise(self, job_id: str, command: list[str], outcome: _Outcome) -> None:
        """Run the trainer, streaming its output into the job row until it exits."""
        # The trainer reads no SLOTFILL_* setting; keep the admin token and DB URL from it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLOTFILL_")}
        threads = str(self.settings.job_threads)
        env |= {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
        # Renice from here rather than in preexec_fn (unsafe in a threaded server). Popen
        # returns after exec, before the interpreter starts any thread, and threads inherit it.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, self.settings.job_nice)
        with proc:  # closes the pipe and reaps the child however this ends
            try:
                self._watch(proc, job_id, outcome)
            finally:
                if proc.poll() is None:  # an error here must not leave the trainer running
                    proc.kill()
            outcome.returncode = proc.wait()

    def _watch(self, proc: subprocess.Popen[str], job_id: str, outcome: _Outcome) -> None:
        """Follow the trainer's output until it exits; stop it when asked or out of time."""
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc, lines), daemon=True)
        reader.start()
        deadline = time.monotonic() + self.settings.job_timeout_seconds
        next_beat, kill_at = 0.0, float("inf")
        while True:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                self._take_line(line.rstrip("\n"), outcome)
            now = time.monotonic()
            reason = None
            if now >= next_beat:
                next_beat = now + self.settings.job_heartbeat_seconds
                reason = self._beat(job_id, outcome)
            if reason is None and self.stop.is_set():
                reason = "shutdown"
            if reason is None and now > deadline:
                reason = "timeout"
            if reason is not None and outcome.stopped is None:
                outcome.stopped = reason
                proc.terminate()
                kill_at = now + KILL_GRACE_S
            if now > kill_at:
                proc.kill()
                kill_at = float("inf")
        reader.join(5)

    def _beat(self, job_id: str, outcome: _Outcome) -> str | None:
        """Heartbeat with progress; ``lost`` or ``cancelled`` if the job must stop."""
        try:
            with self.sessions() as session, session.begin():
                ours, cancel = heartbeat(session, job_id, outcome.progress, outcome.text())
        except SQLAlchemyError as err:
            # Keep training through a short outage; a long one makes the job stale, and the
            # first heartbeat after it finds the job no longer ours.
            log.warning("training job %s: heartbeat failed: %s", job_id, err)
            return None
        return "lost" if not ours else "cancelled" if cancel else None

    @staticmethod
    def _take_line(line: str, outcome: _Outcome) -> None:
        """Keep a line in the tail; the trainer's JSON events update progress and go into
        the tail as one short line each."""
        try:
            event = json.loads(line) if line.startswith("{") else None
        except ValueError:
            event = None
        if not isinstance(event, dict) or event.get("event") not in ("epoch", "done"):
            outcome.tail.append(line)
            return
        valid = event.get("valid") or {}
        scores = " ".join(f"{k}={v:.4f}" for k, v in valid.items() if isinstance(v, float))
        if event["event"] == "epoch":
            outcome.progress = {
                k: event.get(k) for k in ("epoch", "loss", "valid", "best_epoch", "seconds")
            }
            loss = event.get("loss")
            loss_text = f"{loss:.4f}" if isinstance(loss, float) else loss
            outcome.tail.append(f"epoch {event.get('epoch')} loss={loss_text} {scores}")
        else:
            outcome.summary = event
            outcome.tail.append(f"done: best epoch {event.get('best_epoch')}, valid {scores}")

    def _conclude(self, job: TrainingJob, version: str, out: Path, outcome: _Outcome) -> str:
        """Record the result of a finished trainer: version + activation, or the failure."""
        if outcome.stopped is None and outcome.returncode == 0 and outcome.summary is not None:
            # A cancel, or a stale verdict, that came while the trainer was saving still counts.
            outcome.stopped = self._beat(job.id, outcome)
            if outcome.stopped is None:
                return self._succeed(job, version, out, outcome)
        _remove_partial(out)
        if outcome.stopped == "lost":
            log.error("training job %s was failed by another process; result discarded", job.id)
            return FAILED
        if outcome.stopped == "cancelled":
            self._finish(job.id, CANCELLED, error="cancelled by request", log_tail=outcome.text())
            return CANCELLED
        if outcome.stopped == "shutdown":
            error = "interrupted: the process running it shut down"
        elif outcome.stopped == "timeout":
            error = f"timed out after {self.settings.job_timeout_seconds:g}s"
        else:
            error = f"training failed (exit status {outcome.returncode}): {outcome.error_line()}"
        self._finish(
            job.id, FAILED, error=error, log_tail=outcome.text(), progress=outcome.progress
        )
        return FAILED

    def _succeed(self, job: TrainingJob, version: str, out: Path, outcome: _Outcome) -> str:
        """Record the new version, then activate it as the job's policy says."""
        try:
            manifest = read_manifest(out)
            checksum = file_sha256(out / WEIGHTS)
            if checksum != manifest["weights_sha256"]:
                raise ArtifactError(f"{out}: weights do not match the manifest")
        except (ArtifactError, OSError) as err:
            _remove_partial(out)
            self._finish(job.id, FAILED, error=f"bad artifact: {err}", log_tail=outcome.text())
            return FAILED
        metrics = valid_metrics(manifest)
        with self.sessions() as session, session.begin():
            record_version(
                session,
                name=job.model,
                version=version,
                task=job.task,
                checksum=checksum,
                metrics=metrics,
                job_id=job.id,
            )
        register_store(self.sessions, self.settings.model_store)  # e.g. bootstrap's versions
        with self.sessions() as session:
            pointer = get_pointer(session, job.model)
            others = [v.version for v in list_model_versions(session, job.model)]
        others.remove(version)
        # What serves now: the pointer, else (no activation yet) the newest older version.
        current = pointer.version if pointer else (others[-1] if others else None)
        activated, note = self._apply_policy(job, version, metrics, current)
        outcome.tail.append(f"activation: {note}")
        if not activated and current is not None:
            pin_if_unset(self.sessions, job.model, current)
        finished = self._finish(
            job.id,
            SUCCEEDED,
            result_version=version,
            activated=activated,
            log_tail=outcome.text(),
            progress=outcome.progress,
        )
        return SUCCEEDED if finished else FAILED

    def _apply_policy(
        self, job: TrainingJob, version: str, metrics: dict[str, Any], current: str | None
    ) -> tuple[bool, str]:
        """Activate ``version`` if ``job.activate`` says so; (activated, why)."""
        if job.activate == "never":
            return False, "not activated (activate=never)"
        score = SCORE[job.task]
        if job.activate == "if_better" and current is not None:
            with self.sessions() as session:
                recorded = get_version(session, job.model, current)
            old = (recorded.metrics or {}).get(score) if recorded else None
            new = metrics.get(score)
            if old is not None and (new is None or new <= old):
                return False, f"kept {job.model}@{current}: valid {score} {new} <= {old}"
        try:
            activate_version(self.sessions, self.settings.model_store, job.model, version)
        except ActivationFailed as err:
            return False, err.message
        return True, f"activated {job.model}@{version} (valid {score} {metrics.get(score)})"


def _read_lines(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.put(line)
    finally:
        lines.put(None)


def _remove_partial(out: Path) -> None:
    """Delete what a stopped trainer left: the version folder and its staging folders."""
    shutil.rmtree(out, ignore_errors=True)
    if out.parent.is_dir():
        for staging in out.parent.glob(f".{out.name}.*"):
            shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------- embedded mode


class EmbeddedRunner:
    """Runs queued jobs from a server worker when there is no Redis queue.

    Every worker polls, but only the one holding the model store's lock file runs jobs, one
    after another, so two uvicorn workers never train at once.
    """

    def __init__(self, settings: Settings, sessions: Sessions) -> None:
        self.settings, self.sessions = settings, sessions
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling for queued jobs (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="job-runner", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop; a running trainer is terminated and its job marked failed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        last_warning = float("-inf")
        while not self._stop.wait(self.settings.job_poll_seconds):
            try:
                self.run_pending()
            except SQLAlchemyError as err:
                if time.monotonic() - last_warning > 60:
                    last_warning = time.monotonic()
                    log.warning("job runner: cannot read queued jobs: %s", err)
            except Exception:
                log.exception("job runner: unexpected error")

    def run_pending(self) -> int:
        """Run queued jobs while this process holds the lock; how many it ran."""
        with self.sessions() as session:
            if oldest_queued_job(session) is None:
                return 0
        store = self.settings.model_store
        store.mkdir(parents=True, exist_ok=True)
        ran = 0
        with (store / LOCK_FILE).open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # another worker on this host is running jobs
            try:
                runner = JobRunner(self.settings, self.sessions, self._stop)
                while not self._stop.is_set():
                    with self.sessions() as session:
                        job_id = oldest_queued_job(session)
                    if job_id is None:
                        break
                    runner.run(job_id)
                    ran += 1
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return ran
