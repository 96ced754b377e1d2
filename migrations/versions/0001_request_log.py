"""request_log table

Revision ID: 0001
Revises:
Create Date: 2026-11-26 16:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_mode", sa.String(length=16), nullable=False),
        sa.Column("response", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("model_versions", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_log")),
    )
    op.create_index(
        op.f("ix_request_log_created_at"), "request_log", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_request_log_request_id"), "request_log", ["request_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_request_log_request_id"), table_name="request_log")
    op.drop_index(op.f("ix_request_log_created_at"), table_name="request_log")
    op.drop_table("request_log")
