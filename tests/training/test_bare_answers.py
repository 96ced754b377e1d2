"""Bare answers (training.formats.answers): which examples give one, and how it is cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.dialogue_context import bare_answer_file
from benchmarks.dialogue_context_cv import summarise
from training.formats.answers import bare_answer, bare_answers, with_bare_answers
from training.formats.example import Example, SlotSpan
from training.formats.spanjson import read_json_examples


def _ex(text: str, requested: tuple[str, ...], *spans: tuple[str, int, int]) -> Example:
    return Example(text, tuple(SlotSpan(a, b, slot) for slot, a, b in spans), (), requested)


def test_one_requested_slot_is_cut_to_its_span_with_the_context() -> None:
    answer = bare_answer(
        _ex("I want to go to Sacramento", ("to_location",), ("to_location", 16, 26))
    )
    assert answer is not None
    assert answer.text == "Sacramento"
    assert answer.spans == (SlotSpan(0, 10, "to_location"),)
    assert answer.requested_slots == ("to_location",)


def test_no_answer_without_exactly_one_requested_slot_that_is_labelled() -> None:
    assert (
        bare_answer(
            _ex("from Fresno to LA", ("from_location", "to_location"), ("from_location", 5, 11))
        )
        is None
    )
    assert bare_answer(_ex("at 5", (), ("time", 3, 4))) is None
    # Asked for the pickup date, labelled the dropoff date: not an answer to the question.
    assert bare_answer(_ex("the 3rd please", ("pickup_date",), ("dropoff_date", 0, 7))) is None
    # A span of only spaces gives nothing; padding around a value is trimmed.
    assert bare_answer(_ex("a   b", ("x",), ("x", 1, 4))) is None
    trimmed = bare_answer(_ex("for  2 people", ("size",), ("size", 4, 6)))
    assert trimmed is not None and trimmed.text == "2" and trimmed.spans[0].end == 1


def test_with_bare_answers_appends_new_ones_only() -> None:
    data = [
        _ex("to Sacramento", ("to_location",), ("to_location", 3, 13)),
        _ex("Sacramento", ("to_location",), ("to_location", 0, 10)),  # already bare
        _ex("pick it up on the 3rd", ("pickup_date",), ("pickup_date", 14, 21)),
    ]
    out = with_bare_answers(data)
    assert out[:3] == data
    assert [e.text for e in out[3:]] == ["the 3rd"]
    assert [e.text for e in bare_answers(data)] == ["Sacramento", "Sacramento", "the 3rd"]


def test_benchmark_writes_the_valid_answers_as_json_lines(tmp_path: Path) -> None:
    valid = tmp_path / "valid.json"
    valid.write_text(
        json.dumps(
            [
                {
                    "userInput": {"text": "The departure is from Las Vegas."},
                    "context": {"requestedSlots": ["from_location"]},
                    "labels": [
                        {"slot": "from_location", "valueSpan": {"startIndex": 22, "endIndex": 31}}
                    ],
                },
                {"userInput": {"text": "I need a bus."}, "context": {}},
            ]
        )
    )
    out = tmp_path / "bare.jsonl"
    assert bare_answer_file(valid, out) == 1
    (answer,) = read_json_examples(out, "jsonl")
    assert answer.text == "Las Vegas"
    assert answer.requested_slots == ("from_location",)
    assert answer.spans == (SlotSpan(0, 9, "from_location"),)


def test_cv_benchmark_pairs_each_variant_with_without_on_the_same_fold_and_seed() -> None:
    def rows(*requested: float) -> list[dict[str, object]]:
        folds = [(13, 1), (13, 2), (1, 1)]
        return [
            {"seed": s, "fold": f, "slot_f1": 0.9, "slot_f1_requested": r}
            for (s, f), r in zip(folds, requested, strict=True)
        ]

    table, verdicts = summarise(
        "Buses_1",
        {"context": rows(0.95, 0.90, 0.97), "without": rows(0.93, 0.91, 0.95)},
    )
    (verdict,) = verdicts
    assert verdict["paired_gains"] == pytest.approx([0.02, -0.01, 0.02])
    assert verdict["median_gain"] == pytest.approx(0.02)
    assert (verdict["ahead"], verdict["behind"]) == (2, 1)
    assert verdict["requested_pass"]  # a median gain of two points against one
    assert [row[1] for row in table] == ["context", "without"]
    shuffled = rows(0.95, 0.90, 0.97)[::-1]
    with pytest.raises(SystemExit, match="not the folds and seeds"):
        summarise("Buses_1", {"context": shuffled, "without": rows(0.93, 0.91, 0.95)})
