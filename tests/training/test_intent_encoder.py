"""A tagger whose intents come from a fine-tuned encoder (``intent_encoder``): one artifact
holding both, loaded on either engine, the classifier's answer in every parse, and bound to
the tagger by its checksum."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from tiny_bert import write_encoder

from models.artifact import INTENT_CLASSIFIER, load_artifact
from models.errors import ArtifactError
from models.joint import joint_logits
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.vocab import LabelSet
from training.config import SlotTrainConfig
from training.cv import cross_validate
from training.data import DataError
from training.intent_encoder import intent_texts
from training.pipeline import train_folder
from training.tagging import TaggingSet

TEXTS = ["reserve a table for 2 today", "my flight was delayed", "hello world"]


def _config(encoder: Path, **extra: object) -> SlotTrainConfig:
    values: dict[str, object] = {"epochs": 2, "hidden_size": 16, "threads": 1, "seed": 3}
    values |= {"pretrained_vectors": "none", "intent_encoder_weight": 1.0, **extra}
    return SlotTrainConfig(intent_encoder=str(encoder), **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, test_data_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("intent_encoder")
    write_encoder(root / "encoder")
    trained = train_folder(
        "slots", test_data_dir / "tiny_slots", _config(root / "encoder"), root / "artifact"
    )
    assert trained.artifact is not None
    shutil.rmtree(root / "encoder")  # the artifact must not need the encoder folder
    return trained.artifact


def _classifier(predictor: SlotTaggerPredictor) -> SentimentPredictor:
    assert predictor.intent_classifier is not None
    return predictor.intent_classifier


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_parses_take_their_intents_from_the_classifier(artifact: Path, engine: str) -> None:
    predictor = load_artifact(artifact, engine=engine).predictor  # type: ignore[arg-type]
    assert isinstance(predictor, SlotTaggerPredictor)
    expected = _classifier(predictor).classify(TEXTS)
    own_head = predictor._intent_probs(predictor.outputs(predictor.encode_arrays(
        [t.split() for t in TEXTS]))[1])  # fmt: skip
    parses = predictor.parse(TEXTS)
    for parse, want in zip(parses, expected, strict=True):
        ranking = dict(parse.intent_ranking)
        assert parse.intent_ranking[0][0] == want.label
        for name, p in want.scores.items():
            assert ranking[name] == pytest.approx(p, abs=1e-9)
    # Not the tagger's own head: its probabilities differ (trained apart, two epochs).
    served = np.array([[dict(p.intent_ranking)[n] for n in predictor.intents.labels]
                       for p in parses])  # fmt: skip
    assert not np.allclose(served, own_head, atol=1e-3)
    # The evaluation path (pre-tokenised) gives the same intents.
    _, rankings = predictor.tag_tokens([t.split() for t in TEXTS])
    assert [r[0][0] for r in rankings] == [w.label for w in expected]


def test_both_engines_agree(artifact: Path) -> None:
    torch_p = load_artifact(artifact).predictor
    numpy_p = load_artifact(artifact, engine="numpy").predictor
    assert isinstance(torch_p, SlotTaggerPredictor) and isinstance(numpy_p, SlotTaggerPredictor)
    for a, b in zip(torch_p.parse(TEXTS), numpy_p.parse(TEXTS), strict=True):
        assert a.intent_ranking[0][0] == b.intent_ranking[0][0]
        assert a.intent_ranking[0][1] == pytest.approx(b.intent_ranking[0][1], abs=1e-5)


def test_the_manifest_binds_the_classifier_and_the_valid_scores_are_served_ones(
    artifact: Path,
) -> None:
    manifest = json.loads((artifact / "manifest.json").read_text())
    part = json.loads((artifact / INTENT_CLASSIFIER / "manifest.json").read_text())
    record = manifest["training"][INTENT_CLASSIFIER]
    assert record == {
        "path": INTENT_CLASSIFIER,
        "weights_sha256": part["weights_sha256"],
        "weight": 1.0,
    }
    assert part["task"] == "sentiment"
    assert part["labels"]["sentiment"] == manifest["labels"]["intents"]
    assert "pretrained_encoder" in part["training"]  # where its weights came from


def test_a_swapped_classifier_is_refused(artifact: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["training"][INTENT_CLASSIFIER]["weights_sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    for engine in ("torch", "numpy"):
        with pytest.raises(ArtifactError, match="not the intent classifier trained here"):
            load_artifact(copy, engine=engine)  # type: ignore[arg-type]
    shutil.rmtree(copy / INTENT_CLASSIFIER)
    with pytest.raises(ArtifactError, match="no such artifact directory"):
        load_artifact(copy)


def test_a_classifier_of_other_intents_cannot_be_attached(artifact: Path) -> None:
    predictor = load_artifact(artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    classifier = _classifier(predictor)
    classifier.labels = LabelSet(["not_an_intent", *classifier.labels.labels[1:]])
    with pytest.raises(ValueError, match="intents the tagger lacks"):
        predictor.attach_intent_classifier(classifier)


def test_multi_label_intents_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="single-label"):
        _config(tmp_path, intent_mode="multi_label")
    data = TaggingSet([["a", "b"]], [["O", "O"]], [("x", "y")], [()], "two intents")
    with pytest.raises(DataError, match="exactly one intent per example"):
        intent_texts(data, "x")


@pytest.mark.slow
def test_cross_validation_scores_the_classifier(tmp_path: Path, test_data_dir: Path) -> None:
    write_encoder(tmp_path / "encoder")
    config = _config(tmp_path / "encoder", epochs=1)
    result = cross_validate("slots", test_data_dir / "tiny_slots", config, folds=2, only_folds=[1])
    [run] = result["runs"]
    assert 0.0 <= run["intent_accuracy"] <= 1.0
    assert run["slot_f1"] is not None


def test_an_int8_tagger_keeps_its_intent_classifier(artifact: Path) -> None:
    from models.quantize import quantized_tagger

    predictor = load_artifact(artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    quantized = quantized_tagger(predictor)
    assert quantized.intent_classifier is predictor.intent_classifier
    want = [p.intent_ranking[0] for p in predictor.parse(TEXTS)]
    assert [p.intent_ranking[0] for p in quantized.parse(TEXTS)] == want


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_a_text_the_encoder_reads_as_nothing_still_gets_an_intent(
    artifact: Path, engine: str
) -> None:
    # A lone combining accent is a token to the tagger; BERT's normaliser strips it.
    predictor = load_artifact(artifact, engine=engine).predictor  # type: ignore[arg-type]
    assert isinstance(predictor, SlotTaggerPredictor)
    assert _classifier(predictor).inputs(["\u0301"]) == [[]]
    [parse] = predictor.parse(["\u0301"])
    assert sum(p for _, p in parse.intent_ranking) == pytest.approx(1.0)


def test_a_blend_weighs_the_classifier_against_the_head(artifact: Path) -> None:
    predictor = load_artifact(artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    classifier = _classifier(predictor)
    enc = predictor._classifier_probs(TEXTS)
    logits = predictor.outputs(predictor.encode_arrays([t.split() for t in TEXTS]))[1]
    head = predictor._intent_probs(logits)
    predictor.attach_intent_classifier(classifier, 0.75)
    for parse, e, h in zip(predictor.parse(TEXTS), enc, head, strict=True):
        ranking = dict(parse.intent_ranking)
        for j, name in enumerate(predictor.intents.labels):
            assert ranking[name] == pytest.approx(0.75 * e[j] + 0.25 * h[j], abs=1e-9)
    with pytest.raises(ValueError, match=r"weight is in \(0, 1\]"):
        predictor.attach_intent_classifier(classifier, 0.0)


def test_the_slots_fit_is_weighed_on_the_whole_blend(artifact: Path) -> None:
    """With the joint reading on, a blend adds the slots' fit to its own log-probabilities
    (``w * log F``, models.joint), where inside the head's logits the fit would count only
    by the head's share of the blend."""
    predictor = load_artifact(artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    predictor.attach_intent_classifier(_classifier(predictor), 0.75)
    # The tiny intents' slot types, as a tagger trained on more examples records them.
    predictor.intent_slots = {"book_restaurant": ["date", "party_size", "time"], "greet": []}
    mask = predictor.joint_mask
    assert mask is not None and predictor.config.intent_slot_fit == 1.0
    texts = [*TEXTS, "book a table for two at 7pm tomorrow", "a table in denver at 8pm"]
    tokens = [t.split() for t in texts]
    emissions, logits = predictor.outputs(predictor.encode_arrays(tokens))
    lengths = [len(t) for t in tokens]
    blend = 0.75 * predictor._classifier_probs(texts) + 0.25 * predictor._intent_probs(logits)
    fitted = joint_logits(np.log(blend), emissions, lengths, mask, 1.0, predictor._crf_arrays())
    assert np.abs(fitted - np.log(blend)).max() > 0.1  # some fit well below 1
    expected = np.exp(fitted) / np.exp(fitted).sum(axis=1, keepdims=True)
    for parse, want in zip(predictor.parse(texts), expected, strict=True):
        ranking = dict(parse.intent_ranking)
        for j, name in enumerate(predictor.intents.labels):
            assert ranking[name] == pytest.approx(want[j], abs=1e-9)


def test_the_weight_is_stored_and_loaded(tmp_path: Path, test_data_dir: Path) -> None:
    write_encoder(tmp_path / "encoder")
    config = _config(tmp_path / "encoder", epochs=1, intent_encoder_weight=0.5)
    trained = train_folder("slots", test_data_dir / "tiny_slots", config, tmp_path / "a")
    assert trained.artifact is not None
    manifest = json.loads((trained.artifact / "manifest.json").read_text())
    assert manifest["training"][INTENT_CLASSIFIER]["weight"] == 0.5
    for engine in ("torch", "numpy"):
        loaded = load_artifact(trained.artifact, engine=engine).predictor  # type: ignore[arg-type]
        assert isinstance(loaded, SlotTaggerPredictor)
        assert loaded.intent_classifier_weight == 0.5
