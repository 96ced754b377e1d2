"""training.formats: each reader, the span -> token alignment, ``data check`` and
``data convert`` (through the same argparse commands ``slotfill data`` registers)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from training.cli import run
from training.data import DataError
from training.data_cli import add_data_parsers
from training.formats import detect_format, read_data
from training.formats.align import align
from training.formats.example import Example, SlotSpan
from training.formats.rasa import VALID_SHARE, parse_annotated, stratified_split

REPO = Path(__file__).resolve().parents[2]
RASA = REPO / "tests" / "data" / "rasa_booking"
TINY_BIO = REPO / "tests" / "data" / "tiny_slots"


def write_json(folder: Path, train: list[Any], valid: list[Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.json").write_text(json.dumps(train))
    (folder / "valid.json").write_text(json.dumps(valid))
    return folder


NLUPP = [
    {
        "text": "How much did I spend until May on amazon prime?",
        "intents": ["how_much", "transfer_payment_deposit"],
        "slots": {
            "date_to": {"text": "May", "span": [27, 30], "value": {"day": 31, "month": 5}},
            "company_name": {"text": "amazon prime", "span": [34, 46], "value": "amazon prime"},
        },
    },
    {"text": "How long does it take to get a new pin?", "intents": ["how_long", "pin"]},
]
DSTC8 = [
    {"userInput": {"text": "Can you find a bus?"}, "context": {}},
    {
        "userInput": {"text": "5 please"},
        "context": {"requestedSlots": ["group_size"]},
        "labels": [{"slot": "group_size", "valueSpan": {"endIndex": 1}}],
    },
]


def cli(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="slotfill")
    add_data_parsers(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(parser.parse_args(argv))
    return code, out.getvalue()


def test_nlupp_reader_keeps_intents_spans_and_values(tmp_path: Path) -> None:
    data = read_data(write_json(tmp_path / "d", NLUPP, NLUPP[:1]))
    assert data.format == "nlupp"
    first = data.train[0]
    assert first.intents == ("how_much", "transfer_payment_deposit")
    assert [(first.text[s.start : s.end], s.slot) for s in first.spans] == [
        ("May", "date_to"),
        ("amazon prime", "company_name"),
    ]
    assert first.spans[0].value == {"day": 31, "month": 5}
    assert data.train[1].spans == ()


def test_dstc8_reader_reads_context_and_a_missing_start_index_as_zero(tmp_path: Path) -> None:
    data = read_data(write_json(tmp_path / "d", DSTC8, DSTC8))
    assert data.format == "dstc8"
    assert data.train[0].requested_slots == ()
    assert data.train[1].requested_slots == ("group_size",)
    assert data.train[1].spans == (SlotSpan(0, 1, "group_size"),)
    assert data.train[1].intents == ()


def test_bio_reader_keeps_corpus_tokens_and_hash_labels_unless_split(tmp_path: Path) -> None:
    for split in ("train", "valid"):
        folder = tmp_path / split
        folder.mkdir()
        (folder / "seq.in").write_text("flights to st. louis\n")
        (folder / "seq.out").write_text("O O B-city I-city\n")
        (folder / "label").write_text("flight#airfare\n")
    single = read_data(tmp_path)
    example = single.train[0]
    assert example.intents == ("flight#airfare",)
    assert align(example).words == ["flights", "to", "st.", "louis"]  # not the server's split
    assert align(example).tags == ["O", "O", "B-city", "I-city"]
    assert example.text[example.spans[0].start : example.spans[0].end] == "st. louis"
    assert read_data(tmp_path, split_intents=True).train[0].intents == ("flight", "airfare")


def test_rasa_annotations_synonyms_lookups_and_split() -> None:
    data = read_data(RASA)
    assert data.format == "rasa"
    everything = data.train + data.valid
    assert len(everything) == 67
    by_text = {e.text: e for e in everything}
    sushi = by_text["can you book a sushi place for 2"]
    assert [(s.slot, s.value) for s in sushi.spans] == [
        ("cuisine", "japanese"),
        ("party_size", None),
    ]
    # an explicit synonym item maps an unannotated value, case-insensitively
    assert data.synonyms["the big apple"] == "new york"
    assert data.synonyms["veg"] == "vegetarian"
    assert by_text["just 2 of us"].intents == ("inform",)
    assert data.lookups["cuisine"][:2] == ["italian", "japanese"]
    assert any("regex" in n for n in data.notes)
    # the split is per intent, by text hash: the same folder gives the same split
    assert [e.text for e in read_data(RASA).valid] == [e.text for e in data.valid]
    for intent in {e.intents for e in everything}:
        n = sum(e.intents == intent for e in everything)
        assert sum(e.intents == intent for e in data.valid) == int(n * VALID_SHARE)


def test_rasa_synonym_item_applies_to_unannotated_value(tmp_path: Path) -> None:
    (tmp_path / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: inform\n  examples: |\n    - near [NYC](location)\n'
        "- synonym: new york\n  examples: |\n    - nyc\n"
    )
    (example,) = read_data(tmp_path).train + read_data(tmp_path).valid
    assert example.spans == (SlotSpan(5, 8, "location", "new york"),)


def test_rasa_annotation_forms() -> None:
    text, spans = parse_annotated(
        "x", 'a [b c](s1) d [e](s2:E) [f]{"entity": "s3", "value": "F"} [g]{"entity": "s4"}'
    )
    assert text == "a b c d e f g"
    assert [(text[s.start : s.end], s.slot, s.value) for s in spans] == [
        ("b c", "s1", None),
        ("e", "s2", "E"),
        ("f", "s3", "F"),
        ("g", "s4", None),
    ]
    with pytest.raises(DataError, match="roles, groups"):
        parse_annotated("x", '[g]{"entity": "city", "role": "from"}')
    with pytest.raises(DataError, match="malformed"):
        parse_annotated("x", "to [boston](city")


def test_stratified_split_keeps_every_intent_and_is_order_free() -> None:
    examples = [Example(f"text {i}", intents=("a" if i % 3 else "b",)) for i in range(30)]
    train, valid = stratified_split(examples)
    shuffled_valid = stratified_split(examples[::-1])[1]
    assert {e.text for e in valid} == {e.text for e in shuffled_valid}
    assert len(valid) == int(20 * VALID_SHARE) + int(10 * VALID_SHARE)
    assert not {e.text for e in train} & {e.text for e in valid}


def test_align_cuts_a_token_at_a_span_boundary() -> None:
    aligned = align(Example("meet at 5ish today", (SlotSpan(8, 9, "time"),)))
    assert aligned.words == ["meet", "at", "5", "ish", "today"]
    assert aligned.tags == ["O", "O", "B-time", "O", "O"]
    assert aligned.cuts == 1
    assert align(Example("meet at 5 today", (SlotSpan(8, 9, "time"),))).cuts == 0


def test_align_reports_overlapping_and_misaligned_spans() -> None:
    text = "table for 2 people, please"
    aligned = align(
        Example(text, (SlotSpan(10, 18, "party"), SlotSpan(10, 11, "n"), SlotSpan(18, 19, "p")))
    )
    assert aligned.tags == ["O", "O", "B-party", "I-party", "O"]
    assert any(p.startswith("overlapping span n [10, 11)") for p in aligned.problems)
    assert any(p.startswith("misaligned span p [18, 19) ','") for p in aligned.problems)


@pytest.mark.parametrize(
    "item,message",
    [
        (
            {"text": "hi there", "slots": {"x": {"span": [3, 40]}}},
            r"span \[3, 40\) of 'x' is outside",
        ),
        ({"text": "hi there", "slots": {"x": {"span": [0, 2], "text": "ho"}}}, "annotates 'ho'"),
        ({"text": "", "intents": ["a"]}, "text '' is not a non-empty string"),
        ({"text": "hi", "intents": "greet"}, "'intents' must be a list"),
    ],
)
def test_bad_examples_name_file_and_example(tmp_path: Path, item: Any, message: str) -> None:
    folder = write_json(tmp_path / "d", [NLUPP[1], item], [NLUPP[1]])
    with pytest.raises(DataError, match=message) as info:
        read_data(folder, "nlupp")
    assert str(info.value).startswith(f"{folder / 'train.json'}: example 2")


def test_unknown_format_and_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="unknown data format"):
        detect_format(tmp_path)
    (tmp_path / "train.json").write_bytes(b"[\xff]")
    with pytest.raises(DataError, match="not valid UTF-8"):
        read_data(tmp_path)


def test_check_counts_and_exit_codes(tmp_path: Path) -> None:
    code, out = cli(["data", "check", str(RASA), "--json"])
    assert code == 0
    summary = json.loads(out.splitlines()[-1])
    assert summary["examples"] == {"train": 56, "valid": 11}
    assert summary["intents"]["train"]["book_table"] == 15
    assert summary["lookups"] == {"cuisine": 9}
    assert summary["errors"] == 0
    overlapping = dict(NLUPP[1], slots={"a": {"span": [0, 8]}, "b": {"span": [4, 8]}})
    valid = [dict(NLUPP[0], intents=["only_valid"]), NLUPP[1]]
    folder = write_json(tmp_path / "bad", [overlapping, NLUPP[1], NLUPP[1]], valid)
    code, out = cli(["data", "check", str(folder)])
    assert code == 1
    assert "overlapping span b [4, 8)" in out
    assert "train: 1 texts occur more than once" in out
    assert "1 texts are in both train and valid" in out
    assert "intents only in valid (a model cannot predict them): ['only_valid']" in out
    assert "slots only in valid (a model cannot predict them): ['company_name', 'date_to']" in out


def test_check_bad_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_json(
        tmp_path / "d",
        DSTC8,
        [{"userInput": {"text": "x"}, "labels": [{"slot": "a", "valueSpan": {"endIndex": 9}}]}],
    )
    code, _ = cli(["data", "check", str(folder)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"error: {folder / 'valid.json'}: example 1 ('x'): "
        "span [0, 9) of 'a' is outside the text of 1 characters"
    )


@pytest.mark.parametrize("source", ["rasa", "dstc8", "nlupp", "bio"])
def test_convert_round_trips_through_jsonl(tmp_path: Path, source: str) -> None:
    src = {
        "rasa": RASA,
        "dstc8": write_json(tmp_path / "src", DSTC8, DSTC8),
        "nlupp": write_json(tmp_path / "src", NLUPP, NLUPP),
        "bio": TINY_BIO,
    }[source]
    dst = tmp_path / "out"
    code, _ = cli(["data", "convert", str(src), str(dst), "--to", "jsonl"])
    assert code == 0
    original, converted = read_data(src), read_data(dst)
    assert converted.format == "jsonl"
    for a, b in zip(
        original.train + original.valid, converted.train + converted.valid, strict=True
    ):
        assert (a.text, a.spans, a.intents, a.requested_slots) == (
            b.text,
            b.spans,
            b.intents,
            b.requested_slots,
        )
        if a.tokens is None:  # BIO tokens are whitespace tokens; the server's may differ
            assert align(a) == align(b)


def test_convert_writes_nothing_on_bad_data(tmp_path: Path) -> None:
    src = write_json(tmp_path / "src", NLUPP, [{"text": "hi", "slots": {"x": {"span": [0, 5]}}}])
    dst = tmp_path / "out"
    code, _ = cli(["data", "convert", str(src), str(dst), "--to", "jsonl"])
    assert code == 2
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    code, _ = cli(["data", "convert", str(RASA), str(src), "--to", "jsonl"])  # not empty
    assert code == 2
    assert sorted(p.name for p in src.iterdir()) == ["train.json", "valid.json"]


def test_jsonl_reader_refuses_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"text": "hi", "intent": "greet"}\n')
    (tmp_path / "valid.jsonl").write_text('{"text": "hi"}\n')
    with pytest.raises(
        DataError, match=r"train\.jsonl: example 1 \('hi'\): unknown keys \['intent'\]"
    ):
        read_data(tmp_path)
