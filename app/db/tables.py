"""ORM tables. Any change here needs a matching revision in `migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RequestLog(Base):
    """One served request: what was asked, what was answered, by which models, how fast."""

    __tablename__ = "request_log"

    # BIGINT on PostgreSQL; on SQLite only an `INTEGER PRIMARY KEY` is a rowid alias that
    # autoincrements, so the variant keeps ids generated there too.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=_utcnow)
    # Unique so that replaying a spill file after a partial write cannot duplicate rows.
    request_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    route: Mapped[str] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(128))
    # Stored as `text_mode` says: the utterance, a slot-redacted copy, or its SHA-256.
    text: Mapped[str] = mapped_column(Text)
    text_mode: Mapped[str] = mapped_column(String(16))
    # none_as_null: a missing value is SQL NULL rather than the JSON literal `null`.
    response: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    model_versions: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    # {"requested_slots": [...]} of a request that sent a dialogue context (migration 0003)
    context: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    latency_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"RequestLog(id={self.id!r}, request_id={self.request_id!r}, route={self.route!r})"


# The console's request-log search (migrations 0005, 0006), PostgreSQL only: keyset pages of one
# intent, low-confidence parses, and text search (pg_trgm) without a scan of the whole log.
# The expressions are the search's own (app/operating/console/queries.py), so the planner
# matches them; SQLite gets none (its logs are small) and Alembic skips comparing them there.
event.listen(
    RequestLog.__table__,
    "before_create",
    DDL(  # type: ignore[no-untyped-call]  # DDL's __init__ is untyped in SQLAlchemy 2.1
        "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"
    ).execute_if(dialect="postgresql"),
)
SEARCH_INDEXES = (
    Index(
        "ix_request_log_intent",
        RequestLog.response["intent"]["name"].as_string(),
        RequestLog.id,
    ).ddl_if(dialect="postgresql"),
    Index(
        "ix_request_log_confidence", RequestLog.response["intent"]["confidence"].as_float()
    ).ddl_if(dialect="postgresql"),
    # Migration 0006. Low-confidence rows in id order (max_confidence <= 0.5 pages walk only
    # them, the confidence checked in the index); an intent's rows by confidence.
    Index(
        "ix_request_log_low_confidence",
        RequestLog.id,
        RequestLog.response["intent"]["confidence"].as_float(),
        postgresql_where=RequestLog.response["intent"]["confidence"].as_float() <= 0.5,
    ).ddl_if(dialect="postgresql"),
    Index(
        "ix_request_log_intent_confidence",
        RequestLog.response["intent"]["name"].as_string(),
        RequestLog.response["intent"]["confidence"].as_float(),
    ).ddl_if(dialect="postgresql"),
    Index(
        "ix_request_log_text_trgm",
        func.lower(RequestLog.text).label("lower_text"),
        postgresql_using="gin",
        postgresql_ops={"lower_text": "public.gin_trgm_ops"},
    ).ddl_if(dialect="postgresql"),
)


class ModelVersion(Base):
    """One immutable artifact in the model store, with what it scored and where it came from."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the weights when the version was recorded; activation checks it again.
    checksum: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    job_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_utcnow)


class ActiveModel(Base):
    """The version every server worker should serve under ``name``: the polled pointer."""

    __tablename__ = "active_models"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    previous_version: Mapped[str | None] = mapped_column(String(32))
    # Versions active before this one, oldest first: a rollback pops the last (migration 0004).
    history: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_utcnow)


class JobStatus(StrEnum):
    """Where a training job is: queued -> running -> succeeded | failed | cancelled."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def final(self) -> bool:
        """True for the states a job never leaves."""
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class TrainingJob(Base):
    """A training job; ``status`` holds a :class:`JobStatus` value."""

    __tablename__ = "training_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    task: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(64))
    params: Mapped[Any] = mapped_column(JSON)
    activate: Mapped[str] = mapped_column(String(16))
    include_feedback: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    log_tail: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    result_version: Mapped[str | None] = mapped_column(String(32))
    activated: Mapped[bool | None] = mapped_column(Boolean)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=_utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FeedbackStatus(StrEnum):
    """A correction is pending until an admin accepts or rejects it; only accepted ones train."""

    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"


class Feedback(Base):
    """A correction of one logged parse (one per request: a new one replaces it); training
    adds it to a data set once an admin accepted it."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # name@version of the tagger that made the parse (migration 0004); NULL for older rows.
    model: Mapped[str | None] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(
        String(16), index=True, default=FeedbackStatus.pending, server_default="pending"
    )
    # The operator who wrote it (NULL: a client through POST /v1/feedback) and who reviewed it.
    author: Mapped[str | None] = mapped_column(String(64))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The utterance, copied from the request log, so that pruning the log keeps the example.
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(128))
    # [{"slot", "start", "end"}]; NULL = not corrected, [] = "there are no slots".
    slots: Mapped[Any | None] = mapped_column(JSON(none_as_null=True))
    sentiment: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True, default=_utcnow)


class Operator(Base):
    """An account of the operator console (migration 0004)."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # Part of every session cookie; sign-out increments it, which ends all the account's sessions.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Failed sign-ins since ``failed_since``: five within a minute lock the account for a minute.
    failed_signins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_utcnow)
