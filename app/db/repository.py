"""Queries on the request log. Each function takes a Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.tables import RequestLog

# Columns a caller may leave out of a row; everything else is required.
_OPTIONAL_DEFAULTS: dict[str, Any] = {
    "client": None,
    "response": None,
    "model_versions": None,
    "context": None,
}


def insert_request_logs(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert `rows` (column name -> value) and return how many were new.

    Rows whose `request_id` is already stored are skipped, not errors: the request-log writer
    may replay a spill file whose first part was committed before the database went away.
    A missing `created_at` is set to now (UTC).
    """
    if not rows:
        return 0
    now = datetime.now(UTC)
    params = [{**_OPTIONAL_DEFAULTS, "created_at": now, **row} for row in rows]
    table = cast(Table, RequestLog.__table__)  # declarative tables are Tables; typed as FromClause
    dialect = session.get_bind().dialect.name
    # Dialect-specific inserts give `ON CONFLICT (request_id) DO NOTHING` on both backends;
    # it skips exactly the duplicate case, while other constraint errors still raise.
    if dialect == "postgresql":
        stmt: Insert = postgresql.insert(table).on_conflict_do_nothing(
            index_elements=["request_id"]
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["request_id"])
    else:
        raise NotImplementedError(f"request log: no idempotent insert for dialect {dialect!r}")
    # RETURNING yields only the rows actually inserted: the count drivers give for an
    # executemany with skipped conflicts is not reliable (psycopg counts them).
    inserted = session.execute(stmt.returning(table.c.request_id), params).all()
    return len(inserted)


def get_request_log(session: Session, request_id: str) -> RequestLog | None:
    """The row logged for `request_id`, or None."""
    return session.scalars(
        select(RequestLog).where(RequestLog.request_id == request_id)
    ).one_or_none()


def count_request_logs(session: Session) -> int:
    """Number of rows in the request log."""
    return session.scalar(select(func.count()).select_from(RequestLog)) or 0
