"""console: operators, reviewed corrections tied to a model, rollback history

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_signins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_operators_name")),
    )
    # One correction per request from now on: keep the newest of any that piled up.
    op.execute(
        "DELETE FROM feedback WHERE id NOT IN (SELECT max(id) FROM feedback GROUP BY request_id)"
    )
    op.drop_index(op.f("ix_feedback_request_id"), table_name="feedback")
    op.create_index(op.f("ix_feedback_request_id"), "feedback", ["request_id"], unique=True)
    # Earlier corrections were never reviewed: they wait for an admin like new ones.
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("model", sa.String(length=100), nullable=True))
        batch.add_column(
            sa.Column("status", sa.String(length=16), server_default="pending", nullable=False)
        )
        batch.add_column(sa.Column("author", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_feedback_model"), "feedback", ["model"], unique=False)
    op.create_index(op.f("ix_feedback_status"), "feedback", ["status"], unique=False)
    with op.batch_alter_table("active_models") as batch:
        batch.add_column(sa.Column("history", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("active_models") as batch:
        batch.drop_column("history")
    op.drop_index(op.f("ix_feedback_status"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_model"), table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
        batch.drop_column("author")
        batch.drop_column("status")
        batch.drop_column("model")
    op.drop_index(op.f("ix_feedback_request_id"), table_name="feedback")
    op.create_index(op.f("ix_feedback_request_id"), "feedback", ["request_id"], unique=False)
    op.drop_table("operators")
