"""Multi-label intents (sigmoid head, a threshold tuned on valid and stored in the artifact)
and the requested slot as context (a tiny tagger where only the context tells "5" apart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.artifact import load_artifact
from models.predictor import SlotTaggerPredictor
from training.config import SlotTrainConfig
from training.evaluate import evaluate_tagger
from training.formats import read_data
from training.multilabel import THRESHOLDS, above, exact_match, micro_f1, tune_threshold
from training.pipeline import train_folder
from training.tagging import tagging_set

TINY: dict[str, Any] = {
    "word_dim": 16,
    "char_dim": 8,
    "char_filters": 8,
    "hidden_size": 24,
    "pretrained_vectors": "none",
    "threads": 1,
    "ema_decay": None,
    "word_dropout": 0.0,
    "dropout": 0.1,
    "lr": 0.01,
    "batch_size": 8,
}


def write_jsonl(folder: Path, train: list[dict[str, Any]], valid: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("valid", valid)):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return folder


def test_micro_f1_exact_match_and_threshold() -> None:
    gold = [["a", "b"], ["a"], []]
    assert micro_f1(gold, [["a"], ["a"], []]) == pytest.approx(2 * 2 / (3 + 2))
    assert exact_match(gold, [["b", "a"], ["a"], ["c"]]) == pytest.approx(2 / 3)
    probs = np.array([[0.9, 0.35], [0.8, 0.1], [0.2, 0.3]])
    assert above(probs, ["a", "b"], 0.3) == [["a", "b"], ["a"], ["b"]]
    # 0.35 lets b in for the first row and keeps the third row empty: both exact
    threshold = tune_threshold(probs, ["a", "b"], gold)
    assert threshold in THRESHOLDS
    assert above(probs, ["a", "b"], threshold) == gold


def number(n: int, slot: str, asked: bool) -> dict[str, Any]:
    """A bare number, the answer to "what time?" or "for how many?"."""
    row: dict[str, Any] = {
        "text": str(n),
        "spans": [{"start": 0, "end": len(str(n)), "slot": slot}],
    }
    if asked:
        row["context"] = {"requested_slots": [slot]}
    return row


def context_data(tmp_path: Path) -> Path:
    train = [number(n, slot, True) for n in range(1, 25) for slot in ("time", "people")]
    train += [
        {
            "text": f"for {n} people",
            "spans": [{"start": 4, "end": 4 + len(str(n)), "slot": "people"}],
        }
        for n in range(1, 10)
    ] + [
        {"text": f"at {n} pm", "spans": [{"start": 3, "end": 3 + len(str(n)), "slot": "time"}]}
        for n in range(1, 10)
    ]
    valid = [number(n, slot, True) for n in (3, 8, 30) for slot in ("time", "people")]
    return write_jsonl(tmp_path / "context", train, valid)


def slots_of(predictor: SlotTaggerPredictor, text: str, asked: list[str]) -> list[str]:
    return [s.slot for s in predictor.parse([text], requested=[asked])[0].slots]


def test_the_requested_slot_decides_what_a_bare_number_is(tmp_path: Path) -> None:
    data = context_data(tmp_path)
    config = SlotTrainConfig(**TINY, epochs=25, patience=25)
    trained = train_folder("slots", data, config, tmp_path / "with")
    assert trained.artifact is not None
    predictor = load_artifact(trained.artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor) and predictor.reads_context
    assert predictor.requested.labels == ["people", "time"]
    for text in ("5", "12", "30"):
        assert slots_of(predictor, text, ["time"]) == ["time"]
        assert slots_of(predictor, text, ["people"]) == ["people"]
    assert trained.result.metrics["slot_f1_requested"] == 1.0
    with pytest.raises(ValueError, match="unknown requested slots"):
        predictor.parse(["5"], requested=[["colour"]])
    # The same data without the context input: the requested slot cannot change anything.
    off = SlotTrainConfig(**TINY, epochs=25, patience=25, use_requested_slots=False)
    blind = train_folder("slots", data, off, tmp_path / "without").result.predictor
    assert isinstance(blind, SlotTaggerPredictor) and not blind.reads_context
    assert slots_of(blind, "5", ["time"]) == slots_of(blind, "5", ["people"])
    valid = tagging_set(read_data(data).valid, "valid")
    scores, _ = evaluate_tagger(blind, valid)
    assert scores["slot_f1_requested"] <= 0.5  # one of the two readings is always wrong


INTENT_TEXTS = {
    "hi": ["greet"],
    "hello": ["greet"],
    "bye": ["bye"],
    "goodbye": ["bye"],
    "thanks": ["thank"],
    "thank you": ["thank"],
    "hi and bye": ["greet", "bye"],
    "hello and goodbye": ["greet", "bye"],
    "thanks and bye": ["thank", "bye"],
    "hi thanks": ["greet", "thank"],
    "thank you goodbye": ["thank", "bye"],
    "hello thanks": ["greet", "thank"],
}


def test_multi_label_head_threshold_is_tuned_stored_and_served(tmp_path: Path) -> None:
    rows = [{"text": t, "intents": i} for t, i in INTENT_TEXTS.items()]
    data = write_jsonl(tmp_path / "multi", rows * 3, rows)
    trained = train_folder("slots", data, SlotTrainConfig(**TINY, epochs=30), tmp_path / "m")
    assert trained.artifact is not None
    manifest = json.loads((trained.artifact / "manifest.json").read_text())
    assert manifest["model_config"]["multi_label"] is True
    threshold = manifest["model_config"]["intent_threshold"]
    assert threshold in THRESHOLDS
    predictor = load_artifact(trained.artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    assert predictor.model.config.intent_threshold == threshold
    parse = predictor.parse(["hello and goodbye"])[0]
    assert {name for name, _ in parse.intents} == {"greet", "bye"}
    assert [c for _, c in parse.intents] == sorted((c for _, c in parse.intents), reverse=True)
    assert parse.intent_ranking[0] == parse.intents[0]
    assert all(c >= threshold for _, c in parse.intents)
    scores = trained.result.metrics
    assert scores["intent_f1"] == 1.0 and scores["intent_exact_match"] == 1.0


def test_bio_hash_labels_are_one_intent_unless_multi_label(tmp_path: Path) -> None:
    for split in ("train", "valid"):
        folder = tmp_path / "bio" / split
        folder.mkdir(parents=True)
        (folder / "seq.in").write_text("fares to boston\nflights to boston\n")
        (folder / "seq.out").write_text("O O B-city\nO O B-city\n")
        (folder / "label").write_text("airfare#flight\nflight\n")
    one = SlotTrainConfig(**TINY, epochs=1)
    single = train_folder("slots", tmp_path / "bio", one, tmp_path / "single").result.predictor
    assert isinstance(single, SlotTaggerPredictor)
    assert single.intents.labels == ["airfare#flight", "flight"]
    assert not single.model.config.multi_label
    # Label attention and token votes by default on a single-label head, not on a
    # multi-label one.
    assert single.model.config.intent_label_attention
    assert single.model.config.intent_token_votes
    many = SlotTrainConfig(**TINY, epochs=1, intent_mode="multi_label")
    multi = train_folder("slots", tmp_path / "bio", many, tmp_path / "multi").result.predictor
    assert isinstance(multi, SlotTaggerPredictor)
    assert multi.intents.labels == ["airfare", "flight"]
    assert multi.model.config.multi_label
    assert not multi.model.config.intent_label_attention
    assert not multi.model.config.intent_token_votes


def test_bare_answers_teach_the_context_to_a_tagger_that_saw_only_sentences(
    tmp_path: Path,
) -> None:
    # Training holds only sentences that name their slot in words, as often after the other
    # question as after their own ("for 4 people" after "what time?"), so the context alone
    # tells nothing there; valid asks for bare numbers, which only the context can read.
    people = [("for {} people", 4, "people"), ("a table for {} please", 12, "people")]
    times = [("at {} pm", 3, "time"), ("around {} tonight", 7, "time")]
    train = [
        {
            "text": pattern.format(n),
            "spans": [{"start": at, "end": at + len(str(n)), "slot": slot}],
            "context": {"requested_slots": [asked]},
        }
        for n in range(1, 25)
        for pattern, at, slot in people + times
        for asked in ("people", "time")
    ]
    valid = [number(n, slot, True) for n in (3, 8, 30) for slot in ("time", "people")]
    data = write_jsonl(tmp_path / "sentences", train, valid)
    config = SlotTrainConfig(**TINY, epochs=25, patience=25, bare_answers=True)
    trained = train_folder("slots", data, config, tmp_path / "answers")
    predictor = trained.result.predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    for text in ("5", "12"):
        assert slots_of(predictor, text, ["time"]) == ["time"]
        assert slots_of(predictor, text, ["people"]) == ["people"]
