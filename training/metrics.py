"""Evaluation: conlleval-compatible entity F1 (seqeval), intent accuracy, sentiment scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seqeval.metrics import classification_report, f1_score, precision_score, recall_score


def slot_metrics(
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    gold_intents: Sequence[str] | None,
    pred_intents: Sequence[str],
) -> dict[str, Any]:
    """Slot P/R/F1, intent accuracy (None without gold intents), sentence exact match.

    A gold label the model never saw simply cannot be predicted: it counts as an error.
    """
    gold, pred = [list(t) for t in gold_tags], [list(t) for t in pred_tags]
    n = len(gold)
    tags_right = [g == p for g, p in zip(gold, pred, strict=True)]
    intent_accuracy = None
    exact = sum(tags_right) / n if n else 0.0
    if gold_intents is not None:
        intents_right = [g == p for g, p in zip(gold_intents, pred_intents, strict=True)]
        intent_accuracy = sum(intents_right) / n if n else 0.0
        exact = (
            sum(a and b for a, b in zip(tags_right, intents_right, strict=True)) / n if n else 0.0
        )
    scores = (f1_score, precision_score, recall_score)  # seqeval refuses empty input
    f1, precision, recall = (float(f(gold, pred, zero_division=0)) if n else 0.0 for f in scores)
    return {
        "slot_f1": f1,
        "slot_precision": precision,
        "slot_recall": recall,
        "intent_accuracy": intent_accuracy,
        "exact_match": exact,
        "n": n,
    }


def per_slot_report(
    gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Per-slot precision, recall, F1 and support."""
    report = classification_report(
        [list(t) for t in gold_tags],
        [list(t) for t in pred_tags],
        output_dict=True,
        zero_division=0,
    )
    return {
        name: {k: float(v) for k, v in row.items()}
        for name, row in report.items()
        if not name.endswith(" avg")
    }


def format_slot_report(report: dict[str, dict[str, float]]) -> str:
    """Fixed-width table of :func:`per_slot_report`."""
    width = max([len("slot"), *(len(k) for k in report)])
    lines = [f"{'slot':<{width}}  precision  recall     f1  support"]
    for name in sorted(report):
        r = report[name]
        lines.append(
            f"{name:<{width}}  {r['precision']:9.3f}  {r['recall']:6.3f}  "
            f"{r['f1-score']:5.3f}  {int(r['support']):7d}"
        )
    return "\n".join(lines)


def classification_metrics(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the gold and predicted labels, and the confusion matrix."""
    from sklearn import metrics as skm  # imported here: slow, and only sentiment needs it

    if not gold:  # sklearn refuses empty input
        return {"accuracy": 0.0, "macro_f1": 0.0, "n": 0, "confusion": {}}
    labels = sorted(set(gold) | set(pred))
    matrix = skm.confusion_matrix(list(gold), list(pred), labels=labels).tolist()
    return {
        "accuracy": float(skm.accuracy_score(gold, pred)),
        "macro_f1": float(
            skm.f1_score(gold, pred, labels=labels, average="macro", zero_division=0)
        ),
        "n": len(gold),
        "confusion": {
            g: dict(zip(labels, row, strict=True)) for g, row in zip(labels, matrix, strict=True)
        },
    }
