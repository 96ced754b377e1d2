"""ORM tables. Any change here needs a matching revision in `migrations/versions/`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String, Text
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
    latency_ms: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"RequestLog(id={self.id!r}, request_id={self.request_id!r}, route={self.route!r})"
