"""Console pages: traffic, the review queue, correcting a parse, reviewing corrections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from app import paths
from app.db.admin import count_feedback, feedback_of_request, list_feedback, review_feedback
from app.db.repository import get_request_log
from app.db.tables import FeedbackStatus, RequestLog
from app.deps import SessionsDep, SettingsDep
from app.errors import FeedbackNotFound, RequestNotFound
from app.operating.console.auth import PagePrincipal, check_csrf, require_admin
from app.operating.console.charts import bar_chart
from app.operating.console.pages import redirect, render, since
from app.operating.console.queries import (
    REVIEW_WINDOW,
    Filters,
    intent_confidence,
    intent_of,
    model_of,
    review_queue,
    slots_of,
    traffic,
)
from app.operating.feedback import feedback_row, save_correction
from models.text import tagger_tokens

router = APIRouter(prefix=paths.CONSOLE, include_in_schema=False)
Hours = Annotated[int, Query(ge=1, le=720)]
Name = Annotated[str | None, Query(max_length=100)]
FormText = Annotated[str, Form(max_length=128)]
FeedbackId = Annotated[int, Path(ge=1, le=2**62)]


@router.get("/traffic", response_class=HTMLResponse)
def traffic_page(
    request: Request,
    principal: PagePrincipal,
    sessions: SessionsDep,
    settings: SettingsDep,
    hours: Hours = 1,
    model: Name = None,
) -> HTMLResponse:
    """Requests per minute, latency, error and low-confidence shares, intents, per model."""
    low = settings.console_low_confidence
    with sessions() as session:
        figures = traffic(session, Filters(model=model or None, since=since(hours)), low)
    charts = {
        name: {
            "per_minute": bar_chart(
                "requests per minute",
                [(m.strftime("%H:%M"), float(n)) for m, n in sorted(t.per_minute.items())],
            ),
            "intents": bar_chart("intents", [(i, float(n)) for i, n in t.intents.most_common(20)]),
        }
        for name, t in figures.items()
    }
    return render(
        request,
        "traffic.html",
        principal,
        title="Traffic",
        nav="Traffic",
        figures=figures,
        charts=charts,
        hours=hours,
        model=model,
        low=low,
    )


@router.get("/review", response_class=HTMLResponse)
def review_page(
    request: Request,
    principal: PagePrincipal,
    sessions: SessionsDep,
    settings: SettingsDep,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    model: Name = None,
    intent: Name = None,
    slot: Name = None,
    hours: Hours = 24,
) -> HTMLResponse:
    """Logged parses, least confident first, with their slots highlighted."""
    found = Filters(q or None, model or None, intent or None, slot or None, since(hours))
    with sessions() as session:
        items = [
            {
                "row": i.row,
                "confidence": i.confidence,
                "feedback": i.feedback,
                "slots": slots_of(i.row),
                "intent": intent_of(i.row),
                "intent_confidence": intent_confidence(i.row),
                "model": model_of(i.row),
            }
            for i in review_queue(session, found, 100)
        ]
    return render(
        request,
        "review.html",
        principal,
        title="Review queue",
        nav="Review",
        items=items,
        f=found,
        hours=hours,
        window=REVIEW_WINDOW,
        low=settings.console_low_confidence,
    )


def _logged(sessions: SessionsDep, request_id: str) -> RequestLog:
    with sessions() as session:
        row = get_request_log(session, request_id)
    if row is None:
        raise RequestNotFound(f"no logged request with id '{request_id}'")
    return row


def _names(request: Request, model: str | None) -> tuple[list[str], list[str]]:
    """Slot and intent names of the served tagger that made the parse (for suggestions)."""
    registry = getattr(request.app.state, "registry", None)
    name = model.split("@", 1)[0] if model else None
    served = registry.all().get(name) if registry is not None and name else None
    if served is None or served.artifact.task != "slots":
        return [], []
    tagger = served.tagger
    slots = sorted({t[2:] for t in tagger.tags.labels if t[:2] in ("B-", "I-")})
    return slots, sorted(tagger.intents.labels)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def correct_page(
    request: Request, principal: PagePrincipal, sessions: SessionsDep, request_id: str
) -> HTMLResponse:
    """One logged parse, with a form to correct its slots, intent and sentiment."""
    row = _logged(sessions, request_id)
    with sessions() as session:
        feedback = feedback_of_request(session, request_id)
    slots = slots_of(row)
    spans = feedback.slots if feedback and feedback.slots is not None else slots
    tokens = [
        {
            "text": t.text,
            "slot": next((s["slot"] for s in spans if s["start"] <= t.start < s["end"]), ""),
        }
        for t in tagger_tokens(row.text)
    ]
    sentiment = (row.response or {}).get("sentiment") if isinstance(row.response, dict) else None
    slot_names, intent_names = _names(request, model_of(row))
    return render(
        request,
        "correct.html",
        principal,
        title="Correct a parse",
        nav="Review",
        row=row,
        slots=slots,
        model=model_of(row),
        intent=intent_of(row),
        sentiment=sentiment.get("label") if isinstance(sentiment, dict) else None,
        feedback=feedback,
        tokens=tokens,
        slot_names=slot_names,
        intent_names=intent_names,
        form_intent=(feedback.intent if feedback else None) or intent_of(row),
        form_sentiment=feedback.sentiment if feedback else None,
    )


def spans_from_tags(text: str, tags: list[str]) -> list[dict[str, Any]]:
    """Character spans of runs of neighbouring tokens that carry one slot name."""
    spans: list[dict[str, Any]] = []
    for index, (token, tag) in enumerate(zip(tagger_tokens(text), tags, strict=False)):
        name = tag.strip()
        if not name:
            continue
        if spans and spans[-1]["slot"] == name and spans[-1]["last"] == index - 1:
            spans[-1]["end"], spans[-1]["last"] = token.end, index
        else:
            spans.append({"slot": name, "start": token.start, "end": token.end, "last": index})
    return [{"slot": s["slot"], "start": s["start"], "end": s["end"]} for s in spans]


@router.post("/requests/{request_id}/correct")
async def correct(
    request: Request, principal: PagePrincipal, sessions: SessionsDep, request_id: str
) -> Response:
    """Save the operator's correction (pending; it replaces any earlier one)."""
    form = await request.form(max_fields=1100)
    check_csrf(principal, str(form.get("csrf") or ""))
    return await run_in_threadpool(_save, principal, sessions, request_id, form)


