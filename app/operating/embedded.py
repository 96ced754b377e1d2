"""The embedded queue: without Redis, the server's own workers run the queued training jobs.

Jobs wait in the database (status ``queued``); every server worker polls for them, and the
one holding a file lock in the model store runs them, one at a time (each still in a trainer
child process, see :mod:`app.operating.runner`).
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db.admin import oldest_queued_job
from app.operating.runner import JobRunner

log = logging.getLogger("slotfill.jobs")
Sessions = sessionmaker[Session]
LOCK_FILE = ".training.lock"


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
