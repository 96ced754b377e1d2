"""The request-log journal: every row is appended to a local file as it is submitted, before
the response goes out, so a worker killed with rows still queued in memory loses none.

Each writer owns ``journal-<pid>-<token>.jsonl`` files (locked with flock, like the spill
files, in the journal folder). Lines are the spill files' lines. A file is appended to until
it passes :data:`ROTATE_BYTES`, then a new one is started; a file is deleted once every row
in it has been handled by the writer (stored, spilled, or counted as dropped). A journal left
by a process that died is unlocked, and the next writer to scan the folder takes it over and
replays it as a spill file: rows that did reach the database are skipped there
(``request_id`` is unique), the others are written.

Appends are not fsync'd: they survive the death of the process (the kernel holds the
data), not a power cut. A journal append that fails is counted and the row still goes
through the in-memory queue, so logging never fails a request.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.serving.request_log import spill as spill_files
from app.serving.request_log.spill import SpillFile

logger = logging.getLogger("app.request_log")

JOURNAL_GLOB = "journal-*.jsonl"
# A journal file is replaced by a fresh one past this size; the old one goes once drained.
# Small, so that a replay after a crash re-reads few rows that were already stored.
ROTATE_BYTES = 1 << 20


class Journal:
    """Append-only journal files of one writer; thread-safe.

    :meth:`append` is called for each row in the order the rows are queued, and
    :meth:`handled` by the writer thread for each row it is done with, in the same order.
    """

    def __init__(self, folder: Path, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.folder = folder
        self._rotate_bytes = rotate_bytes
        self._lock = threading.Lock()
        self._current: SpillFile | None = None
        self._size = 0
        # One entry per appended row, oldest first: the file it went to (None: not journaled).
        self._pending: deque[SpillFile | None] = deque()
        self._rows_left: dict[int, int] = {}  # fd -> rows of that file not yet handled
        self._sealed: list[SpillFile] = []  # rotated out, deleted once drained
        self.failures = 0

    def append(self, line: bytes | None, enqueue: Callable[[], None]) -> None:
        """Queue a row (``enqueue``) and write its ``line``, as one step for :meth:`handled`.
        Raises what ``enqueue`` raises (nothing is written then); a failed write is logged
        and counted, and the row stays queued."""
        with self._lock:
            enqueue()
            target: SpillFile | None = None
            try:
                if line is None:
                    raise ValueError("row cannot be serialized")
                if self._current is None or self._size >= self._rotate_bytes:
                    self._rotate()
                assert self._current is not None
                spill_files.write_all(self._current.fd, line)
                self._size += len(line)
                target = self._current
                self._rows_left[target.fd] = self._rows_left.get(target.fd, 0) + 1
            except (OSError, ValueError) as exc:
                self.failures += 1
                if self.failures == 1 or self.failures % 1000 == 0:
                    logger.warning(
                        "request log: journal write failed (%s); %d row(s) not journaled",
                        exc,
                        self.failures,
                    )
            self._pending.append(target)

    def handled(self, n: int) -> None:
        """The writer is done with the ``n`` oldest rows: drained files are deleted."""
        with self._lock:
            for _ in range(min(n, len(self._pending))):
                target = self._pending.popleft()
                if target is not None:
                    self._rows_left[target.fd] -= 1
            for sealed in [s for s in self._sealed if not self._rows_left.get(s.fd)]:
                self._sealed.remove(sealed)
                self._delete(sealed)

    def close(self) -> bool:
        """At shutdown: delete the files whose rows were all handled; leave the others (and
        their lock) for the next start to replay. True if nothing was left."""
        with self._lock:
            files = [*self._sealed, *([self._current] if self._current else [])]
            self._sealed, self._current = [], None
            left = False
            for spill in files:
                if self._rows_left.get(spill.fd):
                    left = True
                    logger.warning("request log: unwritten rows left in %s", spill.path.name)
                    os.close(spill.fd)
                else:
                    self._delete(spill)
            self._rows_left.clear()
            return not left

    def _rotate(self) -> None:
        new = spill_files.create(self.folder, prefix="journal")
        if self._current is not None:
            self._sealed.append(self._current)
        self._current, self._size = new, 0
        # A file with no rows pending can go now (its rows were handled before this point).
        for sealed in [s for s in self._sealed if not self._rows_left.get(s.fd)]:
            self._sealed.remove(sealed)
            self._delete(sealed)

    def _delete(self, spill: SpillFile) -> None:
        self._rows_left.pop(spill.fd, None)
        spill.path.unlink(missing_ok=True)
        os.close(spill.fd)


def encode_line(row: Mapping[str, Any]) -> bytes | None:
    """The journal line of ``row``; None for a row JSON cannot hold (the writer counts it
    when it fails to spill or store it)."""
    try:
        return spill_files.encode_row(row).encode("utf-8")
    except (TypeError, ValueError):
        return None
