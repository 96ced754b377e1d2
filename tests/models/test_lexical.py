"""The lexical intent model (models.lexical): serving reads it without scikit-learn and must
score as scikit-learn's fitted pipeline does; the artifact binds its files by checksum; a
tagger serves the blend its weight says."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import hstack  # type: ignore[import-untyped]
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from models.artifact import LEXICAL_INTENTS, load_artifact
from models.errors import ArtifactError
from models.joint import joint_logits
from models.lexical import LexicalIntents, char_ngrams, word_ngrams
from models.predictor import SlotTaggerPredictor
from training.config import SlotTrainConfig
from training.cv import cross_validate
from training.data import DataError
from training.lexical import fit_lexical_intents
from training.pipeline import train_folder
from training.tagging import TaggingSet

TRAIN = [
    ("book a table for two at 7pm", "book"),
    ("reserve a table tomorrow night", "book"),
    ("a table for four in denver please", "book"),
    ("my flight was cancelled again", "complain"),
    ("the  service was TERRIBLE", "complain"),
    ("i waited on hold for two hours", "complain"),
    ("hello there", "greet"),
    ("hi", "greet"),
    ("good morning to you", "greet"),
]
# Unseen words, a one-letter word, repeats, capitals, runs of spaces, accents, digits.
PROBES = [
    "book a TABLE table table",
    "x",
    "héllo   wörld 42",
    "cancelled cancelled flight to oslo",
    "zzz qqq",
]


def _set(rows: list[tuple[str, str]]) -> TaggingSet:
    tokens = [text.split() for text, _ in rows]
    return TaggingSet(
        tokens=tokens,
        tags=[["O"] * len(t) for t in tokens],
        intents=[(label,) for _, label in rows],
        requested=[() for _ in rows],
        source="test",
    )


def _sklearn_logits(texts: list[str], c: float = 10.0) -> tuple[np.ndarray, list[str]]:
    """The pipeline fitted with scikit-learn's own analyzers, independently of models.lexical."""
    train_texts = [" ".join(t.split()) for t, _ in TRAIN]
    words = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"\S+", sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    x = hstack([words.fit_transform(train_texts), chars.fit_transform(train_texts)]).tocsr()
    model = LogisticRegression(C=c, max_iter=3000).fit(x, [y for _, y in TRAIN])
    probe = hstack([words.transform(texts), chars.transform(texts)]).tocsr()
    return np.asarray(model.decision_function(probe)), [str(n) for n in model.classes_]


def test_the_analyzers_are_scikit_learns() -> None:
    words = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"\S+").build_analyzer()
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    for text in [*PROBES, *(t for t, _ in TRAIN), "a", "ab cd", " lead and trail "]:
        assert word_ngrams(text) == words(text)
        assert char_ngrams(text) == chars(text)


