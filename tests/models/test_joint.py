"""The joint reading of intents and slots (models.joint): the fit against brute force, and a
tagger that reads them together."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.artifact import ArtifactError, load_artifact
from models.crf import CRFArrays, bio_allowed
from models.engine import for_engine
from models.joint import (
    intent_slots_of,
    intent_tag_mask,
    joint_logits,
    log_fits,
)
from models.predictor import SlotTaggerPredictor, bio_spans
from training.config import SlotTrainConfig
from training.formats import read_data
from training.loop import fit_tagger
from training.tagging import tagging_set

TAGS = ["O", "B-a", "I-a", "B-b", "I-b"]
# The tiny intents' slot types (tests/data/tiny_slots), as conftest's joint_tagger_dir has them.
TINY_INTENT_SLOTS = {
    "book_restaurant": ["date", "party_size", "time"],
    "complaint": ["issue", "to_city"],
    "greet": [],
}
TEXTS = [
    "book a table for two at 7pm tomorrow",
    "my flight to denver was cancelled again",
    "hello there",
    "a table for four in denver at 8pm",
]


def random_crf(seed: int) -> tuple[CRFArrays, np.ndarray]:
    rng = np.random.default_rng(seed)
    allowed = bio_allowed(TAGS)
    arrays = CRFArrays.constrained(
        rng.normal(size=5).astype(np.float32),
        rng.normal(size=(5, 5)).astype(np.float32),
        rng.normal(size=5).astype(np.float32),
        allowed,
    )
    return arrays, rng.normal(size=(3, 4, 5)).astype(np.float32) * 2


def brute_log_fit(em: np.ndarray, arrays: CRFArrays, allowed: np.ndarray) -> float:
    """log of the share of the CRF's probability on tag sequences within ``allowed``, by
    enumerating every sequence (forbidden transitions score -1e4: no mass)."""
    total, inside = 0.0, 0.0
    for path in itertools.product(range(len(TAGS)), repeat=em.shape[0]):
        score = arrays.start[path[0]] + arrays.end[path[-1]]
        score += sum(float(em[t, k]) for t, k in enumerate(path))
        score += sum(arrays.transitions[a, b] for a, b in itertools.pairwise(path))
        weight = math.exp(score)
        total += weight
        if all(allowed[k] for k in path):
            inside += weight
    return math.log(inside / total) if inside > 0 else -math.inf


@pytest.mark.parametrize("seed", range(8))
def test_log_fits_equal_brute_force(seed: int) -> None:
    arrays, emissions = random_crf(seed)
    lengths = [4, 1, 3]
    masks = np.array(
        [
            [True, True, True, False, False],  # a only
            [True, False, False, True, True],  # b only
            [True, False, False, False, False],  # no slot at all
        ]
    )
    rows = [b for b in range(3) for _ in masks]
    got = log_fits(emissions, rows, lengths, np.concatenate([masks] * 3), arrays)
    for j, (b, mask) in enumerate(zip(rows, itertools.cycle(masks), strict=False)):
        want = brute_log_fit(emissions[b, : lengths[b]], arrays, mask)
        assert got[j] == pytest.approx(want, abs=1e-9)


def test_slots_of_intents_and_their_tags() -> None:
    slots = intent_slots_of(
        [("book",), ("book",), ("greet",), ("book", "greet")],
        [["B-a", "O"], ["B-b", "I-b"], ["O"], ["B-c"]],
    )
    # "book" takes every type: not listed; the multi-intent example is not counted
    assert slots == {"greet": []}
    assert intent_slots_of([("book",), ("book",), ("greet",)], [["B-a"], ["B-b"], ["O"]], 2) == {}
    # "a" and "b" are in one example each: too rare elsewhere to keep from "greet"
    assert (
        intent_slots_of([("book",), ("book",), ("greet",)], [["B-a"], ["B-b"], ["O"]], 1, 2) == {}
    )
    mask = intent_tag_mask(["book", "greet", "new"], TAGS, {**slots, "book": ["a"]})
    assert mask.tolist() == [
        [True, True, True, False, False],
        [True, False, False, False, False],
        [True] * 5,  # an intent without a record keeps every tag
    ]


def test_joint_logits_add_the_weighted_fit_to_the_candidates() -> None:
    arrays, emissions = random_crf(3)
    lengths = [4, 2, 3]
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    logits = np.array([[0.0, -1.0], [0.0, -20.0], [2.0, 0.5]])
    out = joint_logits(logits, emissions, lengths, mask, 2.0, arrays)
    fits = log_fits(emissions, [0, 2], lengths, mask[[1, 1]], arrays)
    assert out[:, 0].tolist() == logits[:, 0].tolist()  # every tag allowed: F = 1
    assert out[[0, 2], 1] == pytest.approx(logits[[0, 2], 1] + 2.0 * fits)
    assert out[1, 1] == logits[1, 1]  # below the candidate ratio: not weighed


def test_training_records_the_slot_types_of_intents_with_enough_examples(
    tiny_train_config: dict[str, Any], test_data_dir: Path
) -> None:
    splits = read_data(test_data_dir / "tiny_slots", None, False)
    train, valid = tagging_set(splits.train, "train"), tagging_set(splits.valid, "valid")
    # 25 book_restaurant, 20 complaint, 15 greet examples
    book = {"book_restaurant": TINY_INTENT_SLOTS["book_restaurant"]}
    weights: list[dict[str, torch.Tensor]] = []
    for least, elsewhere, want in (
        (1, 1, TINY_INTENT_SLOTS),
        (21, 1, book),
        (1000, 1, {}),
        (1, 100, {}),
    ):
        config = SlotTrainConfig(
            **tiny_train_config | {"epochs": 1},
            intent_slot_min_examples=least,
            intent_slot_min_elsewhere=elsewhere,
        )
        predictor = fit_tagger(train, valid, config, show_progress=False).predictor
        assert isinstance(predictor, SlotTaggerPredictor)
        assert predictor.intent_slots == want
        assert (predictor.joint_mask is None) == (len(want) == 0)
        weights.append(predictor.model.state_dict())
    # Early stopping reads intents and slots apart: the thresholds change no weight.
    assert all(torch.equal(w[k], weights[0][k]) for w in weights[1:] for k in weights[0])


def test_the_joint_parse_keeps_slots_within_its_intent(joint_tagger_dir: Path) -> None:
    predictor = load_artifact(joint_tagger_dir, engine="numpy").predictor
    assert isinstance(predictor, SlotTaggerPredictor) and predictor.joint_mask is not None
    parses = predictor.parse(TEXTS, n_best=3)
    tags, rankings = predictor.tag_tokens([[t.text for t in p.tokens] for p in parses])
    for parse, row_tags, ranking in zip(parses, tags, rankings, strict=True):
        intent = parse.intent_ranking[0][0]
        kinds = set(predictor.intent_slots[intent])
        assert {s.slot for s in parse.slots} <= kinds
        assert {s.slot for h in parse.hypotheses[:1] for s in h.slots} <= kinds
        assert parse.tags == row_tags  # the evaluation path reads the same
        assert [n for n, _ in parse.intent_ranking] == [n for n, _ in ranking]
        assert sum(p for _, p in parse.intent_ranking) == pytest.approx(1.0)


def test_a_mixed_utterance_takes_slots_of_its_intent_only(
    tiny_tagger_dir: Path, joint_tagger_dir: Path
) -> None:
    """Slots of two intents in one utterance: the joint parse drops those of the other."""
    joint = load_artifact(joint_tagger_dir, engine="numpy").predictor
    apart = load_artifact(tiny_tagger_dir, engine="numpy").predictor  # the same weights
    assert isinstance(joint, SlotTaggerPredictor) and isinstance(apart, SlotTaggerPredictor)
    text = ["book a table for two at 7pm and my flight to denver was cancelled"]
    found = {s.slot for s in apart.parse(text)[0].slots}
    assert all(found - set(slots) for slots in joint.intent_slots.values()), (
        f"the plain parse should hold slots of two intents, not {found}"
    )
    read = joint.parse(text)[0]
    assert {s.slot for s in read.slots} <= set(joint.intent_slots[read.intent_ranking[0][0]])


def test_off_reads_as_before(tiny_tagger_dir: Path, joint_tagger_dir: Path) -> None:
    """No intent slot types (older artifacts, or intents with too few examples): the parse
    of a tagger that reads intents and slots apart."""
    off = load_artifact(tiny_tagger_dir).predictor
    assert isinstance(off, SlotTaggerPredictor) and off.joint_mask is None
    old = load_artifact(joint_tagger_dir).predictor
    assert isinstance(old, SlotTaggerPredictor)
    old.intent_slots = {}
    assert old.joint_mask is None
    weightless = load_artifact(joint_tagger_dir).predictor
    assert isinstance(weightless, SlotTaggerPredictor) and weightless.joint_mask is not None
    weightless.config = type(weightless.config)(
        **weightless.config.to_dict() | {"intent_slot_fit": 0.0}
    )
    assert weightless.joint_mask is None
    assert weightless.parse(TEXTS, n_best=2) == off.parse(TEXTS, n_best=2)
    assert old.parse(TEXTS, n_best=2) == off.parse(TEXTS, n_best=2)


def test_engines_agree_on_the_joint_parse(joint_tagger_dir: Path) -> None:
    torch_p = load_artifact(joint_tagger_dir).predictor
    assert isinstance(torch_p, SlotTaggerPredictor)
    numpy_p = for_engine(torch_p, "numpy")
    for a, b in zip(torch_p.parse(TEXTS), numpy_p.parse(TEXTS), strict=True):
        assert a.tags == b.tags
        assert [n for n, _ in a.intent_ranking] == [n for n, _ in b.intent_ranking]
        for (_, pa), (_, pb) in zip(a.intent_ranking, b.intent_ranking, strict=True):
            assert pa == pytest.approx(pb, abs=1e-4)


def test_temperatures_move_joint_confidences_not_answers(
    joint_tagger_dir: Path, tmp_path: Path
) -> None:
    hot_dir = Path(shutil.copytree(joint_tagger_dir, tmp_path / "hot"))
    manifest = json.loads((hot_dir / "manifest.json").read_text())
    manifest["temperatures"] = {"intent": 3.0, "spans": 3.0}
    (hot_dir / "manifest.json").write_text(json.dumps(manifest))
    plain, hot = load_artifact(joint_tagger_dir).predictor, load_artifact(hot_dir).predictor
    assert isinstance(plain, SlotTaggerPredictor) and isinstance(hot, SlotTaggerPredictor)
    for a, b in zip(plain.parse(TEXTS), hot.parse(TEXTS), strict=True):
        assert a.tags == b.tags
        assert [n for n, _ in a.intent_ranking] == [n for n, _ in b.intent_ranking]
        assert b.intent_ranking[0][1] < a.intent_ranking[0][1]


def test_bad_intent_slots_fail_to_load(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(tiny_tagger_dir, tmp_path / "bad"))
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["intent_slots"] = {"greet": "time"}
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="intent_slots"):
        load_artifact(bad)


def test_bio_spans_of_a_joint_path_are_whole(joint_tagger_dir: Path) -> None:
    """A row decoded again within its intent's types is still valid BIO."""
    predictor = load_artifact(joint_tagger_dir).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    for parse in predictor.parse(TEXTS):
        spans = bio_spans(parse.tags)
        assert all(parse.tags[s.first] == f"B-{s.slot}" for s in spans)


