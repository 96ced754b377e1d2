"""What the request-log writer loses and why: counting dropped rows, and telling a database
that is away from a row that is bad."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.serving.request_log import spill as spill_files
from app.serving.request_log.spill import SpillFile

# At most one "rows dropped" warning per interval, so a flood of drops cannot flood the log.
DROP_LOG_INTERVAL_S = 10.0


class DropCounter:
    """Rows lost for good, counted from any thread and logged at a bounded rate."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self.total = 0
        self._unlogged = 0
        self._last_log = float("-inf")

    def record(self, n: int, reason: str) -> None:
        """Count ``n`` dropped rows; warn unless a warning went out in the last interval."""
        with self._lock:
            self.total += n
            self._unlogged += n
            now = time.monotonic()
            if now - self._last_log < DROP_LOG_INTERVAL_S:
                return
            self._last_log = now
            unlogged, self._unlogged = self._unlogged, 0
        self._logger.warning(
            "request log: dropped %d row(s), last because %s (%d dropped since start)",
            unlogged,
            reason,
            self.total,
        )

    def log_pending(self) -> None:
        """Warn about the drops the rate limit held back (at shutdown)."""
        with self._lock:
            unlogged, self._unlogged = self._unlogged, 0
        if unlogged:
            self._logger.warning(
                "request log: dropped %d more row(s) (%d dropped since start)",
                unlogged,
                self.total,
            )


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means "try again later" rather than "this row is bad".

    Constraint and data errors are about the row. Other driver errors (connection refused or
    lost, missing table before migrations ran, locked SQLite file) are about the database, and
    the rows are kept on disk until it is fixed.
    """
    if isinstance(exc, IntegrityError | DataError):
        return False
    return isinstance(exc, DBAPIError | DisconnectionError | PoolTimeoutError | OSError)


def describe(exc: BaseException) -> str:
    """Type and first line of a database error."""
    # Only the driver's first line: SQLAlchemy's full message lists the statement parameters,
    # i.e. the user text that redaction is meant to keep out of logs.
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"


class RejectedRows:
    """Rows the database refused for their content, kept aside instead of lost: appended
    (fsync'd, mode 0600) to ``rejected-<pid>-<token>.jsonl`` in the spill folder, which no
    replay reads, for an operator to look at; counted (``slotfill_log_rejected_rows``)."""

    def __init__(self, folder: Path, logger: logging.Logger) -> None:
        self._folder = folder
        self._logger = logger
        self._file: SpillFile | None = None
        self.total = 0
        self._last_log = float("-inf")

    def keep(self, row: Mapping[str, Any], reason: str) -> bool:
        """Keep ``row`` aside; False if it could not be written (the caller drops it)."""
        try:
            line = spill_files.encode_row(row).encode("utf-8")
            if self._file is None or not self._file.writable:
                self._file = spill_files.create(self._folder, prefix="rejected")
            spill_files.append(self._file, line)
        except (OSError, TypeError, ValueError):
            return False
        self.total += 1
        now = time.monotonic()
        if now - self._last_log >= DROP_LOG_INTERVAL_S:
            self._last_log = now
            self._logger.warning(
                "request log: row rejected by the database (%s), kept in %s (%d since start)",
                reason,
                self._file.path.name,
                self.total,
            )
        return True

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file.fd)
            self._file = None
