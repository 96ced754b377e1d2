"""Scores of multi-label intents and of the utterances that follow a question, and the
threshold a multi-label intent head is given."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Candidate thresholds: coarse enough not to fit noise on a small valid split.
THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))


def micro_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Micro-averaged F1 over (example, intent) pairs; 0.0 when both sides are empty."""
    tp = sum(len(set(g) & set(p)) for g, p in zip(gold, pred, strict=True))
    n_gold = sum(len(set(g)) for g in gold)
    n_pred = sum(len(set(p)) for p in pred)
    return 2 * tp / (n_gold + n_pred) if n_gold + n_pred else 0.0


def exact_match(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Share of examples whose predicted intent set equals the gold set."""
    if not gold:
        return 0.0
    return sum(set(g) == set(p) for g, p in zip(gold, pred, strict=True)) / len(gold)


def above(probs: np.ndarray, labels: Sequence[str], threshold: float) -> list[list[str]]:
    """The labels whose probability reaches ``threshold``, per row, most probable first."""
    out = []
    for row in probs:
        order = np.argsort(-row, kind="stable")
        out.append([labels[j] for j in order if row[j] >= threshold])
    return out


def tune_threshold(
    probs: np.ndarray, labels: Sequence[str], gold: Sequence[Sequence[str]]
) -> float:
    """The candidate threshold with the best micro-F1 on ``gold``; ties go to the one
    nearest 0.5."""
    best = max(
        THRESHOLDS,
        key=lambda t: (micro_f1(gold, above(probs, labels, t)), -abs(t - 0.5)),
    )
    return float(best)
