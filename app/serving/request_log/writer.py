"""The request-log writer: stores rows off the request path, durably.

The writer is built so that logging can never hurt serving: `submit` only puts a row on a
bounded in-memory queue, and one background thread does all database work. When the database
is down, rows go to an append-only spill file on local disk and are written once it is back.
With a journal folder, every row is also appended to a local journal as it is submitted, so
rows still in memory when the process dies are replayed by the next start (``journal``).
Rows are bounded to their columns first (``bounds``); a row the database still rejects is
kept aside in a file and counted (`rejected_rows`). Only rows that cannot be kept anywhere
(queue full, spill write failed) are lost, and those are counted (`dropped_rows`) and logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_session_factory
from app.db.repository import insert_request_logs
from app.serving.request_log import spill as spill_files
from app.serving.request_log.bounds import bound_row
from app.serving.request_log.failures import (
    DropCounter,
    RejectedRows,
    database_unavailable,
    describe,
)
from app.serving.request_log.journal import JOURNAL_GLOB, Journal, encode_line
from app.serving.request_log.rows import RequestLogRow
from app.serving.request_log.spill import SpillFile

# The name operators already filter on; it predates the module's move.
logger = logging.getLogger("app.request_log")

Row = dict[str, Any]
# How often a running writer looks for spill files left behind by processes that died.
_ORPHAN_SCAN_INTERVAL_S = 30.0
# Longest idle wait on the queue; bounds how late a retry or a stop request is noticed.
_IDLE_WAIT_S = 0.5


class RequestLogWriter:
    """Stores request-log rows from a background thread, spilling to disk while the DB is down.

    `submit` never blocks and never raises. Rows are inserted in batches of up to `batch_size`
    in one transaction each. When the database is unavailable, rows are appended to
    `spill_dir/spill-<pid>-<token>.jsonl` (fsync'd), and the database is retried with
    exponential backoff (`retry_min_s` doubling up to `retry_max_s`). While spilled rows exist,
    new rows are spilled behind them, so they reach the database in the order they came.
    Replays are idempotent (duplicate `request_id`s are skipped), so a spill file is deleted
    only after all its rows are committed, and a crash mid-replay just repeats some inserts.

    Several processes (uvicorn workers) may share `spill_dir`: each holds an flock on the files
    it owns, and a file whose lock is free belongs to a process that died; the first writer to
    rename it takes it over and replays it.
    """

    def __init__(
        self,
        target: Engine | sessionmaker[Session],
        queue_size: int = 10_000,
        batch_size: int = 200,
        spill_dir: str | os.PathLike[str] = "spill",
        *,
        journal_dir: str | os.PathLike[str] | None = None,
        batch_wait_s: float = 0.05,
        retry_min_s: float = 0.5,
        retry_max_s: float = 5.0,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        self._session_factory = (
            make_session_factory(target) if isinstance(target, Engine) else target
        )
        self._queue: queue.Queue[Row | None] = queue.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._spill_dir = Path(spill_dir)
        self._batch_wait_s = batch_wait_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s

        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

        # Writer-thread state; only that thread touches it.
        self._spill_files: list[SpillFile] = []  # replay order: oldest first
        self._append_target: SpillFile | None = None
        self._outage_since: float | None = None  # monotonic time the DB was found down
        self._backoff_s = retry_min_s
        self._retry_at = 0.0  # monotonic time of the next replay attempt
        self._next_orphan_scan = 0.0

        # Counters: written/spilled only by the writer thread; dropped also by `submit`.
        self._written_rows = 0
        self._spilled_rows = 0
        self._drops = DropCounter(logger)
        self._rejected = RejectedRows(self._spill_dir, logger)
        self._journal = Journal(Path(journal_dir)) if journal_dir is not None else None

    # ----------------------------------------------------------------- public interface

    @property
    def queue_depth(self) -> int:
        """Rows waiting in memory for the writer thread."""
        return self._queue.qsize()

    @property
    def dropped_rows(self) -> int:
        """Rows lost for good: queue full, rejected by the database, or spill write failed."""
        return self._drops.total

    @property
    def written_rows(self) -> int:
        """Rows committed to the database (duplicates skipped on replay not included)."""
        return self._written_rows

    @property
    def rejected_rows(self) -> int:
        """Rows the database refused, kept aside in ``rejected-*.jsonl`` in the spill folder."""
        return self._rejected.total

    @property
    def journal_failures(self) -> int:
        """Rows that could not be appended to the journal (they were still queued)."""
        return self._journal.failures if self._journal else 0

    @property
    def spilled_rows(self) -> int:
        """Rows appended to spill files so far (each counted once per spill)."""
        return self._spilled_rows

    def start(self) -> None:
        """Start the writer thread (once; later calls do nothing)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="request-log-writer", daemon=True)
        self._thread.start()

    def submit(self, row: RequestLogRow | Mapping[str, Any]) -> None:
        """Queue `row` (column name -> value) for writing. Never blocks, never raises.

        A missing `created_at` is set to now, so the log records when the request happened
        rather than when the row reached the database. The row is copied, but nested values
        (the response) are not: do not mutate them after submitting.
        """
        try:
            if self._stopping.is_set():
                self._drops.record(1, "writer is stopped")
                return
            item = dict(row)
            item.setdefault("created_at", datetime.now(UTC))
            if self._journal is None:
                self._queue.put_nowait(item)
            else:
                self._journal.append(encode_line(item), lambda: self._queue.put_nowait(item))
        except queue.Full:
            self._drops.record(1, "queue full")
        except Exception:
            self._drops.record(1, "row is not a mapping")

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Write everything queued (spilling what the database does not take) and join.

        Returns False if the thread was still busy after `timeout` seconds; it then goes on
        in the background until the process exits.
        """
        if self._thread is None:
            self.start()  # nothing else would ever write the queued rows
        self._stopping.set()
        # Wake the thread if it waits on an empty queue (a full queue means it is not waiting).
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "request log: writer still busy after %.1fs; %d rows queued",
                timeout or 0.0,
                self.queue_depth,
            )
            return False
        # A submit racing with the shutdown may have queued a row after the last drain.
        late = 0
        while True:
            try:
                late += self._queue.get_nowait() is not None
            except queue.Empty:
                break
        if late and (self._journal is None or self._journal.close()):
            self._drops.record(late, "submitted during shutdown")
        elif self._journal is not None:
            self._journal.close()  # rows it still holds are replayed by the next start
        self._rejected.close()
        self._drops.log_pending()
        return True

    # ----------------------------------------------------------------- writer thread

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    break
            except Exception:
                # A bug here must not kill the thread, or nobody would write later rows. Pause
                # (unless stopping) and postpone replays, so a persistent error cannot spin;
                # every step still takes a batch, so a stop still drains the queue.
                logger.exception("request log: unexpected error in the writer thread")
                self._retry_at = time.monotonic() + self._retry_max_s
                self._stopping.wait(self._retry_min_s)
        self._shutdown()

    def _step(self) -> bool:
        """One round of the writer loop; False once stopping and the queue is drained."""
        now = time.monotonic()
        if now >= self._next_orphan_scan:
            self._adopt_orphans()
        if self._spill_files and now >= self._retry_at:
            self._replay_spill()
        batch = self._take_batch()
        if not batch:
            return not self._stopping.is_set()
        try:
            self._store([bound_row(row) for row in batch])
        except Exception:
            self._drops.record(len(batch), "writer error")
            raise
        finally:
            if self._journal is not None:
                self._journal.handled(len(batch))
        return True

    def _shutdown(self) -> None:
        # Spilled rows get one more try, unless the database was just found down.
        if self._spill_files and time.monotonic() >= self._retry_at:
            try:
                self._replay_spill()
            except Exception:
                logger.exception("request log: unexpected error replaying spill files")
        for spill in self._spill_files:
            # Closing releases the lock: whichever process starts next takes the file over.
            os.close(spill.fd)
            logger.warning("request log: rows left in %s for the next start", spill.path)
        self._spill_files.clear()
        self._append_target = None

    def _take_batch(self) -> list[Row]:
        """Up to batch_size rows: wait for the first, then batch_wait_s for more (unless a
        batch is waiting already) and take what came. Sleeping out the wait rather than
        waiting on the queue: a queue wakes its reader at every row, and a woken thread takes
        the GIL from the event loop each time (at concurrency 32, 40 µs of a request's CPU
        went to handing one row to this thread)."""
        wait = _IDLE_WAIT_S
        if self._spill_files:
            wait = min(wait, max(0.0, self._retry_at - time.monotonic()))
        batch: list[Row] = []
        try:
            if self._stopping.is_set():
                item = self._queue.get_nowait()
            else:
                item = self._queue.get(timeout=wait)
            if item is not None:
                batch.append(item)
            if self._queue.qsize() < self._batch_size - len(batch):
                self._stopping.wait(self._batch_wait_s)  # a stop cuts it short
            while len(batch) < self._batch_size:
                item = self._queue.get_nowait()
                if item is not None:
                    batch.append(item)
        except queue.Empty:
            pass
        return batch

    def _store(self, rows: list[Row]) -> None:
        if self._spill_files:
            # Older rows wait on disk: queue these behind them to keep the order.
            self._spill(rows)
            return
        unwritten = self._write(rows)
        if unwritten:
            self._spill(unwritten)

    def _write(self, rows: list[Row]) -> list[Row]:
        """Insert `rows`; return those left unwritten because the database is unavailable.

        Rows the database rejects (constraint or data errors) are dropped, not returned: they
        would fail on every retry and hold up everything behind them.
        """
        try:
            with self._session_factory() as session, session.begin():
                self._written_rows += insert_request_logs(session, rows)
            return []
        except Exception as exc:
            if database_unavailable(exc):
                self._note_outage(exc)
                return rows
            if len(rows) == 1:
                reason = describe(exc)
                if not self._rejected.keep(rows[0], reason):
                    self._drops.record(1, f"row rejected by the database: {reason}")
                return []
        # Some row in the batch is bad: insert one at a time so only that row is lost.
        for i, row in enumerate(rows):
            if self._write([row]):
                return rows[i:]
        return []

    def _note_outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
            self._backoff_s = self._retry_min_s
            logger.warning(
                "request log: database unavailable (%s); spilling rows to %s",
                describe(exc),
                self._spill_dir,
            )
        else:
            self._backoff_s = min(self._backoff_s * 2, self._retry_max_s)
        self._retry_at = now + self._backoff_s

    # ----------------------------------------------------------------- spill files

    def _spill(self, rows: list[Row]) -> None:
        """Append rows to this writer's spill file, durably; count them dropped if that fails."""
        lines: list[str] = []
        for row in rows:
            try:
                lines.append(spill_files.encode_row(row))
            except (TypeError, ValueError) as exc:
                self._drops.record(1, f"row cannot be serialized: {exc}")
        if not lines:
            return
        data = "".join(lines).encode("utf-8")
        try:
            spill = self._append_target or self._new_spill_file()
        except OSError as exc:
            self._drops.record(len(lines), f"cannot create spill file: {exc}")
            return
        try:
            spill_files.append(spill, data)
        except OSError as exc:
            self._drops.record(len(lines), f"spill write failed: {exc}")
            if not spill.writable:
                self._append_target = None  # later rows go to a fresh file
            return
        self._spilled_rows += len(lines)

    def _new_spill_file(self) -> SpillFile:
        spill = spill_files.create(self._spill_dir)
        self._spill_files.append(spill)
        self._append_target = spill
        return spill

    def _adopt_orphans(self) -> None:
        """Take over spill files whose owner is gone (their lock is free); replay them first."""
        self._next_orphan_scan = time.monotonic() + _ORPHAN_SCAN_INTERVAL_S
        candidates = spill_files.orphan_candidates(self._spill_dir)
        journals = self._journal.folder if self._journal else None
        if journals is not None:  # a dead process's journal is replayed as a spill file
            if journals.resolve() != self._spill_dir.resolve():
                candidates += spill_files.orphan_candidates(journals)
            candidates += spill_files.orphan_candidates(journals, JOURNAL_GLOB)
        owned = {spill.path for spill in self._spill_files}
        adopted: list[SpillFile] = []
        for path in candidates:
            spill = None if path in owned else spill_files.try_adopt(path, path.parent)
            if spill is not None:
                adopted.append(spill)
        if adopted:
            self._spill_files[:0] = adopted
            if self._outage_since is None:
                self._retry_at = 0.0  # the DB is believed up: replay right away

    def _replay_spill(self) -> None:
        """Write spilled rows, oldest file first; stop at the first sign the DB is still down."""
        while self._spill_files:
            spill = self._spill_files[0]
            try:
                complete = self._replay_file(spill)
            except OSError as exc:
                # Unreadable: leave it on disk for an operator, do not retry it forever.
                logger.error("request log: cannot read spill file %s: %s", spill.path, exc)
                complete = True
            else:
                if not complete:
                    return  # _write noted the outage and scheduled the next try
                spill.path.unlink(missing_ok=True)
            os.close(spill.fd)
            self._spill_files.pop(0)
            if spill is self._append_target:
                self._append_target = None
        if self._outage_since is not None:
            logger.info(
                "request log: database reachable again after %.1fs; spilled rows written",
                time.monotonic() - self._outage_since,
            )
            self._outage_since = None
        self._backoff_s = self._retry_min_s

    def _replay_file(self, spill: SpillFile) -> bool:
        """Insert the rows of one spill file; False if the database went away meanwhile."""
        for chunk, offset in spill_files.read_chunks(spill, self._batch_size, self._bad_line):
            if chunk and self._write([bound_row(row) for row in chunk]):
                return False
            spill.done_offset = offset
        return True

    def _bad_line(self, path: Path, exc: Exception) -> None:
        # Typically the last line of a process killed mid-write.
        self._drops.record(1, f"unreadable line in {path.name}: {exc}")
