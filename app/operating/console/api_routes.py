"""JSON routes behind the console, for scripts too (Bearer admin token or a console session):
request-log search, the review queue, reviewing corrections and exporting accepted ones."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app import paths
from app.db.admin import feedback_with_logs, review_feedback
from app.db.tables import FeedbackStatus, RequestLog
from app.deps import SessionsDep
from app.errors import ErrorResponse, FeedbackNotFound
from app.operating.console.auth import ApiPrincipal, require_admin
from app.operating.console.queries import (
    Filters,
    confidence,
    intent_of,
    model_of,
    review_queue,
    search,
    slots_of,
)
from app.operating.feedback import logged_parse
from app.operating.schemas import FeedbackOut
from models.store import NAME_PATTERN

router = APIRouter(
    prefix=paths.ADMIN,
    tags=["console"],
    responses={
        code: {"model": ErrorResponse}
        for code in (400, 401, 403, 404, 408, 413, 415, 422, 500, 503)
    },
)
MAX_CURSOR = 2**62  # ids are BIGINT; beyond, a database overflows
NAME = r"^[\w.@:#-]{1,100}$"
TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: a 422 rather than a database error


class LoggedRequest(BaseModel):
    id: int
    request_id: str
    created_at: datetime
    route: str
    text: str
    text_mode: str
    model: str | None
    intent: str | None
    slots: list[dict[str, Any]]
    confidence: float | None = Field(description="Lowest intent or slot confidence")
    latency_ms: float
    status_code: int


class RequestsPage(BaseModel):
    requests: list[LoggedRequest]
    next_cursor: int | None = Field(description="Pass as cursor for the next (older) page")


class ReviewEntry(LoggedRequest):
    correction: FeedbackOut | None


class ReviewQueue(BaseModel):
    requests: list[ReviewEntry]


def _logged(row: RequestLog) -> dict[str, Any]:
    return {
        "id": row.id,
        "request_id": row.request_id,
        "created_at": row.created_at,
        "route": row.route,
        "text": row.text,
        "text_mode": row.text_mode,
        "model": model_of(row),
        "intent": intent_of(row),
        "slots": slots_of(row),
        "confidence": confidence(row),
        "latency_ms": row.latency_ms,
        "status_code": row.status_code,
    }


@router.get("/requests", response_model=RequestsPage)
def requests(
    principal: ApiPrincipal,
    sessions: SessionsDep,
    q: str | None = Query(
        None, max_length=200, pattern=TEXT, description="Text contains (any case)"
    ),
    model: str | None = Query(None, pattern=NAME, description="name or name@version"),
    intent: str | None = Query(None, pattern=NAME),
    slot: str | None = Query(None, pattern=NAME, description="Has a slot of this name"),
    since: datetime | None = None,
    until: datetime | None = None,
    max_confidence: float | None = Query(None, ge=0, le=1, description="Intent confidence"),
    cursor: int | None = Query(None, ge=1, le=MAX_CURSOR, description="From next_cursor"),
    limit: int = Query(50, ge=1, le=500),
) -> RequestsPage:
    """Search the request log, newest first, one keyset page at a time."""
    found = Filters(q, model, intent, slot, since, until, max_confidence)
    with sessions() as session:
        rows, next_cursor = search(session, found, cursor, limit)
        return RequestsPage(
            requests=[LoggedRequest(**_logged(r)) for r in rows], next_cursor=next_cursor
        )


@router.get("/review", response_model=ReviewQueue)
def review(
    principal: ApiPrincipal,
    sessions: SessionsDep,
    q: str | None = Query(None, max_length=200, pattern=TEXT),
    model: str | None = Query(None, pattern=NAME),
    intent: str | None = Query(None, pattern=NAME),
    slot: str | None = Query(None, pattern=NAME),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> ReviewQueue:
    """Logged single-utterance parses, least confident first, with their corrections."""
    found = Filters(q, model, intent, slot, since, until)
    with sessions() as session:
        items = review_queue(session, found, limit)
        return ReviewQueue(
            requests=[
                ReviewEntry(
                    **_logged(i.row),
                    correction=FeedbackOut.model_validate(i.feedback) if i.feedback else None,
                )
                for i in items
            ]
        )


def _review(
    principal: ApiPrincipal, sessions: SessionsDep, feedback_id: int, status: FeedbackStatus
) -> FeedbackOut:
    require_admin(principal)
    with sessions() as session, session.begin():
        row = review_feedback(session, feedback_id, status, principal.name)
        if row is None:
            raise FeedbackNotFound(f"no correction {feedback_id}")
        return FeedbackOut.model_validate(row)


@router.post("/feedback/{feedback_id}/accept", response_model=FeedbackOut)
def accept(
    principal: ApiPrincipal, sessions: SessionsDep, feedback_id: int = Path(ge=1, le=MAX_CURSOR)
) -> FeedbackOut:
    """Accept a correction (admins): the next training with feedback uses it."""
    return _review(principal, sessions, feedback_id, FeedbackStatus.accepted)


@router.post("/feedback/{feedback_id}/reject", response_model=FeedbackOut)
def reject(
    principal: ApiPrincipal, sessions: SessionsDep, feedback_id: int = Path(ge=1, le=MAX_CURSOR)
) -> FeedbackOut:
    """Reject a correction (admins): training never uses it."""
    return _review(principal, sessions, feedback_id, FeedbackStatus.rejected)


def export_lines(sessions: SessionsDep, model: str | None) -> list[str]:
    """Accepted corrections as lines of the JSON lines training format (README, Data
    formats): text, intents and spans; the logged answer fills in what was not corrected."""
    with sessions() as session:
        rows = feedback_with_logs(session, model)
        lines = []
        for fb, log_row in rows:
            logged_intent, logged_slots = logged_parse(log_row)
            intent = fb.intent or logged_intent
            slots = fb.slots if fb.slots is not None else logged_slots or []
            example: dict[str, Any] = {"text": fb.text}
            if intent:
                example["intents"] = [intent]
            example["spans"] = [
                {"start": s["start"], "end": s["end"], "slot": s["slot"]} for s in slots
            ]
            lines.append(json.dumps(example, ensure_ascii=False))
    return lines


@router.get(
    "/feedback/export",
    response_class=Response,  # JSON lines; errors keep the JSON error shape
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
def export(
    principal: ApiPrincipal,
    sessions: SessionsDep,
    model: str | None = Query(None, pattern=NAME_PATTERN, description="Tagger name"),
) -> Response:
    """Accepted corrections (of parses by ``model``) in the JSON lines training format."""
    require_admin(principal)
    body = "".join(f"{line}\n" for line in export_lines(sessions, model))
    return Response(body, media_type="application/x-ndjson")
