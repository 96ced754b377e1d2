"""A teacher's logits kept on disk between distillation runs.

A MiniLM teacher labels SST-2's 64k sentences in about 20 minutes of CPU, and every
``slotfill train sentiment --distill-from`` run, every seed and every variant, used to pay for
it again. The logits of a text depend only on the teacher's weights and how it reads text
(the manifest), so they are kept per teacher artifact, keyed by the SHA-256 of both files, and
per text: a run on other texts (another seed's copies, one more file of texts) reuses what
overlaps and labels the rest.

One SQLite file per teacher (``<folder>/<key>.sqlite3``, table ``logits``: the text and its
float32 logits). SQLite serialises two runs writing the same teacher's file; a batch's rows
are committed as soon as they are labelled, so an interrupted run keeps what it labelled. A
cache that cannot be opened, read or written is reported once and the run goes on without
it: the cache saves time and never stops a training.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from models.artifact import MANIFEST, file_sha256

log = logging.getLogger(__name__)

AUTO = "auto"  # the user's cache folder (default_folder)
OFF = "off"
_IN_CHUNK = 500  # texts per SELECT ... IN (...): under SQLite's 999 bound parameters
_TIMEOUT_S = 60.0  # how long a writer waits for another run's write lock
# What SQLite says of a file's content, not of the moment (a lock, a full disk): a file
# that answers so now will answer so every time.
_DAMAGED = {sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT}


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/slotfill/teacher-logits`` (``~/.cache`` without the variable)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "slotfill" / "teacher-logits"


def resolve_folder(setting: str) -> Path | None:
    """The folder the ``distill_cache`` setting names: ``auto`` the default, ``off`` none."""
    if setting == OFF:
        return None
    return default_folder() if setting == AUTO else Path(setting)


def teacher_key(artifact: Path, weights_sha256: str) -> str:
    """What a teacher's logits depend on: its weights' SHA-256 (which the caller has hashed
    already) and its manifest's (model config, vocabularies and labels; another manifest only
    costs a miss)."""
    parts = (weights_sha256, file_sha256(artifact / MANIFEST))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class LogitCache:
    """One teacher's logits per text, ``width`` float32 values each, in ``folder``."""

    def __init__(self, folder: Path, key: str, width: int) -> None:
        self.path = folder / f"{key}.sqlite3"
        self.width = width
        self._db: sqlite3.Connection | None = None
        self._failed = False

    def get(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The kept logits of those of ``texts`` that have them (a row of another width,
        which a damaged file could hold, is left out and labelled again)."""
        found: dict[str, np.ndarray] = {}
        db = self._connect()
        if db is None:
            return found
        size = self.width * 4
        try:
            for i in range(0, len(texts), _IN_CHUNK):
                chunk = texts[i : i + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT text, logits FROM logits WHERE text IN ({marks})"
                for text, blob in db.execute(query, chunk):
                    if isinstance(blob, bytes) and len(blob) == size:
                        found[text] = np.frombuffer(blob, dtype="<f4").copy()
        except sqlite3.Error as err:
            self._give_up("read", err)
            return {}
        return found

    def put(self, rows: Iterable[tuple[str, np.ndarray]]) -> None:
        """Keep these texts' logits (committed at once; a text kept already stays)."""
        db = self._connect()
        if db is None:
            return
        values = [(t, np.asarray(v, dtype="<f4").tobytes()) for t, v in rows]
        try:
            with db:
                db.executemany("INSERT OR IGNORE INTO logits VALUES (?, ?)", values)
        except sqlite3.Error as err:
            self._give_up("write", err)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None or self._failed:
            return self._db
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = self._open()
            except sqlite3.DatabaseError as err:
                if getattr(err, "sqlite_errorcode", None) not in _DAMAGED:
                    raise
                self._move_aside(err)
                db = self._open()
        except (OSError, sqlite3.Error) as err:
            self._give_up("open", err)
            return None
        self._db = db
        return db

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=_TIMEOUT_S)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
            # A commit per labelled batch: no sync each (a crash loses the last rows only,
            # which the next run labels again; WAL keeps the file whole).
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS logits (text TEXT PRIMARY KEY, logits BLOB NOT NULL)"
            )
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _move_aside(self, err: Exception) -> None:
        """Keep a damaged file for a look (one, the latest) and its WAL files out of the way."""
        aside = self.path.with_name(self.path.name + ".damaged")
        log.warning("teacher cache %s: damaged (%s); moved to %s", self.path, err, aside.name)
        self.path.replace(aside)
        for suffix in ("-wal", "-shm"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)

    def _give_up(self, what: str, err: Exception) -> None:
        log.warning(
            "teacher cache %s: cannot %s it (%s); labelling without it", self.path, what, err
        )
        self.close()
        self._failed = True
        if getattr(err, "sqlite_errorcode", None) in _DAMAGED:  # found damaged while reading
            try:
                self._move_aside(err)
            except OSError as moving:
                log.warning("teacher cache %s: cannot move it aside (%s)", self.path, moving)
