"""Spill files: request-log rows kept on local disk while the database is unavailable.

One JSON object per line, appended and fsync'd. A file is owned by the process holding its
flock; a file whose lock is free belongs to a process that died, and whoever renames it first
takes it over. The writer decides when to spill and replay; this module does the file work.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.db.engine import json_text
from app.db.tables import RequestLog

logger = logging.getLogger("app.request_log")

# Columns holding datetimes: JSON has no datetime, so spill lines carry them as ISO strings.
_DATETIME_COLUMNS = frozenset(
    c.name for c in RequestLog.__table__.columns if c.type.python_type is datetime
)
SPILL_GLOB = "spill-*.jsonl"


@dataclass
class SpillFile:
    """A spill file this process owns; ``fd`` holds the flock that marks it as owned.

    Only the writer's current file is appended to; adopted ones are read.
    """

    path: Path
    fd: int
    # Byte offset up to which rows are committed, so a replay that stopped half-way resumes
    # there instead of re-sending (and re-counting) rows.
    done_offset: int = 0
    # False once a failed append could not be cut back: nothing more may be appended.
    writable: bool = True


def create(spill_dir: Path, prefix: str = "spill") -> SpillFile:
    """A new, locked, empty ``<prefix>-<pid>-<token>.jsonl`` in ``spill_dir`` (mode 0600);
    raises ``OSError``. The journal's files are made here too (``prefix="journal"``)."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:12]
    # Created under a name other writers ignore, locked, then renamed into view: no other
    # process can see it unlocked and mistake it for an orphan.
    tmp = spill_dir / f".{prefix}-{token}.tmp"
    # 0600: spill files hold the same user text as the database.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path = spill_dir / f"{prefix}-{os.getpid()}-{token}.jsonl"
        os.rename(tmp, path)
        _fsync_dir(spill_dir)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    return SpillFile(path=path, fd=fd)


def append(spill: SpillFile, data: bytes) -> None:
    """Append ``data`` durably (fsync'd: a row acknowledged as spilled must survive a crash
    or power loss). On failure the partial write is cut off and ``OSError`` re-raised; if even
    that fails, ``spill.writable`` turns False."""
    size: int | None = None
    try:
        size = os.fstat(spill.fd).st_size
        write_all(spill.fd, data)
        os.fsync(spill.fd)
    except OSError:
        try:
            # Cut off a partial line, or the next append would be glued onto it.
            if size is not None:
                os.ftruncate(spill.fd, size)
        except OSError:
            spill.writable = False
        raise


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less); raises ``OSError``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def orphan_candidates(spill_dir: Path, pattern: str = SPILL_GLOB) -> list[Path]:
    """Files named like ``pattern`` in ``spill_dir``, oldest first (owned or not:
    :func:`try_adopt` tells)."""
    try:
        return sorted(spill_dir.glob(pattern), key=_mtime)
    except OSError:
        return []


def try_adopt(path: Path, spill_dir: Path) -> SpillFile | None:
    """Take over the spill file at ``path`` if its owner is gone; None if it is alive or
    another process was faster."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # renamed or deleted by another writer meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Rename is the atomic claim: of several writers that found the lock free, only
        # one can move the file; the others get FileNotFoundError.
        new_path = spill_dir / f"spill-{os.getpid()}-{uuid.uuid4().hex[:12]}.jsonl"
        os.rename(path, new_path)
    except OSError:  # lock held (owner alive) or someone else was faster
        os.close(fd)
        return None
    logger.info("request log: took over spill file %s as %s", path.name, new_path.name)
    return SpillFile(path=new_path, fd=fd)


def encode_row(row: Mapping[str, Any]) -> str:
    """One spill line; raises TypeError/ValueError for values JSON cannot hold."""
    out = {
        k: v.isoformat() if k in _DATETIME_COLUMNS and isinstance(v, datetime) else v
        for k, v in row.items()
    }
    # Encoded as the database columns are (each row is journaled on the request path).
    return json_text(out) + "\n"


def read_chunks(
    spill: SpillFile, size: int, bad_line: Callable[[Path, Exception], None]
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """The rows of ``spill`` from its ``done_offset`` on, ``size`` at a time, each chunk with
    the byte offset just past it (the last chunk may be empty); a line that does not decode
    is passed to ``bad_line`` and skipped. Raises ``OSError`` if the file cannot be read."""
    with open(spill.path, "rb") as f:
        f.seek(spill.done_offset)
        offset = spill.done_offset
        chunk: list[dict[str, Any]] = []
        for line in f:
            offset += len(line)
            try:
                chunk.append(decode_row(line))
            except (ValueError, TypeError) as exc:
                bad_line(spill.path, exc)
            if len(chunk) >= size:
                yield chunk, offset
                chunk = []
        yield chunk, offset


def decode_row(line: bytes) -> dict[str, Any]:
    """The row of one spill line; raises ValueError/TypeError for a damaged line."""
    row = json.loads(line)
    if not isinstance(row, dict):
        raise ValueError("spill line is not a JSON object")
    for key in _DATETIME_COLUMNS & row.keys():
        if isinstance(row[key], str):
            row[key] = datetime.fromisoformat(row[key])
    return row


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _fsync_dir(path: Path) -> None:
    # A new file's directory entry is durable only once the directory itself is synced.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
