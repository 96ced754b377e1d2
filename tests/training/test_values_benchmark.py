"""benchmarks.values: gold slots are scored per type for each resolver, non-values are left out."""

from __future__ import annotations

from datetime import datetime

from benchmarks.values import evaluate, infer_specs
from models.values import make_reference

REF = make_reference(datetime.fromisoformat("2022-03-15T09:00:00+00:00"), "UTC")


def example(text: str, slot: str, value: object, key: str = "value") -> dict[str, object]:
    return {"text": text, "slots": {slot: {"text": text, "span": [0, len(text)], key: value}}}


def test_scores_per_type_and_leaves_non_values_out() -> None:
    train = [example("7", "time", {"hour": 7, "minute": 0}),
             example("$5", "amount", {"amount": 5.0, "currency": "USD"}),
             example("today", "date", {"day": 15, "month": 3, "year": 2022})]  # fmt: skip
    specs = infer_specs(train)
    assert {s: v.type.value for s, v in specs.items()} == {
        "time": "time", "amount": "money", "date": "date",
    }  # fmt: skip
    check = [
        example("8 10 p.m.", "time", {"hour": 20, "minute": 10}),
        example("the 7th", "date", {"day": 7, "month": 4, "year": 2022}),
        example("tomorrow", "date", {"day": 1, "month": 1, "year": 2000}),  # a wrong gold
        example("some days ago", "date", "ambiguous"),
        example("40 pounds", "amount", {"amount": 40.0, "currency": "GBP"}),
    ]
    result, failures = evaluate(check, specs, REF)
    assert result["gold_slots"] == {"time": 1, "date": 2, "money": 1}
    assert result["left_out_not_a_value"] == {"date": 1}
    assert result["value_accuracy"]["slotfill"] == {"date": 0.5, "time": 1.0, "money": 1.0}
    assert [f["text"] for f in failures] == ["tomorrow"]