def _save(principal: Any, sessions: SessionsDep, request_id: str, form: Any) -> Response:
    row = _logged(sessions, request_id)
    count = len(tagger_tokens(row.text))
    tags = [str(form.get(f"tag{i}") or "")[:64] for i in range(count)]
    intent = str(form.get("intent") or "").strip()[:128] or None
    sentiment = str(form.get("sentiment") or "").strip()[:64] or None
    slots = spans_from_tags(row.text, tags)
    with sessions() as session, session.begin():
        logged = get_request_log(session, request_id)
        assert logged is not None
        correction = feedback_row(logged, intent, slots, sentiment, author=principal.name)
        save_correction(session, correction, may_replace_reviewed=True)
    return redirect(f"{paths.CONSOLE}/review", "Correction saved; it is pending review.")


@router.get("/corrections", response_class=HTMLResponse)
def corrections_page(
    request: Request,
    principal: PagePrincipal,
    sessions: SessionsDep,
    status: Annotated[FeedbackStatus, Query()] = FeedbackStatus.pending,
) -> HTMLResponse:
    """Corrections by status; admins accept or reject them."""
    with sessions() as session:
        rows = list_feedback(session, 200, 0, status)
        counts = count_feedback(session)
    return render(
        request,
        "corrections.html",
        principal,
        title=f"Corrections: {status.value}",
        nav="Corrections",
        rows=rows,
        counts=counts,
    )


def _review(
    principal: Any, sessions: SessionsDep, feedback_id: int, csrf: str, status: FeedbackStatus
) -> Response:
    check_csrf(principal, csrf)
    require_admin(principal)
    with sessions() as session, session.begin():
        if review_feedback(session, feedback_id, status, principal.name) is None:
            raise FeedbackNotFound(f"no correction {feedback_id}")
    return redirect(f"{paths.CONSOLE}/corrections", f"Correction {status.value}.")


@router.post("/corrections/{feedback_id}/accept")
def accept(
    principal: PagePrincipal, sessions: SessionsDep, feedback_id: FeedbackId, csrf: FormText = ""
) -> Response:
    return _review(principal, sessions, feedback_id, csrf, FeedbackStatus.accepted)


@router.post("/corrections/{feedback_id}/reject")
def reject(
    principal: PagePrincipal, sessions: SessionsDep, feedback_id: FeedbackId, csrf: FormText = ""
) -> Response:
    return _review(principal, sessions, feedback_id, csrf, FeedbackStatus.rejected)
