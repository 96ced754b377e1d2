"""Database fixtures: `db_url` runs a test on SQLite and on PostgreSQL.

PostgreSQL tests use the session database of `pg_database` (tests/conftest.py) and a fresh
schema in it per test (`pg_schema_url`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from tcp_proxy import TcpProxy

from app.db import Base, make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Engine on the empty test database."""
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def log_engine(engine: Engine) -> Engine:
    """Engine on a test database that has the service's tables."""
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture
def alembic_config(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    """Alembic config of the repository, pointed at the test DB like the CLI would be."""
    monkeypatch.setenv("SLOTFILL_DATABASE_URL", db_url)
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep pytest's log capture in place
    return config


@pytest.fixture
def pg_proxy(pg_database: URL) -> Iterator[TcpProxy]:
    """A running TcpProxy in front of the PostgreSQL server."""
    proxy = TcpProxy(pg_database.host or "127.0.0.1", pg_database.port or 5432)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.02)
    return True


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """`wait_until(predicate, timeout=5.0)`: poll until true or timeout; the last result."""
    return _wait_until
