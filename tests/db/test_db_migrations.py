"""Alembic migrations: upgrade, agreement with the models (`alembic check`), downgrade."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, String, inspect

from app.db import Base

pytestmark = pytest.mark.timeout(60)


def _schema_diffs(engine: Engine, metadata: MetaData) -> list[object]:
    """What `alembic check` compares: the live schema against `metadata`."""
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "render_as_batch": conn.dialect.name == "sqlite",
                "target_metadata": metadata,
            },
        )
        return list(compare_metadata(context, metadata))


def test_upgrade_matches_models_and_downgrade_removes_all(
    alembic_config: Config, engine: Engine
) -> None:
    command.upgrade(alembic_config, "head")

    inspector = inspect(engine)
    assert "request_log" in inspector.get_table_names()
    indexes = {ix["name"]: ix for ix in inspector.get_indexes("request_log")}
    expected = {"ix_request_log_created_at", "ix_request_log_request_id"}
    if engine.dialect.name == "postgresql":  # the console's search indexes (0005, 0006)
        expected |= {
            "ix_request_log_intent",
            "ix_request_log_confidence",
            "ix_request_log_text_trgm",
            "ix_request_log_low_confidence",
            "ix_request_log_intent_confidence",
        }
    assert set(indexes) == expected
    assert indexes["ix_request_log_request_id"]["unique"]
    assert _schema_diffs(engine, Base.metadata) == []
    command.check(alembic_config)  # the CLI's `alembic check`; raises on any difference

    command.downgrade(alembic_config, "base")
    # Alembic keeps its (now empty) version table; everything of ours is gone.
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    # A second round trip works, so the downgrade left nothing behind that gets in the way.
    command.upgrade(alembic_config, "head")
    assert _schema_diffs(engine, Base.metadata) == []
    command.downgrade(alembic_config, "base")


def test_schema_comparison_detects_drift(alembic_config: Config, engine: Engine) -> None:
    """Guards the test above against passing vacuously: real differences are reported."""
    command.upgrade(alembic_config, "head")
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    table = Base.metadata.tables["request_log"].to_metadata(drifted)
    table.append_column(Column("extra", Integer, nullable=True))
    table.c.route.type = String(65)

    kinds = set()
    for diff in _schema_diffs(engine, drifted):
        # Column changes come as a list of tuples, table-level ones as a tuple.
        first = diff[0] if isinstance(diff, list) else diff
        assert isinstance(first, tuple)
        kinds.add(first[0])
    assert {"add_column", "modify_type"} <= kinds
    command.downgrade(alembic_config, "base")


def test_offline_sql_renders(alembic_config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    """`alembic upgrade head --sql` works without a connection (for DBAs who review DDL)."""
    command.upgrade(alembic_config, "head", sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE request_log" in out
    assert "CREATE UNIQUE INDEX ix_request_log_request_id" in out
