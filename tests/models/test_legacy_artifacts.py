"""Artifacts written by an earlier slotfill load and answer as they did then: same tokens, tags,
intent ranking, slots and sentiment, floats within 1e-6.

Trained weights are build outputs, not kept in git: the fixture checks out the older commit
from the repository's history, trains tiny artifacts with *its* code and records what *its*
predictors answer, then today's code loads the same artifacts and must answer the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.artifact import MANIFEST, load_artifact, load_manifest
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from training.data import read_slot_folder, read_tsv
from training.evaluate import evaluate_sentiment, evaluate_tagger

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LEGACY_COMMIT = "934f3eea492a867d6d2b8908e512a48a96b96bbe"  # before issue 13 reshaped the code
TEXTS: dict[str, list[str]] = json.loads(
    (REPO / "tests" / "data" / "legacy_artifacts" / "texts.json").read_text(encoding="utf-8")
)
TINY = {
    "epochs": 3, "hidden_size": 16, "word_dim": 16, "char_dim": 8, "char_filters": 8,
    "batch_size": 8, "lr": 0.02, "threads": 1, "device": "cpu", "seed": 13,
    "ema_decay": None, "pretrained_words": 200,
}  # fmt: skip
# Run by the older commit's code: what its predictors answer.
OLD_ANSWERS = """
import json, sys
from pathlib import Path
from models.artifact import load_artifact
texts = json.loads(Path(sys.argv[3]).read_text())
tagger = load_artifact(Path(sys.argv[1])).predictor
feeling = load_artifact(Path(sys.argv[2])).predictor
print(json.dumps({
    "slots_v1": [
        {"text": t, "tokens": [[k.text, k.start, k.end] for k in p.tokens], "tags": p.tags,
         "intent_ranking": [[n, c] for n, c in p.intent_ranking],
         "slots": [vars(s) for s in p.slots]}
        for t, p in zip(texts["slots_v1"], tagger.parse(texts["slots_v1"]))],
    "sentiment_v1": [
        {"text": t, "label": r.label, "confidence": r.confidence, "scores": r.scores}
        for t, r in zip(texts["sentiment_v1"], feeling.classify(texts["sentiment_v1"]))],
}))
"""


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Artifacts trained by the older commit's code, and its predictors' answers."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{LEGACY_COMMIT}^{{commit}}"],
        capture_output=True,
    )
    if found.returncode != 0:
        pytest.skip(f"commit {LEGACY_COMMIT[:7]} is not in this clone's history")
    root = tmp_path_factory.mktemp("legacy")
    old, store = root / "code", root / "store"
    old.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", LEGACY_COMMIT], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    (root / "tiny.json").write_text(json.dumps(TINY))
    (root / "texts.json").write_text(json.dumps(TEXTS))
    env = os.environ | {"PYTHONPATH": str(old)}
    for task, data in (("slots", "tiny_slots"), ("sentiment", "tiny_sentiment")):
        out = store / f"{task}_v1"
        subprocess.run(
            [sys.executable, "-m", "slotfill.cli", "train", task, "--data", f"tests/data/{data}",
             "--out", str(out), "--config", str(root / "tiny.json"), "--progress", "none"],
            cwd=old, env=env, check=True, capture_output=True,
        )  # fmt: skip
    answers = subprocess.run(
        [sys.executable, "-c", OLD_ANSWERS, str(store / "slots_v1"),
         str(store / "sentiment_v1"), str(root / "texts.json")],
        cwd=old, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return store, json.loads(answers.stdout)


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


def test_legacy_tagger_answers_as_it_did(
    legacy: tuple[Path, dict[str, Any]], test_data_dir: Path
) -> None:
    store, answers = legacy
    artifact = load_artifact(store / "slots_v1")
    predictor = artifact.predictor
    assert artifact.task == "slots" and isinstance(predictor, SlotTaggerPredictor)
    want = answers["slots_v1"]
    assert want and any(row["slots"] for row in want)
    assert_close(tagger_answers(predictor, [row["text"] for row in want]), want)
    valid = read_slot_folder(test_data_dir / "tiny_slots" / "valid")
    scores = evaluate_tagger(predictor, valid)[0]
    recorded = artifact.manifest.valid_metrics  # scored by the older code at training time
    assert_close({k: scores[k] for k in recorded}, recorded)


def test_legacy_sentiment_answers_as_it_did(
    legacy: tuple[Path, dict[str, Any]], test_data_dir: Path
) -> None:
    store, answers = legacy
    artifact = load_artifact(store / "sentiment_v1")
    predictor = artifact.predictor
    assert artifact.task == "sentiment" and isinstance(predictor, SentimentPredictor)
    want = answers["sentiment_v1"]
    texts = [row["text"] for row in want]
    got = [
        {"text": text, "label": r.label, "confidence": r.confidence, "scores": r.scores}
        for text, r in zip(texts, predictor.classify(texts), strict=True)
    ]
    assert_close(got, want)
    valid = read_tsv(test_data_dir / "tiny_sentiment" / "valid.tsv")
    scores, _ = evaluate_sentiment(predictor, valid)
    recorded = artifact.manifest.valid_metrics
    assert_close({k: scores[k] for k in recorded}, recorded)


def test_legacy_manifests_parse_to_what_is_on_disk(legacy: tuple[Path, dict[str, Any]]) -> None:
    store, _ = legacy
    for name in ("slots_v1", "sentiment_v1"):
        on_disk = json.loads((store / name / MANIFEST).read_text(encoding="utf-8"))
        manifest = load_manifest(store / name)
        written = manifest.to_dict()  # fields added since have their defaults
        assert {key: written[key] for key in on_disk} == on_disk
        assert manifest.task == on_disk["task"]
        assert manifest.valid_metrics == on_disk["metrics"]["valid"]
