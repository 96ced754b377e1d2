"""Parse texts with the registry's models: input checks, model lookup, the networks, and the
Rasa shape of an answer."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

from app.config import Settings
from app.errors import (
    EmptyBatch,
    EmptyText,
    InvalidText,
    ModelNotFound,
    RequestTooLarge,
    TextTooLong,
    TooManyItems,
    UnknownSlot,
)
from app.serving.registry import LoadedModel, ModelRegistry
from app.serving.results import Intent, ModelRef, ParseResult
from models.predictor import SentimentResult, SlotValue
from models.text import count_tokens


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
    check_cost(texts, settings)


def check_cost(texts: Sequence[str], settings: Settings) -> None:
    """Bound what one request costs, whatever its number of items: the networks' time and
    the answer's size grow with the tokens (31 texts of 2,000 "!" are 62,000 tokens)."""
    chars = sum(len(text) for text in texts)
    if chars > settings.max_request_chars:
        raise RequestTooLarge(
            f"the texts have {chars} characters in all; the limit per request is "
            f"{settings.max_request_chars}"
        )
    tokens = sum(count_tokens(text) for text in texts)
    if tokens > settings.max_request_tokens:
        raise RequestTooLarge(
            f"the texts have {tokens} tokens in all; the limit per request is "
            f"{settings.max_request_tokens}"
        )


def check_context(tagger: LoadedModel, requested: Sequence[str]) -> None:
    """Refuse requested slots the model does not know (422): its slots, and the slots its
    training data requested."""
    if not requested:  # the usual request: nothing to look up
        return
    predictor = tagger.tagger
    known = set(predictor.requested.labels) | {t[2:] for t in predictor.tags.labels if t != "O"}
    unknown = sorted(set(requested) - known)
    if unknown:
        raise UnknownSlot(
            f"context.requested_slots: {', '.join(map(repr, unknown[:5]))} "
            f"{'is not a slot' if len(unknown) == 1 else 'are not slots'} of model "
            f"'{tagger.name}'; its slots: {', '.join(sorted(known)) or 'none'}"
        )


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
    n_best: Sequence[int] = (),
    requested: Sequence[Sequence[str]] = (),
    pool: Executor | None = None,
) -> list[ParseResult]:
    """Results of ``texts`` from these exact model versions; ``n_best`` per text (none or 0:
    no hypotheses).

    With ``pool``, the sentiment network runs there while this thread runs the tagger: torch
    releases the GIL inside its kernels, so on two cores the two overlap.
    """
    pending = (
        pool.submit(sentiment.classifier.classify, list(texts)) if pool and sentiment else None
    )
    ks = list(n_best) or [0] * len(texts)
    parses = tagger.tagger.parse(list(texts), n_best=ks, requested=list(requested) or None)
    if pending is not None:
        feelings: Sequence[SentimentResult | None] = pending.result()
    elif sentiment is not None:
        feelings = sentiment.classifier.classify(list(texts))
    else:
        feelings = [None] * len(texts)
    model = ModelRef(tagger.name, tagger.version, tagger.ref, sentiment.ref if sentiment else None)
    return [
        ParseResult(
            text=text,
            tokens=parse.tokens,
            intent_ranking=[Intent(n, c) for n, c in parse.intent_ranking],
            slots=parse.slots,
            sentiment=feeling,
            model=model,
            hypotheses=parse.hypotheses if k else None,
            intents=[Intent(n, c) for n, c in parse.intents],
        )
        for text, parse, feeling, k in zip(texts, parses, feelings, ks, strict=True)
    ]


FALLBACK_INTENT = "nlu_fallback"


def with_fallback(result: ParseResult, threshold: float) -> ParseResult:
    """Rasa's FallbackClassifier: below ``threshold``, the intent is ``nlu_fallback`` with the
    threshold as its confidence, put ahead of the ranking, which is kept."""
    if result.intent is None or result.intent.confidence >= threshold:
        return result
    fallback = Intent(FALLBACK_INTENT, threshold)
    return replace(result, intent_ranking=[fallback, *result.intent_ranking])


def _rasa_entity(slot: SlotValue) -> dict[str, Any]:
    """A slot as Rasa's entity; a synonym's canonical value replaces the text and is marked in
    ``processors``, as Rasa's EntitySynonymMapper does."""
    entity: dict[str, Any] = {
        "entity": slot.slot,
        "value": slot.value,
        "start": slot.start,
        "end": slot.end,
        "confidence_entity": slot.confidence,
        "extractor": "slotfill.BiLSTMCRF",
    }
    if slot.canonical is not None and slot.canonical != slot.value:
        entity["value"] = slot.canonical
        entity["processors"] = ["EntitySynonymMapper"]
    return entity


def to_rasa(result: ParseResult, message_id: str | None) -> dict[str, Any]:
    """Rasa NLU HTTP API shape (``POST /model/parse``)."""
    ranking = [{"name": i.name, "confidence": i.confidence} for i in result.intent_ranking]
    return {
        "text": result.text,
        "intent": ranking[0] if ranking else None,
        "intent_ranking": ranking,
        "entities": [_rasa_entity(s) for s in result.slots],
        "message_id": message_id,
    }
