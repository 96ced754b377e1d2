"""The bare-answer set of benchmarks/dialogue_context.py: what it keeps and how it cuts."""

from __future__ import annotations

from typing import Any

from benchmarks.dialogue_context import bare_answers


def _item(text: str, requested: list[str], labels: list[tuple[str, int, int]]) -> dict[str, Any]:
    return {
        "userInput": {"text": text},
        "context": {"requestedSlots": requested} if requested else {},
        "labels": [
            {"slot": slot, "valueSpan": {"startIndex": a, "endIndex": b}} for slot, a, b in labels
        ],
        "id": text[:8],
    }


def test_bare_answers_keep_one_requested_slot_cut_to_its_span() -> None:
    valid = [
        _item("I want to go to Sacramento", ["to_location"], [("to_location", 16, 26)]),
        _item("from Fresno to LA", ["from_location", "to_location"], [("from_location", 5, 11)]),
        _item("no context here at 5", [], [("time", 19, 20)]),
        _item("the 3rd please", ["pickup_date"], [("dropoff_date", 0, 7)]),
        _item("3 people", ["group_size"], [("group_size", 0, 1)]),
    ]
    bare = bare_answers(valid)
    assert [b["userInput"]["text"] for b in bare] == ["Sacramento", "3"]
    assert bare[0]["context"] == {"requestedSlots": ["to_location"]}
    assert bare[0]["labels"] == [
        {"slot": "to_location", "valueSpan": {"startIndex": 0, "endIndex": 10}}
    ]
    # A span without a start begins at 0, as DSTC8 writes it.
    missing_start = _item("7 pm", ["time"], [])
    missing_start["labels"] = [{"slot": "time", "valueSpan": {"endIndex": 4}}]
    assert bare_answers([missing_start])[0]["userInput"]["text"] == "7 pm"
