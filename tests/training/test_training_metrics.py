"""training.metrics on hand-made examples."""

from __future__ import annotations

from typing import Any

import pytest

from training.metrics import (
    classification_metrics,
    format_slot_report,
    per_slot_report,
    slot_metrics,
)

T = list[list[str]]
SLOT_CASES: dict[str, tuple[T, T, list[str] | None, list[str], dict[str, Any]]] = {
    "perfect": (
        [["B-city", "I-city", "O"], ["O"]],
        [["B-city", "I-city", "O"], ["O"]],
        ["a", "b"],
        ["a", "b"],
        {"slot_f1": 1.0, "slot_precision": 1.0, "slot_recall": 1.0, "intent_accuracy": 1.0,
         "exact_match": 1.0, "n": 2},
    ),
    "one slot missed, one intent wrong": (
        [["B-a", "I-a", "O"], ["B-b", "O"]],
        [["B-a", "I-a", "O"], ["O", "O"]],
        ["x", "y"],
        ["x", "x"],
        {"slot_f1": 2 / 3, "slot_precision": 1.0, "slot_recall": 0.5, "intent_accuracy": 0.5,
         "exact_match": 0.5, "n": 2},
    ),
    # The model never saw B-unseen, so it cannot predict it: that is a miss, not skipped.
    "unseen gold label": (
        [["B-city", "O", "B-unseen"]],
        [["B-city", "O", "O"]],
        None,
        [],
        {"slot_f1": 2 / 3, "slot_precision": 1.0, "slot_recall": 0.5, "intent_accuracy": None,
         "exact_match": 0.0, "n": 1},
    ),
    "boundary error counts twice": (
        [["B-a", "I-a"]],
        [["B-a", "O"]],
        None,
        [],
        {"slot_f1": 0.0, "slot_precision": 0.0, "slot_recall": 0.0, "intent_accuracy": None,
         "exact_match": 0.0, "n": 1},
    ),
    "tags right, intent wrong: no exact match": (
        [["O", "B-a"]],
        [["O", "B-a"]],
        ["x"],
        ["y"],
        {"slot_f1": 1.0, "slot_precision": 1.0, "slot_recall": 1.0, "intent_accuracy": 0.0,
         "exact_match": 0.0, "n": 1},
    ),
    "no intents: exact match on tags": (
        [["O", "B-a"], ["O"]],
        [["O", "B-a"], ["B-a"]],
        None,
        [],
        {"slot_f1": 2 / 3, "slot_precision": 0.5, "slot_recall": 1.0, "intent_accuracy": None,
         "exact_match": 0.5, "n": 2},
    ),
    "empty": (
        [], [], None, [],
        {"slot_f1": 0.0, "slot_precision": 0.0, "slot_recall": 0.0, "intent_accuracy": None,
         "exact_match": 0.0, "n": 0},
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    "gold,pred,gold_intents,pred_intents,expected", SLOT_CASES.values(), ids=SLOT_CASES.keys()
)
def test_slot_metrics(
    gold: T, pred: T, gold_intents: list[str] | None, pred_intents: list[str], expected: Any
) -> None:
    assert slot_metrics(gold, pred, gold_intents, pred_intents) == pytest.approx(expected)


def test_per_slot_report() -> None:
    gold = [["B-city", "O", "B-date", "I-date"], ["B-city"]]
    pred = [["B-city", "O", "B-date", "O"], ["O"]]
    report = per_slot_report(gold, pred)
    assert report["city"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2}
    )
    assert report["date"]["f1-score"] == 0.0
    table = format_slot_report(report).splitlines()
    assert table[0].split() == ["slot", "precision", "recall", "f1", "support"]
    assert table[1].split() == ["city", "1.000", "0.500", "0.667", "2"]


def test_classification_metrics_example() -> None:
    got = classification_metrics(["pos", "neg", "neg", "neu"], ["pos", "neg", "pos", "neu"])
    assert got["accuracy"] == 0.75
    # pos: P 1/2 R 1 -> 2/3; neg: P 1 R 1/2 -> 2/3; neu: 1.
    assert got["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert got["n"] == 4
    assert got["confusion"] == {
        "neg": {"neg": 1, "neu": 0, "pos": 1},
        "neu": {"neg": 0, "neu": 1, "pos": 0},
        "pos": {"neg": 0, "neu": 0, "pos": 1},
    }


def test_classification_metrics_counts_labels_only_predicted() -> None:
    got = classification_metrics(["a", "a"], ["a", "b"])
    assert got["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert got["confusion"]["b"] == {"a": 0, "b": 0}


def test_classification_metrics_empty() -> None:
    assert classification_metrics([], []) == {
        "accuracy": 0.0,
        "macro_f1": 0.0,
        "n": 0,
        "confusion": {},
    }
