"""``scratch_database``: the throwaway PostgreSQL database tests and benchmarks run on."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from benchmarks.servers import scratch_database


def _exists(admin_url: URL, name: str | None) -> bool:
    engine = create_engine(admin_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
    finally:
        engine.dispose()
    return found is not None


def test_the_database_exists_inside_the_block_and_is_dropped_after(pg_database: URL) -> None:
    admin_url = pg_database.set(database="postgres")
    with scratch_database(admin_url, "slotfill_scratch") as url:
        assert url.database is not None and url.database.startswith("slotfill_scratch_")
        assert _exists(admin_url, url.database)
        # An open connection does not keep it from being dropped.
        engine = create_engine(url, poolclass=NullPool)
        conn = engine.connect()
        assert conn.execute(text("SELECT 1")).scalar() == 1
    assert not _exists(admin_url, url.database)
    with pytest.raises(OperationalError):  # the server closed it when dropping the database
        conn.execute(text("SELECT 1"))
    engine.dispose()
