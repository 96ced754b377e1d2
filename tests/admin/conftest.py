"""Fixtures of the admin tests; helpers and constants are in admin_support.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from admin_support import (  # queue_name: a fixture, registered here
    REPO_ROOT,
    TEST_DATA,
    TOKEN,
    V1,
    MakeSettings,
    migrate,
    queue_name,  # noqa: F401
)
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import make_engine, make_session_factory
from app.main import create_app


@pytest.fixture
def store(tmp_path: Path, tiny_tagger_dir: Path, tiny_sentiment_dir: Path) -> Path:
    """``<store>/demo/V1`` (tiny tagger) and ``<store>/demo-sentiment/V1``; writable."""
    root = tmp_path / "store"
    shutil.copytree(tiny_tagger_dir, root / "demo" / V1)
    shutil.copytree(tiny_sentiment_dir, root / "demo-sentiment" / V1)
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Data sets ``tiny`` (tests/data/tiny_slots) and ``corrupt`` (seq.in/seq.out line counts
    differ); ``demo`` comes from the bundled data/demo."""
    root = tmp_path / "data"
    shutil.copytree(TEST_DATA / "tiny_slots", root / "tiny")
    shutil.copytree(TEST_DATA / "malformed" / "line_mismatch", root / "corrupt" / "train")
    shutil.copytree(TEST_DATA / "tiny_slots" / "valid", root / "corrupt" / "valid")
    return root


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A migrated SQLite database."""
    url = f"sqlite:///{tmp_path / 'slotfill.db'}"
    migrate(url)
    return url


@pytest.fixture
def make_settings(store: Path, data_dir: Path, db_url: str, tmp_path: Path) -> MakeSettings:
    """``make_settings(**overrides)``: admin enabled, fast polling, this test's store and DB."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_store": store,
            "data_dir": data_dir,
            "demo_data_dir": REPO_ROOT / "data" / "demo",
            "default_model": "demo",
            "sentiment_model": "demo-sentiment",
            "database_url": db_url,
            "log_spill_dir": tmp_path / "spill",
            "admin_token": TOKEN,
            "version_poll_seconds": 0.3,
            "job_poll_seconds": 0.2,
            "job_heartbeat_seconds": 0.5,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture
def client(make_settings: MakeSettings) -> Iterator[TestClient]:
    """A started app with the admin API on and the embedded job runner."""
    with TestClient(create_app(make_settings())) as test_client:
        yield test_client


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test database, for looking behind the API."""
    engine = make_engine(db_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()
