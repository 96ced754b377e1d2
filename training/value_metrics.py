"""Value metrics for ``slotfill evaluate`` when the data carries gold values:
``value_accuracy`` (on gold spans: the share of gold slots of a resolvable type whose
resolved value equals the gold one, overall and per type) and ``slot_value_f1`` (end to end:
a predicted slot counts only if its span, label and value all match)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from models.values.gold import is_value, matches
from models.values.reference import Reference
from models.values.slots import SlotValueResolver
from models.values.types import ValueType

UNRESOLVED = (ValueType.TEXT,)  # text is kept as written: nothing to resolve


def value_accuracy(
    examples: Iterable[Any], resolver: SlotValueResolver, reference: Reference
) -> dict[str, Any] | None:
    """Resolution accuracy on the gold spans; None when no span carries a gold value."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for example in examples:
        for span in example.spans:
            spec = resolver.specs.get(span.slot)
            if spec is None or spec.type in UNRESOLVED or not is_value(span.value):
                continue
            got = resolver.resolve(span.slot, example.text[span.start : span.end], reference)
            total[spec.type.value] += 1
            right[spec.type.value] += matches(span.value, got)
    if not total:
        return None
    return {
        "value_accuracy": sum(right.values()) / sum(total.values()),
        "value_accuracy_per_type": {t: right[t] / n for t, n in sorted(total.items())},
        "value_gold_slots": dict(sorted(total.items())),
    }


def slot_value_f1(
    examples: Sequence[Any],
    predicted: Sequence[Sequence[tuple[int, int, str, str]]],
    resolver: SlotValueResolver,
    reference: Reference,
) -> dict[str, float]:
    """Precision, recall and F1 of ``(span, label, value)`` triples.

    ``predicted[i]``: the ``(start, end, slot, text)`` chunks the model found in
    ``examples[i]``. A gold span without a gold value matches on span and label alone.
    """
    tp = n_pred = n_gold = 0
    for example, chunks in zip(examples, predicted, strict=True):
        gold = {(s.start, s.end, s.slot): s.value for s in example.spans}
        n_gold += len(gold)
        n_pred += len(chunks)
        for start, end, slot, text in chunks:
            key = (start, end, slot)
            if key not in gold:
                continue
            value = gold[key]
            if not is_value(value) or matches(value, resolver.resolve(slot, text, reference)):
                tp += 1
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"slot_value_precision": precision, "slot_value_recall": recall, "slot_value_f1": f1}
