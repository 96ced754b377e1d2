"""Reading the request log for the console: search (keyset pages), the review queue (least
confident first) and traffic figures.

Confidence of a logged parse: the lowest of its intent's and its slots' confidences. The
search filters on the intent's confidence in SQL (a JSON path both SQLite and PostgreSQL
index into); the review queue ranks the newest ``REVIEW_WINDOW`` matching rows in Python.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.db.tables import Feedback, RequestLog
from app.paths import SINGLE_TEXT_ROUTES

REVIEW_WINDOW = 2000  # newest matching rows the review queue ranks
# A period that ends in the past with at most this many rows is read whole and sorted by id
# rather than found by walking the id order down from the newest row (see _small_past_period).
PERIOD_SORT_ROWS = 50_000
TRAFFIC_ROWS = 100_000  # most rows one traffic view reads


@dataclass
class Filters:
    """What the search, the review queue and the traffic view narrow the log down to."""

    q: str | None = None
    model: str | None = None
    intent: str | None = None
    slot: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    max_confidence: float | None = None


def _intent(response: Any) -> dict[str, Any] | None:
    intent = response.get("intent") if isinstance(response, dict) else None
    return intent if isinstance(intent, dict) else None


def slots_of(row: RequestLog) -> list[dict[str, Any]]:
    """The slots a logged single-text parse answered."""
    slots = row.response.get("slots") if isinstance(row.response, dict) else None
    return [s for s in slots if isinstance(s, dict)] if isinstance(slots, list) else []


def confidence(row: RequestLog) -> float | None:
    """The lowest intent or slot confidence of a logged parse (None: nothing to rank)."""
    values = [s.get("confidence") for s in slots_of(row)]
    intent = _intent(row.response)
    values.append(intent.get("confidence") if intent else None)
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return min(numbers) if numbers else None


def model_of(row: RequestLog) -> str | None:
    """name@version of the tagger that answered."""
    versions = row.model_versions if isinstance(row.model_versions, dict) else {}
    tagger = versions.get("tagger")
    return str(tagger) if tagger else None


def intent_of(row: RequestLog) -> str | None:
    intent = _intent(row.response)
    name = intent.get("name") if intent else None
    return str(name) if name else None


def intent_confidence(row: RequestLog) -> float | None:
    intent = _intent(row.response)
    value = intent.get("confidence") if intent else None
    return float(value) if isinstance(value, int | float) else None


def _filtered(query: Select[Any], filters: Filters) -> Select[Any]:
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # lower() LIKE, the expression of the trigram index (PostgreSQL; migration 0005)
        pattern = f"%{escaped.lower()}%"
        query = query.where(func.lower(RequestLog.text).like(pattern, escape="\\"))
    if filters.model:
        tagger = RequestLog.model_versions["tagger"].as_string()
        if "@" in filters.model:
            query = query.where(tagger == filters.model)
        else:
            query = query.where(tagger.startswith(f"{filters.model}@", autoescape=True))
    if filters.intent:
        query = query.where(RequestLog.response["intent"]["name"].as_string() == filters.intent)
    if filters.since is not None:
        query = query.where(RequestLog.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(RequestLog.created_at < filters.until)
    if filters.max_confidence is not None:
        intent_confidence = RequestLog.response["intent"]["confidence"].as_float()
        query = query.where(intent_confidence <= filters.max_confidence)
    return query


def _small_past_period(session: Session, filters: Filters) -> bool:
    """Whether ``until`` is set and the period holds at most PERIOD_SORT_ROWS rows (counted on
    the created_at index alone, ordered by it so that the planner reads only that index)."""
    if filters.until is None:
        return False
    period = select(RequestLog.created_at).where(RequestLog.created_at < filters.until)
    if filters.since is not None:
        period = period.where(RequestLog.created_at >= filters.since)
    period = period.order_by(RequestLog.created_at).limit(PERIOD_SORT_ROWS + 1)
    count = session.scalar(select(func.count()).select_from(period.subquery()))
    return (count or 0) <= PERIOD_SORT_ROWS


def search(
    session: Session, filters: Filters, cursor: int | None, limit: int
) -> tuple[list[RequestLog], int | None]:
    """Rows newest first, after ``cursor`` (the id the previous page ended at); the rows and
    the next cursor (None on the last page)."""
    query = _filtered(select(RequestLog), filters)
    if cursor is not None:
        query = query.where(RequestLog.id < cursor)
    # The planner assumes a period's rows are spread over the whole id order, so for a period
    # a week ago it walks the ids down from the newest row through every later one. Ordering
    # by id + 0 (the same order: ids are unique) hides the primary key's order from it, so it
    # reads the small period through the created_at index and sorts it instead.
    order = (RequestLog.id + 0) if _small_past_period(session, filters) else RequestLog.id
    rows = list(session.scalars(query.order_by(order.desc()).limit(limit + 1)))
    if filters.slot:
        rows = [r for r in rows if any(s.get("slot") == filters.slot for s in slots_of(r))]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


@dataclass
class ReviewItem:
    row: RequestLog
    confidence: float | None
    feedback: Feedback | None


def review_queue(session: Session, filters: Filters, limit: int) -> list[ReviewItem]:
    """Answered single-text requests with their text kept, least confident first."""
    query = _filtered(select(RequestLog), filters).where(
        RequestLog.route.in_(SINGLE_TEXT_ROUTES),
        RequestLog.status_code == 200,
        RequestLog.text_mode == "full",
    )
    rows = list(session.scalars(query.order_by(RequestLog.id.desc()).limit(REVIEW_WINDOW)))
    if filters.slot:
        rows = [r for r in rows if any(s.get("slot") == filters.slot for s in slots_of(r))]
    ranked = sorted(rows, key=lambda r: (c if (c := confidence(r)) is not None else 2.0, -r.id))
    ranked = ranked[:limit]
    ids = [r.request_id for r in ranked]
    corrections = {
        f.request_id: f
        for f in session.scalars(select(Feedback).where(Feedback.request_id.in_(ids)))
    }
    return [ReviewItem(r, confidence(r), corrections.get(r.request_id)) for r in ranked]


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


@dataclass
class ModelTraffic:
    """Traffic figures of one model (or of requests no model answered: ``-``)."""

    model: str
    requests: int = 0
    errors: int = 0
    low_confidence: int = 0
    latencies: list[float] = field(default_factory=list)
    per_minute: Counter[datetime] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)

    @property
    def error_share(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def low_confidence_share(self) -> float:
        answered = self.requests - self.errors
        return self.low_confidence / answered if answered else 0.0

    @property
    def p50(self) -> float | None:
        return _percentile(self.latencies, 0.5)

    @property
    def p95(self) -> float | None:
        return _percentile(self.latencies, 0.95)


def traffic(session: Session, filters: Filters, low: float) -> dict[str, ModelTraffic]:
    """Per model: requests per minute, latency, error share, intents, and the share of
    parses whose confidence is below ``low``, over the filtered period."""
    query = _filtered(select(RequestLog), filters).order_by(RequestLog.id.desc())
    by_model: dict[str, ModelTraffic] = defaultdict(lambda: ModelTraffic("-"))
    for row in session.scalars(query.limit(TRAFFIC_ROWS)):
        name = model_of(row) or "-"
        figures = by_model[name]
        figures.model = name
        figures.requests += 1
        figures.latencies.append(row.latency_ms)
        figures.per_minute[row.created_at.replace(second=0, microsecond=0)] += 1
        if row.status_code >= 400:
            figures.errors += 1
            continue
        intent = intent_of(row)
        if intent:
            figures.intents[intent] += 1
        value = confidence(row)
        if value is not None and value < low:
            figures.low_confidence += 1
    return dict(sorted(by_model.items()))
