"""Artifacts written by an earlier slotfill (``tests/data/legacy_artifacts``) load and answer
as they did then: same tokens, tags, intent ranking, slots and sentiment, floats within 1e-6."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from models.artifact import MANIFEST, load_artifact, load_manifest
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from training.data import read_slot_folder, read_tsv
from training.evaluate import evaluate_sentiment, evaluate_tagger

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_artifacts"
ANSWERS: dict[str, Any] = json.loads((LEGACY / "answers.json").read_text(encoding="utf-8"))


def assert_close(got: object, want: object, where: str = "") -> None:
    """Equal structure and strings; numbers within 1e-6."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, abs=1e-6), where
    else:
        assert got == want, where


def tagger_answers(predictor: SlotTaggerPredictor, texts: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "text": text,
            "tokens": [[t.text, t.start, t.end] for t in parse.tokens],
            "tags": parse.tags,
            "intent_ranking": [[name, conf] for name, conf in parse.intent_ranking],
            # ``canonical`` came later; a legacy artifact has no synonyms to fill it
            "slots": [{k: v for k, v in vars(s).items() if k != "canonical"} for s in parse.slots],
        }
        for text, parse in zip(texts, predictor.parse(texts), strict=True)
    ]


def test_legacy_tagger_answers_as_it_did(test_data_dir: Path) -> None:
    artifact = load_artifact(LEGACY / "slots_v1")
    predictor = artifact.predictor
    assert artifact.task == "slots" and isinstance(predictor, SlotTaggerPredictor)
    want = ANSWERS["slots_v1"]
    assert_close(tagger_answers(predictor, [row["text"] for row in want]), want)
    valid = read_slot_folder(test_data_dir / "tiny_slots" / "valid")
    assert_close(evaluate_tagger(predictor, valid)[0], ANSWERS["valid_scores"]["slots_v1"])


def test_legacy_sentiment_answers_as_it_did(test_data_dir: Path) -> None:
    artifact = load_artifact(LEGACY / "sentiment_v1")
    predictor = artifact.predictor
    assert artifact.task == "sentiment" and isinstance(predictor, SentimentPredictor)
    want = ANSWERS["sentiment_v1"]
    texts = [row["text"] for row in want]
    got = [
        {"text": text, "label": r.label, "confidence": r.confidence, "scores": r.scores}
        for text, r in zip(texts, predictor.classify(texts), strict=True)
    ]
    assert_close(got, want)
    valid = read_tsv(test_data_dir / "tiny_sentiment" / "valid.tsv")
    scores, _ = evaluate_sentiment(predictor, valid)
    assert_close(scores, ANSWERS["valid_scores"]["sentiment_v1"])


def test_legacy_manifests_parse_to_what_is_on_disk() -> None:
    for name in ("slots_v1", "sentiment_v1"):
        on_disk = json.loads((LEGACY / name / MANIFEST).read_text(encoding="utf-8"))
        manifest = load_manifest(LEGACY / name)
        written = manifest.to_dict()  # fields added since have their defaults
        assert {key: written[key] for key in on_disk} == on_disk
        assert manifest.task == on_disk["task"]
        assert manifest.valid_metrics == on_disk["metrics"]["valid"]
