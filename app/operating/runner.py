"""Running one training job: the runner that supervises a trainer process.

Used by ``slotfill worker`` (:func:`run_job`, the RQ entry point) and by the embedded queue
alike. The training itself is a child process (``slotfill train ... --progress json``) with
one torch thread and a raised nice value, so it cannot starve serving. The runner reads its
JSON lines into the job row (progress, log tail, heartbeat), terminates it on cancel, and on
success records the version and applies the activation policy
(:func:`app.operating.versions.activate_trained`). State lives in the database only; a job
whose runner dies stops sending heartbeats and is failed by the version poller.
"""

from __future__ import annotations

import collections
import contextlib
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings
from app.db.admin import claim_job, finish_job, get_job, heartbeat, record_version
from app.db.engine import make_engine, make_session_factory
from app.db.tables import JobStatus, TrainingJob
from app.errors import DatasetNotFound
from app.operating.datasets import resolve_dataset
from app.operating.feedback import export_with_feedback
from app.operating.versions import activate_trained
from models.artifact import WEIGHTS, file_sha256, load_manifest
from models.errors import ArtifactError
from models.store import new_version, version_dir

log = logging.getLogger("slotfill.jobs")
Sessions = sessionmaker[Session]
TAIL_LINES = 60
TAIL_CHARS = 8000
# Epochs of loss and valid scores the job row keeps for the learning curve.
CURVE_EPOCHS = 500
# Seconds between SIGTERM and SIGKILL when a trainer is stopped.
KILL_GRACE_S = 5.0


def run_job(job_id: str) -> str:
    """RQ entry point: run one job with settings from the environment; its final status."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        return JobRunner(settings, make_session_factory(engine)).run(job_id)
    finally:
        engine.dispose()


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
            self._finish(job.id, JobStatus.failed, error=f"internal error: {err}")
            status = JobStatus.failed
        log.info("training job %s %s", job_id, status)
        return status

    def _finish(self, job_id: str, status: JobStatus, **values: Any) -> bool:
        with self.sessions() as session, session.begin():
            return finish_job(session, job_id, status, **values)

    def _run_claimed(self, job: TrainingJob) -> JobStatus:
        store = self.settings.model_store
        version = new_version()
        out = version_dir(store, job.model, version)
        with tempfile.TemporaryDirectory(prefix=f"slotfill-job-{job.id[:8]}-") as tmp:
            outcome = _Outcome()
            try:
                data = resolve_dataset(self.settings, job.dataset, job.task)
            except DatasetNotFound as err:
                self._finish(job.id, JobStatus.failed, error=err.message)
                return JobStatus.failed
            if job.include_feedback:
                data, added = export_with_feedback(
                    self.sessions, data, job.task, Path(tmp) / job.dataset, job.model
                )
                outcome.tail.append(
                    f"added {added} accepted feedback utterances to the training split"
                )
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
            # Every epoch's loss and valid scores so far: the console's learning curve.
            curve = (outcome.progress or {}).get("curve", [])
            point = {"epoch": event.get("epoch"), "loss": event.get("loss"), "valid": valid}
            outcome.progress = {
                k: event.get(k) for k in ("epoch", "loss", "valid", "best_epoch", "seconds")
            } | {"curve": [*curve, point][-CURVE_EPOCHS:]}
            loss = event.get("loss")
            loss_text = f"{loss:.4f}" if isinstance(loss, float) else loss
            outcome.tail.append(f"epoch {event.get('epoch')} loss={loss_text} {scores}")
        else:
            outcome.summary = event
            outcome.tail.append(f"done: best epoch {event.get('best_epoch')}, valid {scores}")

    def _conclude(self, job: TrainingJob, version: str, out: Path, outcome: _Outcome) -> JobStatus:
        """Record the result of a finished trainer: version + activation, or the failure."""
        if outcome.stopped is None and outcome.returncode == 0 and outcome.summary is not None:
            # A cancel, or a stale verdict, that came while the trainer was saving still counts.
            outcome.stopped = self._beat(job.id, outcome)
            if outcome.stopped is None:
                return self._succeed(job, version, out, outcome)
        _remove_partial(out)
        if outcome.stopped == "lost":
            log.error("training job %s was failed by another process; result discarded", job.id)
            return JobStatus.failed
        if outcome.stopped == "cancelled":
            self._finish(
                job.id, JobStatus.cancelled, error="cancelled by request", log_tail=outcome.text()
            )
            return JobStatus.cancelled
        if outcome.stopped == "shutdown":
            error = "interrupted: the process running it shut down"
        elif outcome.stopped == "timeout":
            error = f"timed out after {self.settings.job_timeout_seconds:g}s"
        else:
            error = f"training failed (exit status {outcome.returncode}): {outcome.error_line()}"
        self._finish(
            job.id,
            JobStatus.failed,
            error=error,
            log_tail=outcome.text(),
            progress=outcome.progress,
        )
        return JobStatus.failed

    def _succeed(self, job: TrainingJob, version: str, out: Path, outcome: _Outcome) -> JobStatus:
        """Record the new version, then activate it as the job's policy says."""
        try:
            manifest = load_manifest(out)
            checksum = file_sha256(out / WEIGHTS)
            if checksum != manifest.weights_sha256:
                raise ArtifactError(f"{out}: weights do not match the manifest")
        except (ArtifactError, OSError) as err:
            _remove_partial(out)
            self._finish(
                job.id, JobStatus.failed, error=f"bad artifact: {err}", log_tail=outcome.text()
            )
            return JobStatus.failed
        metrics = manifest.valid_metrics
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
        activated, note = activate_trained(
            self.sessions, self.settings.model_store, job, version, metrics
        )
        outcome.tail.append(f"activation: {note}")
        finished = self._finish(
            job.id,
            JobStatus.succeeded,
            result_version=version,
            activated=activated,
            log_tail=outcome.text(),
            progress=outcome.progress,
        )
        return JobStatus.succeeded if finished else JobStatus.failed


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
