"""``POST /v1/feedback``: a client's correction of a parse it got."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app import paths
from app.db.admin import add_feedback
from app.db.repository import get_request_log
from app.deps import SessionsDep
from app.errors import ErrorResponse, RequestNotFound
from app.operating.feedback import feedback_row
from app.operating.schemas import FeedbackOut, FeedbackRequest

router = APIRouter(tags=["feedback"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (404, 415, 422, 503)
}


@router.post(paths.FEEDBACK, status_code=201, response_model=FeedbackOut, responses=ERRORS)
def post_feedback(body: FeedbackRequest, sessions: SessionsDep) -> FeedbackOut:
    """Store a correction of the logged request ``request_id`` (404 if it is not logged; 422
    if the slots do not fit its text). Training with ``include_feedback`` uses it."""
    slots = (
        [s.model_dump(exclude_none=True) for s in body.slots] if body.slots is not None else None
    )
    with sessions() as session, session.begin():
        logged = get_request_log(session, body.request_id)
        if logged is None:
            raise RequestNotFound(f"no logged request with id '{body.request_id}'")
        row = add_feedback(session, feedback_row(logged, body.intent, slots, body.sentiment))
        return FeedbackOut.model_validate(row)
