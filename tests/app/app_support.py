"""Helpers of the app tests (imported by name: ``tests/app`` is on ``sys.path`` under pytest's
default import mode, as it has no ``__init__.py``).

The store holds ``tiny`` and ``tiny2`` (copies of the tiny tagger) and ``tiny-sentiment``, all
at version ``VERSION``. ``settings_factory`` points ``Settings`` at it with small limits, so
the limit errors need only small bodies.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import select

from app.config import Settings
from app.db import RequestLog, make_engine, make_session_factory

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION = "20260102T030405060708Z"
MAX_TEXT_CHARS = 60
MAX_BATCH_ITEMS = 3
MAX_BODY_BYTES = 1024

MakeSettings = Callable[..., Settings]


def migrate(url: str) -> None:
    """``alembic upgrade head`` on ``url``, as ``slotfill``'s deployment runs it."""
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser syntax
    config.attributes["configure_logger"] = False  # keep pytest's log capture in place
    command.upgrade(config, "head")


def build_store(root: Path, tagger: Path, sentiment: Path) -> Path:
    """``<root>/<name>/<VERSION>/`` for ``tiny``, ``tiny2`` and ``tiny-sentiment``."""
    for name, artifact in (("tiny", tagger), ("tiny2", tagger), ("tiny-sentiment", sentiment)):
        shutil.copytree(artifact, root / name / VERSION)
    return root


def log_rows(url: str) -> list[RequestLog]:
    """Every request-log row, oldest first."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return list(session.scalars(select(RequestLog).order_by(RequestLog.id)))
    finally:
        engine.dispose()


def settings_factory(store: Path, database_url: str, spill: Path) -> MakeSettings:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_store": store,
            "default_model": "tiny",
            "sentiment_model": "tiny-sentiment",
            "database_url": database_url,
            "log_spill_dir": spill,
            "max_text_chars": MAX_TEXT_CHARS,
            "max_batch_items": MAX_BATCH_ITEMS,
            "max_body_bytes": MAX_BODY_BYTES,
            "torch_threads": 1,
        }
        return Settings(**(values | overrides))

    return make
