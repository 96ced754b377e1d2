"""The demo models, as ``slotfill bootstrap`` trains them, on hand-made everyday utterances.

``tests/data/demo_expectations.jsonl`` was written by hand, not generated from the demo
templates (``data/demo/README.md``, "Hand-made check set"): per line the text, its intent,
its slots (name and exact text) and its sentiment. A newcomer's first ``make run`` should
get at least 90% of each right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from models.artifact import load_artifact
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.text import word_tokens

REPO = Path(__file__).resolve().parents[2]
EXPECTATIONS = REPO / "tests" / "data" / "demo_expectations.jsonl"
DEMO = REPO / "data" / "demo"
TARGET = 0.9


@dataclass(frozen=True)
class Expected:
    text: str
    intent: str
    slots: frozenset[tuple[str, str]]
    sentiment: str


@dataclass(frozen=True)
class Scores:
    intent: float
    slots: float
    sentiment: float
    misses: list[str]


def read_expectations(path: Path = EXPECTATIONS) -> list[Expected]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [
        Expected(r["text"], r["intent"], frozenset((s, v) for s, v in r["slots"]), r["sentiment"])
        for r in rows
    ]


def words(text: str) -> tuple[str, ...]:
    """``text`` as lower-case words, punctuation dropped."""
    return tuple(t.text.lower() for t in word_tokens(text))


def score(tagger: Path, sentiment: Path, expected: list[Expected]) -> Scores:
    """Intent accuracy, slot exact match (every expected slot with its exact text, nothing
    else) and sentiment accuracy over ``expected``, and a line per miss."""
    tag_model = load_artifact(tagger).predictor
    sent_model = load_artifact(sentiment).predictor
    assert isinstance(tag_model, SlotTaggerPredictor)
    assert isinstance(sent_model, SentimentPredictor)
    texts = [e.text for e in expected]
    parses = tag_model.parse(texts)
    moods = sent_model.classify(texts)
    hits = {"intent": 0, "slots": 0, "sentiment": 0}
    misses: list[str] = []
    for e, parse, mood in zip(expected, parses, moods, strict=True):
        intent = parse.intent_ranking[0][0]
        slots = frozenset((s.slot, s.value) for s in parse.slots)
        hits["intent"] += intent == e.intent
        hits["slots"] += slots == e.slots
        hits["sentiment"] += mood.label == e.sentiment
        if intent != e.intent:
            misses.append(f"intent {intent} != {e.intent}: {e.text}")
        if slots != e.slots:
            misses.append(f"slots {sorted(slots)} != {sorted(e.slots)}: {e.text}")
        if mood.label != e.sentiment:
            misses.append(f"sentiment {mood.label} != {e.sentiment}: {e.text}")
    n = len(expected)
    return Scores(hits["intent"] / n, hits["slots"] / n, hits["sentiment"] / n, misses)


def test_expectations_are_hand_made_and_well_formed() -> None:
    expected = read_expectations()
    assert len(expected) >= 100
    assert len({e.text.lower() for e in expected}) == len(expected)
    intents = set((DEMO / "train" / "label").read_text(encoding="utf-8").split())
    slot_names = {t[2:] for t in (DEMO / "train" / "seq.out").read_text().split() if t != "O"}
    # None of them is in the demo data (compared as lower-case words, punctuation dropped):
    # they test generalisation, not memory. Set phrases of one or two words ("Hi", "thank
    # you!") are what any greeting or thanks list holds, so they may be.
    seen = {
        words(line)
        for path in (DEMO / "train" / "seq.in", DEMO / "valid" / "seq.in")
        for line in path.read_text(encoding="utf-8").splitlines()
    }
    for split in ("train.tsv", "valid.tsv"):
        lines = (DEMO / "sentiment" / split).read_text(encoding="utf-8").splitlines()[1:]
        seen |= {words(line.rsplit("\t", 1)[0]) for line in lines}
    for e in expected:
        assert e.intent in intents, e
        assert e.sentiment in {"negative", "neutral", "positive"}, e
        assert all(s in slot_names and v in e.text for s, v in e.slots), e
        assert len(words(e.text)) <= 2 or words(e.text) not in seen, e


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store holding the demo models, trained by ``slotfill bootstrap`` as
    ``make run`` trains them."""
    store = tmp_path_factory.mktemp("demo_store")
    env = {
        **os.environ,
        "SLOTFILL_MODEL_STORE": str(store),
        "SLOTFILL_DEMO_DATA_DIR": str(DEMO),
        "SLOTFILL_DEFAULT_MODEL": "demo",
        "SLOTFILL_SENTIMENT_MODEL": "demo-sentiment",
    }
    command = [sys.executable, "-m", "slotfill.cli", "bootstrap"]
    run = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # Both models trained (side by side when there are two cores), each telling its epochs.
    for name in ("demo", "demo-sentiment"):
        assert f"{name}: training the demo" in run.stdout
        assert f"{name}: epoch 1/" in run.stderr, run.stderr
        assert f"{name}: saved " in run.stdout
        assert len(list((store / name).iterdir())) == 1
    again = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already in") == 2 and "epoch" not in again.stderr
    return store


@pytest.mark.slow
@pytest.mark.timeout(1200)  # bootstrap: about 80 s of CPU, minutes of wall time on a busy machine
def test_demo_models_get_everyday_utterances_right(demo_store: Path) -> None:
    tagger = next((demo_store / "demo").iterdir())
    sentiment = next((demo_store / "demo-sentiment").iterdir())
    scores = score(tagger, sentiment, read_expectations())
    report = "\n".join(scores.misses)
    assert scores.intent >= TARGET, report
    assert scores.slots >= TARGET, report
    assert scores.sentiment >= TARGET, report
