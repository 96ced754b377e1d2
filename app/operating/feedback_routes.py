"""``POST /v1/feedback``: a client's correction of a parse it got."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from app import paths
from app.db.repository import get_request_log
from app.deps import SessionsDep
from app.errors import ErrorResponse, RequestNotFound
from app.operating.feedback import feedback_row, save_correction
from app.operating.schemas import FeedbackReceipt, FeedbackRequest

router = APIRouter(tags=["feedback"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (404, 409, 415, 422, 503)
}


@router.post(paths.FEEDBACK, status_code=201, response_model=FeedbackReceipt, responses=ERRORS)
def post_feedback(body: FeedbackRequest, sessions: SessionsDep) -> FeedbackReceipt:
    """Store a correction of the logged request ``request_id`` (404 if it is not logged; 422
    if the slots do not fit its text). It replaces an earlier correction of that request
    (409 if an admin already reviewed that one) and waits, ``pending``, until an admin
    accepts it; only accepted corrections go into training. The answer holds nothing of the
    logged text."""
    slots = (
        [s.model_dump(exclude_none=True) for s in body.slots] if body.slots is not None else None
    )
    for attempt in range(2):
        try:
            with sessions() as session, session.begin():
                logged = get_request_log(session, body.request_id)
                if logged is None:
                    raise RequestNotFound(f"no logged request with id '{body.request_id}'")
                correction = feedback_row(logged, body.intent, slots, body.sentiment)
                row = save_correction(session, correction, may_replace_reviewed=False)
                return FeedbackReceipt.model_validate(row)
        except IntegrityError:
            if attempt:  # a concurrent first correction of this request won: replace it
                raise
    raise AssertionError("unreachable")
