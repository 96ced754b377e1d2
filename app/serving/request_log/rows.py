"""Request-log rows: what a row holds, built here and only here, and how its text is redacted.

``log_redaction`` (:class:`RedactionMode`) decides what of the user's text is kept: ``full``
stores the utterance and the whole answer; ``redact_slots`` replaces each slot span with
``<slot_name>`` and drops slot values from the stored answer; ``hash`` stores the SHA-256 of
the text and the same value-free answer.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from app.config import RedactionMode
from app.paths import PARSE_BATCH
from app.serving.results import ParseResult, sentiment_json


class RequestLogRow(TypedDict):
    """One ``request_log`` row as the writer queues, spills and inserts it."""

    request_id: str
    route: str
    client: str | None
    text: str  # as ``text_mode`` says: the utterance, a slot-redacted copy, or its SHA-256
    text_mode: str
    response: dict[str, Any] | None
    model_versions: dict[str, str | None] | None
    latency_ms: float
    status_code: int
    context: NotRequired[dict[str, Any] | None]  # the request's dialogue context, if any
    created_at: NotRequired[datetime]  # set by the writer when the row is submitted


def new_request_id() -> str:
    """A unique id returned to the client and stored with the log row."""
    return uuid.uuid4().hex


def redact_spans(text: str, spans: Iterable[tuple[int, int, str]], mode: RedactionMode) -> str:
    """The form of ``text`` the log stores under ``mode``; ``spans`` are ``(start, end, slot)``
    character offsets. Overlapping spans are all removed (the later one only from where the
    earlier ended); spans are clipped to the text."""
    if mode is RedactionMode.full:
        return text
    if mode is RedactionMode.hash:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    parts: list[str] = []
    pos = 0  # end of the text already emitted or replaced
    for start, end, name in sorted(spans):
        start, end = max(start, pos), min(end, len(text))
        if end <= start:
            continue
        parts.append(text[pos:start])
        parts.append(f"<{name}>")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def redact_text(text: str, slots: Iterable[Mapping[str, Any]], mode: RedactionMode | str) -> str:
    """:func:`redact_spans` for slots given as dicts with ``slot``, ``start`` and ``end``.

    Raises ValueError for an unknown mode or a slot without integer offsets: when redaction is
    asked for, storing the text unredacted is never the fallback.
    """
    mode = RedactionMode(mode)
    if mode is not RedactionMode.redact_slots:
        return redact_spans(text, (), mode)
    try:
        spans = [(int(s["start"]), int(s["end"]), str(s.get("slot", "slot"))) for s in slots]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"slot spans need integer 'start' and 'end': {exc}") from exc
    return redact_spans(text, spans, mode)


def _stored_response(result: ParseResult, request_id: str, mode: RedactionMode) -> dict[str, Any]:
    """The answer as stored: the response body under ``full``; else without the text and the
    slot values."""
    if mode is RedactionMode.full:
        return result.to_json(request_id)
    intent = result.intent
    return {
        "intent": {"name": intent.name, "confidence": intent.confidence} if intent else None,
        "intents": [{"name": i.name, "confidence": i.confidence} for i in result.intents],
        "slots": [
            {"slot": s.slot, "start": s.start, "end": s.end, "confidence": s.confidence}
            for s in result.slots
        ],
        "sentiment": sentiment_json(result.sentiment),
        "model": result.model.to_json(),
    }


def parse_row(
    request_id: str,
    route: str,
    client: str | None,
    results: Sequence[ParseResult],
    mode: RedactionMode,
    latency_ms: float,
    context: dict[str, Any] | None = None,
    answers: Sequence[dict[str, Any]] | None = None,
) -> RequestLogRow:
    """The row of an answered parse request; batch texts are joined by newlines; ``context``:
    the request's dialogue context (slot names, kept under every redaction mode); ``answers``:
    the response bodies of ``results`` when the caller built them already (stored as they are
    under ``full``, instead of being built a second time)."""
    text = "\n".join(
        redact_spans(r.text, [(s.start, s.end, s.slot) for s in r.slots], mode) for r in results
    )
    if mode is RedactionMode.full and answers is not None:
        stored = list(answers)
    else:
        stored = [_stored_response(r, request_id, mode) for r in results]
    model = results[0].model if results else None
    return {
        "request_id": request_id,
        "route": route,
        "client": client,
        "text": text,
        "text_mode": mode.value,
        "response": stored[0] if len(stored) == 1 and route != PARSE_BATCH else {"results": stored},
        "model_versions": {"tagger": model.ref, "sentiment": model.sentiment} if model else None,
        "latency_ms": latency_ms,
        "status_code": 200,
        "context": context,
    }


def failure_row(
    route: str,
    client: str | None,
    mode: RedactionMode,
    latency_ms: float,
    status_code: int,
    request_id: str | None = None,
) -> RequestLogRow:
    """The row of a parse request that failed before it was answered (4xx, 5xx, 503...)."""
    return {
        "request_id": request_id or new_request_id(),
        "route": route,
        "client": client,
        "text": "",
        "text_mode": mode.value,
        "response": None,
        "model_versions": None,
        "latency_ms": latency_ms,
        "status_code": status_code,
    }
