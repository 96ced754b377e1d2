"""What a parse produces: typed from the networks to the response body and the log row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json

from models.predictor import SentimentResult, SlotHypothesis, SlotValue
from models.text import Token
from models.values import Normalized


@dataclass(frozen=True, slots=True)
class Intent:
    """An intent and its probability."""

    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ModelRef:
    """The exact model versions that answered: tagger ``name@version`` and sentiment's."""

    name: str
    version: str
    ref: str
    sentiment: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "sentiment": self.sentiment,
        }


@dataclass(frozen=True, slots=True)
class ParseResult:
    """One utterance parsed: tokens, intents (best first), slots, sentiment, model versions."""

    text: str
    tokens: list[Token]
    intent_ranking: list[Intent]
    slots: list[SlotValue]
    sentiment: SentimentResult | None
    model: ModelRef
    hypotheses: list[SlotHypothesis] | None = None  # with n_best
    values: tuple[Normalized | None, ...] = ()  # each slot's resolved value, in order
    intents: list[Intent] = field(default_factory=list)  # those that hold (Parse.intents)

    @property
    def intent(self) -> Intent | None:
        """The best intent; None for a model trained without intents."""
        return self.intent_ranking[0] if self.intent_ranking else None

    def slot_values(self) -> list[Normalized | None]:
        """Each slot's resolved value (None for all before resolution)."""
        return list(self.values) if self.values else [None] * len(self.slots)

    def to_json(self, request_id: str | None = None) -> dict[str, Any]:
        """The body of ``/v1/parse`` (and the logged response), each slot with its resolved
        value (``normalized``), ``request_id`` included when given.

        Keys in the order of ``ParseResponse``'s fields, so that :func:`response_bytes` gives
        the bytes FastAPI's serialisation of the response model gives. Written out rather than
        ``dataclasses.asdict``: it runs on every request, and asdict deep-copies through every
        value.
        """
        ranking = [{"name": i.name, "confidence": i.confidence} for i in self.intent_ranking]
        body: dict[str, Any] = {
            "text": self.text,
            "tokens": [{"text": t.text, "start": t.start, "end": t.end} for t in self.tokens],
            "intent": ranking[0] if ranking else None,
            "intent_ranking": ranking,
            "intents": [{"name": i.name, "confidence": i.confidence} for i in self.intents],
            "slots": [
                {
                    "slot": s.slot,
                    "value": s.value,
                    "start": s.start,
                    "end": s.end,
                    "confidence": s.confidence,
                    "normalized": value.to_json() if value is not None else None,
                    "canonical": s.canonical,
                }
                for s, value in zip(self.slots, self.slot_values(), strict=True)
            ],
            "sentiment": sentiment_json(self.sentiment),
            "model": self.model.to_json(),
        }
        if request_id is not None:
            body["request_id"] = request_id
        body["hypotheses"] = (
            [
                {
                    "probability": h.probability,
                    "slots": [
                        {"slot": s.slot, "value": s.value, "start": s.start, "end": s.end}
                        for s in h.slots
                    ],
                }
                for h in self.hypotheses
            ]
            if self.hypotheses is not None
            else None
        )
        return body


def sentiment_json(sentiment: SentimentResult | None) -> dict[str, Any] | None:
    """A sentiment result as the API answers it and the request log stores it."""
    if sentiment is None:
        return None
    return {
        "label": sentiment.label,
        "confidence": sentiment.confidence,
        "scores": sentiment.scores,
    }


def response_bytes(body: Any) -> bytes:
    """``body`` (built by :meth:`ParseResult.to_json`) as JSON, as FastAPI would serialise it
    through the response model (Rust JSON, non-finite floats as null), without validating the
    service's own output against the model on every request (half of the web stack's
    serialisation cost). ``tests/app/test_parse_api.py`` checks that the bytes are the model's."""
    return to_json(body, inf_nan_mode="null")
