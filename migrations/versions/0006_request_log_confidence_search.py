"""request_log search indexes (PostgreSQL): low intent confidence in id order, intent with
intent confidence

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:35:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONFIDENCE = "(CAST((response -> 'intent') ->> 'confidence' AS FLOAT))"
_INTENT = "(CAST((response -> 'intent') ->> 'name' AS VARCHAR))"
# The expressions of app.db.tables.SEARCH_INDEXES, as SQLAlchemy renders them for PostgreSQL.
_INDEXES = {
    "ix_request_log_low_confidence": f"(id, {_CONFIDENCE}) WHERE {_CONFIDENCE} <= 0.5",
    "ix_request_log_intent_confidence": f"({_INTENT}, {_CONFIDENCE})",
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite logs are small; the search scans them
    for name, definition in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON request_log {definition}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
