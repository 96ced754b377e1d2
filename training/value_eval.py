"""The value scores of ``slotfill evaluate`` on examples that carry gold values: the model's
own slot types (its manifest), a reference time and zone, and the server's parse path (raw
text in, character spans out), so a slot counts end to end only as the API would return it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from models.predictor import SlotTaggerPredictor
from models.values.reference import Reference
from models.values.slots import SlotValueResolver
from training.value_metrics import slot_value_f1, value_accuracy

PARSE_BATCH = 64


def has_gold_values(examples: Sequence[Any]) -> bool:
    return any(span.value is not None for example in examples for span in example.spans)


def value_scores(
    predictor: SlotTaggerPredictor,
    slot_types: Mapping[str, Any],
    examples: Sequence[Any],
    reference: Reference,
) -> dict[str, Any] | None:
    """``value_accuracy`` (overall and per type) and ``slot_value_f1``; None when the
    examples carry no gold values or the model has no slot types."""
    resolver = SlotValueResolver.from_manifest({"slot_types": dict(slot_types)})
    if not resolver.specs or not has_gold_values(examples):
        return None
    accuracy = value_accuracy(examples, resolver, reference) or {}
    predicted: list[list[tuple[int, int, str, str]]] = []
    for i in range(0, len(examples), PARSE_BATCH):
        parses = predictor.parse([e.text for e in examples[i : i + PARSE_BATCH]])
        predicted.extend([(s.start, s.end, s.slot, s.value) for s in p.slots] for p in parses)
    return {**accuracy, **slot_value_f1(examples, predicted, resolver, reference)}