def test_the_intent_odds_are_the_heads_times_the_fit(joint_tagger_dir: Path) -> None:
    """p'(i) / p'(j) = exp((logit_i + log F_i - logit_j - log F_j) / T) for the weighed
    intents, with F from brute-force-checked log_fits; some F must be well below 1."""
    p = load_artifact(joint_tagger_dir, engine="numpy").predictor
    assert isinstance(p, SlotTaggerPredictor) and p.joint_mask is not None
    parses = p.parse(TEXTS)
    em, logits = p.outputs(p.encode_arrays([[t.text for t in x.tokens] for x in parses]))
    lengths = [len(x.tokens) for x in parses]
    mask, names, temperature = p.joint_mask, p.intents.labels, p.temperatures.intent
    lowest = 0.0
    for b, parse in enumerate(parses):
        served = dict(parse.intent_ranking)
        fits = log_fits(em, [b] * len(names), lengths, mask, p._crf_arrays())
        scores = logits[b] + fits
        top = int(np.argmax(scores))
        for i, name in enumerate(names):
            if served[name] < 1e-3 * served[names[top]]:
                continue  # below the candidate ratio: not weighed
            odds = math.exp((scores[i] - scores[top]) / temperature)
            assert served[name] / served[names[top]] == pytest.approx(odds, rel=1e-6)
            lowest = min(lowest, float(fits[i]))
    assert lowest < -0.5