def test_the_logits_are_the_fitted_pipelines() -> None:
    # "Valid" with two labels the model gets wrong, so that a temperature is fitted.
    valid = [*TRAIN, ("a table please", "greet"), ("hello my flight", "book")]
    lexical = fit_lexical_intents(_set(TRAIN), _set(valid))
    assert lexical is not None
    want, labels = _sklearn_logits(PROBES)
    assert lexical.labels == labels
    np.testing.assert_allclose(lexical.logits(PROBES), want, rtol=1e-9, atol=1e-9)
    probs = lexical.probs(PROBES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert lexical.temperature > 1.0  # the two errors soften it


def test_two_intents_give_the_binary_models_probabilities() -> None:
    rows = [r for r in TRAIN if r[1] != "greet"]
    lexical = fit_lexical_intents(_set(rows), _set(rows))
    assert lexical is not None and lexical.labels == ["book", "complain"]
    texts = [" ".join(t.split()) for t, _ in rows]
    words = TfidfVectorizer(ngram_range=(1, 2), token_pattern=r"\S+", sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    x = hstack([words.fit_transform(texts), chars.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=10.0, max_iter=3000).fit(x, [y for _, y in rows])
    probe = hstack([words.transform(PROBES), chars.transform(PROBES)]).tocsr()
    lexical.temperature = 1.0
    np.testing.assert_allclose(lexical.probs(PROBES), model.predict_proba(probe), atol=1e-9)


def test_one_intent_fits_nothing() -> None:
    rows = [r for r in TRAIN if r[1] == "book"]
    assert fit_lexical_intents(_set(rows), _set(rows)) is None


def test_save_and_load_give_the_same_scores(tmp_path: Path) -> None:
    lexical = fit_lexical_intents(_set(TRAIN), _set(TRAIN))
    assert lexical is not None
    lexical.save(tmp_path)
    loaded = LexicalIntents.load(tmp_path)
    np.testing.assert_array_equal(loaded.logits(PROBES), lexical.logits(PROBES))
    assert loaded.temperature == lexical.temperature


def _config(**extra: object) -> SlotTrainConfig:
    values: dict[str, object] = {"epochs": 2, "hidden_size": 16, "threads": 1, "seed": 3}
    return SlotTrainConfig(pretrained_vectors="none", **(values | extra))


WEIGHT = 0.25


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, test_data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("lexical") / "artifact"
    config = _config(intent_lexical_weight=WEIGHT)
    trained = train_folder("slots", test_data_dir / "tiny_slots", config, out)
    assert trained.artifact is not None
    return trained.artifact


def test_a_tagger_serves_the_blend_its_weight_says(artifact: Path) -> None:
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["training"][LEXICAL_INTENTS]["weight"] == WEIGHT
    for engine in ("torch", "numpy"):
        predictor = load_artifact(artifact, engine=engine).predictor
        assert isinstance(predictor, SlotTaggerPredictor) and predictor.lexical is not None
        # The tiny intents' slot types, as a tagger trained on more examples records them,
        # so that the slots' fit is weighed on the blend.
        predictor.intent_slots = {"book_restaurant": ["date", "party_size", "time"], "greet": []}
        mask = predictor.joint_mask
        assert mask is not None
        texts = ["Book a table for 2 today!", "my flight was delayed", "hello world"]
        tokens = [[t.text for t in predictor.parse([x])[0].tokens] for x in texts]
        emissions, logits = predictor.outputs(predictor.encode_arrays(tokens))
        joined = [" ".join(t) for t in tokens]  # the tagger's tokens, as in training
        blend = WEIGHT * predictor._lexical_probs(joined)
        blend += (1 - WEIGHT) * predictor._intent_probs(logits)
        lengths, arrays = [len(t) for t in tokens], predictor._crf_arrays()
        fitted = joint_logits(np.log(blend), emissions, lengths, mask, 1.0, arrays)
        want = np.exp(fitted) / np.exp(fitted).sum(axis=1, keepdims=True)
        names = predictor.intents.labels
        served = [[dict(p.intent_ranking)[n] for n in names] for p in predictor.parse(texts)]
        np.testing.assert_allclose(served, want, rtol=0, atol=1e-9)
        assert not np.allclose(want, predictor._intent_probs(logits), atol=1e-3)


def test_the_default_writes_no_model(tmp_path: Path, test_data_dir: Path) -> None:
    config = _config(epochs=1)
    trained = train_folder("slots", test_data_dir / "tiny_slots", config, tmp_path / "a")
    assert trained.artifact is not None
    manifest = json.loads((trained.artifact / "manifest.json").read_text())
    assert LEXICAL_INTENTS not in manifest["training"]
    predictor = load_artifact(trained.artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor) and predictor.lexical is None


@pytest.mark.parametrize("name", ["lexical_intents.json", "lexical_intents.safetensors"])
def test_an_edited_or_missing_file_is_refused(artifact: Path, tmp_path: Path, name: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy)
    with (copy / name).open("ab") as fh:
        fh.write(b" ")
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact(copy)
    (copy / name).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(copy)


def test_attaching_checks_the_weight_and_the_intents(artifact: Path) -> None:
    predictor = load_artifact(artifact).predictor
    assert isinstance(predictor, SlotTaggerPredictor) and predictor.lexical is not None
    lexical = predictor.lexical
    for weight in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"weight is in \(0, 1\)"):
            predictor.attach_lexical(lexical, weight)
    stranger = dataclasses.replace(lexical, labels=["book_restaurant", "x", "y"])
    with pytest.raises(ValueError, match="lacks"):
        predictor.attach_lexical(stranger, 0.5)
    assert predictor.lexical is lexical and predictor.lexical_weight == WEIGHT


def test_several_intents_per_example_are_refused_before_training(tmp_path: Path) -> None:
    data = tmp_path / "multi"
    for split in ("train", "valid"):
        (data / split).mkdir(parents=True)
        (data / split / "seq.in").write_text("book a table\nhello\nbook and hello\n")
        (data / split / "seq.out").write_text("O O O\nO\nO O O\n")
        (data / split / "label").write_text("book\ngreet\nbook#greet\n")
    epochs: list[object] = []
    for mode in ("multi_label", "auto"):  # auto: a#b labels are one intent unless multi_label
        config = _config(epochs=1, intent_lexical_weight=0.25, intent_mode=mode)
        if mode == "auto":
            trained = train_folder("slots", data, config, tmp_path / "auto", on_epoch=epochs.append)
            assert trained.artifact is not None and epochs  # one intent "book#greet": served
            continue
        with pytest.raises(DataError, match="one intent per example"):
            train_folder("slots", data, config, tmp_path / mode, on_epoch=epochs.append)
        assert not epochs  # refused before the first epoch
    with pytest.raises(DataError, match="one intent per example"):
        cross_validate("slots", data, _config(intent_lexical_weight=0.25,
                                              intent_mode="multi_label"), folds=2)  # fmt: skip
