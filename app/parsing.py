"""Parse texts with the registry's models and shape responses and request-log rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

from app.config import RedactionMode, Settings
from app.errors import (
    EmptyBatch,
    EmptyText,
    InvalidText,
    ModelNotFound,
    TextTooLong,
    TooManyItems,
)
from app.registry import LoadedModel, ModelRegistry
from app.request_log import redact_text
from models.predictor import SentimentResult


def new_request_id() -> str:
    """A unique id returned to the client and stored with the log row."""
    return uuid.uuid4().hex


def check_unicode(value: str, where: str) -> None:
    """Reject a string UTF-8 cannot encode (lone surrogates from ``"\\ud800"`` escapes in
    JSON): it could not be stored, nor echoed in a response (422, never 500)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidText(f"'{where}' is not valid Unicode text ({err.reason})") from err


def check_texts(texts: Sequence[str], settings: Settings, *, batch: bool) -> None:
    """Reject empty, over-long or unencodable texts and oversized batches (4xx, never 500)."""
    if batch and not texts:
        raise EmptyBatch("expected at least one text in 'texts'")
    if len(texts) > settings.max_batch_items:
        raise TooManyItems(f"at most {settings.max_batch_items} texts per batch, got {len(texts)}")
    for i, text in enumerate(texts):
        where = f"texts[{i}]" if batch else "text"
        if not text.strip():
            raise EmptyText(f"'{where}' is empty or whitespace")
        if len(text) > settings.max_text_chars:
            raise TextTooLong(
                f"'{where}' has {len(text)} characters; the limit is {settings.max_text_chars}"
            )
        check_unicode(text, where)
        if "\x00" in text:
            raise InvalidText(f"'{where}' contains a NUL character")


def resolve_model(registry: ModelRegistry, name: str | None) -> LoadedModel:
    """The tagger to use, or 404."""
    try:
        return registry.get(name)
    except KeyError as err:
        served = ", ".join(m.name for m in registry.taggers())
        raise ModelNotFound(f"model '{name}' is not served; served models: {served}") from err


def run_models(
    tagger: LoadedModel,
    sentiment: LoadedModel | None,
    texts: Sequence[str],
    pool: Executor | None = None,
) -> list[dict[str, Any]]:
    """Result bodies of ``texts`` from these exact model versions.

    With ``pool``, the sentiment network runs there while this thread runs the tagger: torch
    releases the GIL inside its kernels, so on two cores the two overlap.
    """
    pending = (
        pool.submit(sentiment.classifier.classify, list(texts)) if pool and sentiment else None
    )
    parses = tagger.tagger.parse(list(texts))
    if pending is not None:
        feelings: Sequence[SentimentResult | None] = pending.result()
    elif sentiment is not None:
        feelings = sentiment.classifier.classify(list(texts))
    else:
        feelings = [None] * len(texts)
    model_ref = {
        "name": tagger.name,
        "version": tagger.version,
        "ref": tagger.ref,
        "sentiment": sentiment.ref if sentiment else None,
    }
    results = []
    for text, parse, feeling in zip(texts, parses, feelings, strict=True):
        ranking = [{"name": n, "confidence": c} for n, c in parse.intent_ranking]
        results.append(
            {
                "text": text,
                "tokens": [{"text": t.text, "start": t.start, "end": t.end} for t in parse.tokens],
                "intent": ranking[0],
                "intent_ranking": ranking,
                "slots": [
                    {
                        "slot": s.slot,
                        "value": s.value,
                        "start": s.start,
                        "end": s.end,
                        "confidence": s.confidence,
                    }
                    for s in parse.slots
                ],
                "sentiment": (
                    {
                        "label": feeling.label,
                        "confidence": feeling.confidence,
                        "scores": feeling.scores,
                    }
                    if feeling
                    else None
                ),
                "model": model_ref,
            }
        )
    return results


def to_rasa(result: dict[str, Any], message_id: str | None) -> dict[str, Any]:
    """Rasa NLU HTTP API shape (``POST /model/parse``)."""
    return {
        "text": result["text"],
        "intent": result["intent"],
        "intent_ranking": result["intent_ranking"],
        "entities": [
            {
                "entity": s["slot"],
                "value": s["value"],
                "start": s["start"],
                "end": s["end"],
                "confidence_entity": s["confidence"],
                "extractor": "slotfill.BiLSTMCRF",
            }
            for s in result["slots"]
        ],
        "message_id": message_id,
    }


def _loggable(result: dict[str, Any], mode: RedactionMode) -> dict[str, Any]:
    """The response as stored: without the text and slot values unless mode is ``full``."""
    if mode == RedactionMode.full:
        return result
    return {
        "intent": result["intent"],
        "slots": [{k: v for k, v in s.items() if k != "value"} for s in result["slots"]],
        "sentiment": result["sentiment"],
        "model": result["model"],
    }


def log_row(
    request_id: str,
    route: str,
    client: str | None,
    results: Sequence[dict[str, Any]],
    mode: RedactionMode,
    latency_ms: float,
    status_code: int = 200,
) -> dict[str, Any]:
    """One ``request_log`` row for a request; batch texts are joined by newlines."""
    text = "\n".join(redact_text(r["text"], r["slots"], mode) for r in results)
    stored = [_loggable(r, mode) for r in results]
    models = results[0]["model"] if results else None
    return {
        "request_id": request_id,
        "route": route,
        "client": client,
        "text": text,
        "text_mode": mode.value,
        "response": stored[0]
        if len(stored) == 1 and route != "/v1/parse/batch"
        else {"results": stored},
        "model_versions": {"tagger": models["ref"], "sentiment": models["sentiment"]}
        if models
        else None,
        "latency_ms": latency_ms,
        "status_code": status_code,
    }
