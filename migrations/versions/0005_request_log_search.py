"""request_log search indexes (PostgreSQL): intent, intent confidence, trigram text

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:55:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expressions of app.db.tables.SEARCH_INDEXES, as SQLAlchemy renders them for PostgreSQL.
_INDEXES = {
    "ix_request_log_intent": "((CAST((response -> 'intent') ->> 'name' AS VARCHAR)), id)",
    "ix_request_log_confidence": "((CAST((response -> 'intent') ->> 'confidence' AS FLOAT)))",
    "ix_request_log_text_trgm": "USING gin (lower(text) public.gin_trgm_ops)",
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return  # SQLite logs are small; the search scans them
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    for name, definition in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON request_log {definition}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for name in _INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
