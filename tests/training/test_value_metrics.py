"""Slot types at training time (slots.yaml, gold values, names) and the value metrics of
``slotfill evaluate``."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from models.artifact import load_artifact, load_manifest
from models.errors import ArtifactError
from models.predictor import SlotTaggerPredictor
from models.values import make_reference
from models.values.schema import SlotSpec
from models.values.slots import SlotValueResolver
from models.values.types import ValueType
from slotfill.cli import main
from training.data import DataError
from training.formats import Example, SlotSpan
from training.slot_types import folder_slot_types, slot_schema
from training.value_eval import value_scores
from training.value_metrics import slot_value_f1, value_accuracy

REF = make_reference(datetime.fromisoformat("2022-03-15T09:00:00+00:00"), "UTC")
EXAMPLES = [
    Example(
        "send 40 pounds tomorrow",
        (
            SlotSpan(5, 14, "amount", {"amount": 40.0, "currency": "GBP"}),
            SlotSpan(15, 23, "date", {"day": 16, "month": 3, "year": 2022}),
        ),
    ),
    Example("at 7 please", (SlotSpan(3, 4, "time", {"hour": 7, "minute": 0}),)),
    Example("on the 7th", (SlotSpan(3, 10, "date", {"day": 7, "month": 4, "year": 2022}),)),
    Example("some days ago", (SlotSpan(0, 13, "date", "ambiguous"),)),
]


def test_types_come_from_the_schema_file_then_the_gold_values_then_the_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "slots.yaml").write_text("slots:\n  amount: number\n", encoding="utf-8")
    specs, warnings = slot_schema(tmp_path, ["amount", "date", "time", "party_size"], EXAMPLES)
    assert specs["amount"].type is ValueType.NUMBER and specs["amount"].source == "schema"
    assert specs["date"].type is ValueType.DATE and specs["date"].source == "values"
    assert specs["time"].type is ValueType.TIME
    assert specs["party_size"] == SlotSpec(ValueType.COUNT, "name")
    assert warnings == [
        "slot 'party_size': no type in slots.yaml and no gold values; guessed 'count' from its name"
    ]


def test_a_bad_schema_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "slots.yaml").write_text("slots:\n  x: colour\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"slots\.yaml.*'x'.*type must be one of"):
        slot_schema(tmp_path, ["x"])
    (tmp_path / "slots.yaml").write_text("slots: [unclosed\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"slots\.yaml"):
        slot_schema(tmp_path, ["x"])


def test_rasa_synonyms_join_the_category_that_has_their_value(tmp_path: Path) -> None:
    examples = [Example("fly to nyc", (SlotSpan(7, 10, "city", "New York"),))]
    specs, _ = slot_schema(tmp_path, ["city"], examples, {"big apple": "New York", "la": "LA"})
    assert specs["city"].synonyms == {"New York": ("big apple", "nyc")}
    resolver = SlotValueResolver(specs)
    got = resolver.resolve("city", "Big Apple", REF)
    assert got is not None and got.to_json()["value"] == "New York"


def test_value_accuracy_counts_gold_values_only(tmp_path: Path) -> None:
    specs, _ = slot_schema(tmp_path, ["amount", "date", "time"], EXAMPLES)
    result = value_accuracy(EXAMPLES, SlotValueResolver(specs), REF)
    assert result is not None
    # "some days ago" is not a value: 4 gold slots, all resolved right
    assert result["value_gold_slots"] == {"date": 2, "money": 1, "time": 1}
    assert result["value_accuracy"] == 1.0
    wrong = [Example("at 7", (SlotSpan(3, 4, "time", {"hour": 19, "minute": 0}),))]
    again = value_accuracy(wrong, SlotValueResolver(specs), REF)
    assert again is not None and again["value_accuracy_per_type"] == {"time": 0.0}
    assert value_accuracy([Example("hi")], SlotValueResolver(specs), REF) is None


def test_slot_value_f1_needs_span_label_and_value(tmp_path: Path) -> None:
    specs, _ = slot_schema(tmp_path, ["amount", "date", "time"], EXAMPLES)
    resolver = SlotValueResolver(specs)
    examples = EXAMPLES[:2]
    perfect = [
        [(5, 14, "amount", "40 pounds"), (15, 23, "date", "tomorrow")],
        [(3, 4, "time", "7")],
    ]
    assert slot_value_f1(examples, perfect, resolver, REF)["slot_value_f1"] == 1.0
    # the right span read as another value (a tagger that cut "40" off "pounds") and a
    # spurious chunk: 1 of 3 predictions right, 1 of 3 gold slots found
    cut = [[(5, 7, "amount", "40"), (15, 23, "date", "tomorrow")], [(0, 2, "time", "at")]]
    scores = slot_value_f1(examples, cut, resolver, REF)
    assert scores["slot_value_precision"] == pytest.approx(1 / 3)
    assert scores["slot_value_recall"] == pytest.approx(1 / 3)


def test_training_stores_the_slot_types_in_the_manifest(tiny_tagger_dir: Path) -> None:
    manifest = load_manifest(tiny_tagger_dir)
    assert manifest.slot_types["time"] == {"type": "datetime", "source": "schema"}
    assert manifest.slot_types["party_size"]["type"] == "count"
    assert manifest.slot_types["to_city"] == {"type": "text", "source": "name"}


def test_the_types_guessed_from_names_are_named_in_one_warning(test_data_dir: Path) -> None:
    _, warnings = folder_slot_types(test_data_dir / "tiny_slots", ["issue", "time", "to_city"])
    assert len(warnings) == 1
    assert "has no type for them" in warnings[0] and "issue=text, to_city=text" in warnings[0]


def test_a_manifest_with_bad_slot_types_does_not_load(
    tiny_tagger_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_tagger_dir, broken)
    raw = json.loads((broken / "manifest.json").read_text())
    raw["slot_types"]["time"]["type"] = "colour"
    (broken / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ArtifactError, match="slot_types"):
        load_manifest(broken)


def test_evaluation_scores_values_end_to_end(tiny_tagger_dir: Path) -> None:
    artifact = load_artifact(tiny_tagger_dir)
    assert isinstance(artifact.predictor, SlotTaggerPredictor)
    text = "book a table for two at 7pm"
    found = [(s.slot, s.value) for s in artifact.predictor.parse([text])[0].slots]
    assert found == [("party_size", "two"), ("time", "7pm")]  # the fixture tagger's answer
    types = artifact.manifest.slot_types

    def example(people: int) -> Example:
        return Example(
            text,
            (
                SlotSpan(17, 20, "party_size", people),
                SlotSpan(24, 27, "time", "2022-03-15T19:00:00+00:00"),
            ),
        )

    right = value_scores(artifact.predictor, types, [example(2)], REF)
    assert right is not None
    assert (right["value_accuracy"], right["slot_value_f1"]) == (1.0, 1.0)
    wrong = value_scores(artifact.predictor, types, [example(3)], REF)
    assert wrong is not None
    assert wrong["value_accuracy_per_type"] == {"count": 0.0, "datetime": 1.0}
    assert wrong["slot_value_f1"] == 0.5
    plain = [Example(text, (SlotSpan(17, 20, "party_size"),))]
    assert value_scores(artifact.predictor, types, plain, REF) is None


def test_predict_shows_each_slot_resolved_on_the_users_clock(
    tiny_tagger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["predict", str(tiny_tagger_dir), "book a table for two at 7pm tomorrow"]
    clock = ["--reference-time", "2026-12-01T18:00:00-05:00", "--timezone", "America/New_York"]
    assert main([*args, *clock]) == 0
    slots = {s["slot"]: s["normalized"] for s in json.loads(capsys.readouterr().out)["slots"]}
    assert slots["party_size"] == {"type": "count", "value": 2}
    assert slots["time"]["value"].startswith("2026-12-0")  # a datetime in New York's offset
    assert slots["time"]["value"].endswith("T19:00:00-05:00")


@pytest.mark.parametrize(
    "clock",
    [["--timezone", "Mars/Olympus"], ["--reference-time", "2026-12-01T18:00:00"],
     ["--reference-time", "10000-01-01T00:00:00+00:00"]],
)  # fmt: skip
def test_a_bad_clock_is_a_one_line_error(
    tiny_tagger_dir: Path, clock: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(tiny_tagger_dir), "two", *clock]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --reference-time/--timezone:") and err.count("\n") == 1


def test_evaluate_adds_value_scores_for_data_with_gold_values(
    tiny_tagger_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"text": "book a table for two at 7pm",
         "spans": [{"start": 17, "end": 20, "slot": "party_size", "value": 2},
                   {"start": 24, "end": 27, "slot": "time", "value": "2022-03-15T19:00:00+00:00"}]},
    ]  # fmt: skip
    split = tmp_path / "valid.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ref = ["--reference-time", "2022-03-15T09:00:00+00:00"]
    assert main(["evaluate", str(tiny_tagger_dir), str(split), "--json", *ref]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["value_accuracy"] == 1.0 and scores["slot_value_f1"] == 1.0
    assert scores["value_accuracy_per_type"] == {"count": 1.0, "datetime": 1.0}
