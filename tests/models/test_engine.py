"""The NumPy engine (``SLOTFILL_ENGINE=numpy``) computes what the torch networks compute: the
same outputs for every architecture the manifest can describe, the same tags, scores and
confidences on a valid split, and the setting reaches the served predictors."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import torch

import models.engine as engine_module
from app.config import Settings
from app.serving.registry import ModelRegistry
from models import native
from models.artifact import load_artifact
from models.engine import NumpySentiment, NumpyTagger, for_engine
from models.features import encode_tokens
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.sentiment import LSTMSentimentClassifier, SentimentConfig
from models.slot_tagger import BiLSTMCRFTagger, TaggerConfig
from training.data import read_slot_folder
from training.tagging import as_tagging
from training.tagging_eval import evaluate_tagging

# The numpy engine against torch to float32 rounding: the artifact's own weights.
pytestmark = pytest.mark.usefixtures("float32_weights")

VERSION = "20260101T000000000000Z"
SENTENCES = [
    text.split()
    for text in (
        "book a table for two at 7pm",
        "Fly from St. Louis to d.c. ?",
        "x",
        "what is the weather like in paris tomorrow morning , please tell me",
        "supercalifragilisticexpialidociously long",  # longer than MAX_WORD_CHARS
    )
]
WORDS = sorted({w.lower() for s in SENTENCES for w in s})
CHARS = sorted({c for w in WORDS for c in w})


def _encode(sentences: list[list[str]], vocab_size: int) -> Any:
    from models.vocab import Vocab

    return encode_tokens(sentences, Vocab(WORDS[: vocab_size - 2]), Vocab(CHARS))


def _padded_one(vocab_size: int) -> Any:
    """A batch of one sentence ("x") padded to the longest of SENTENCES, as a row cut from a
    padded batch would come."""
    from models.features import TokenBatch

    whole = _encode(SENTENCES, vocab_size)
    row = slice(2, 3)
    return TokenBatch(
        whole.token_ids[row], whole.char_ids[row], whole.shape_ids[row], whole.mask[row]
    )


ARCHITECTURES: list[dict[str, Any]] = [
    {"cell": "lstm"},
    {"cell": "gru"},
    {"cell": "irnn"},
    {"cell": "lstm", "num_layers": 2},
    {"cell": "gru", "num_layers": 2, "char_filters": 0, "shape_dim": 0},
    {"cell": "lstm", "pretrained_dim": 6, "trained_words": 5},
    {"cell": "lstm", "num_requested": 3, "multi_label": True},
    {"cell": "lstm", "num_intents": 0},
    # The intent head's direct paths (issue 19), with words known only from the vectors.
    {"cell": "lstm", "pretrained_dim": 6, "trained_words": 5, "intent_wide_buckets": 7},
    {"cell": "gru", "intent_label_attention": True, "intent_wide_buckets": 3},
    {"cell": "lstm", "intent_token_votes": True},
]


def _random(module: torch.nn.Module) -> None:
    """Random weights everywhere, buffers (pretrained vectors) included: nothing is 0 or 1 by
    chance of initialisation (an identity IRNN would hide a transposed matrix)."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.dtype.is_floating_point:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.5)
    module.eval()


@pytest.mark.parametrize("fold_bytes", [engine_module.FOLD_BYTES, 1])
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: "-".join(map(str, a.values())))
def test_tagger_outputs_match_torch(
    arch: dict[str, Any], fold_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fold_bytes=1: no word's projection is precomputed, every id takes the other path
    monkeypatch.setattr(engine_module, "FOLD_BYTES", fold_bytes)
    arch = dict(arch)
    config = TaggerConfig(
        vocab_size=len(WORDS) + 2,
        char_vocab_size=len(CHARS) + 2,
        word_dim=7,
        char_dim=5,
        char_filters=arch.pop("char_filters", 6),
        shape_dim=arch.pop("shape_dim", 3),
        hidden_size=9,
        num_tags=5,
        num_intents=arch.pop("num_intents", 4),
        **arch,
    )
    model = BiLSTMCRFTagger(config)
    _random(model)
    engine = NumpyTagger(model)
    # The whole (ragged) batch, two sentences of the same length (no padding: the
    # engine's unsorted path), each sentence alone (batch 1) and a batch of one with padding.
    for sentences in [SENTENCES, SENTENCES[:2], *([s] for s in SENTENCES), None]:
        batch = (
            _padded_one(config.vocab_size)
            if sentences is None
            else _encode(sentences, config.vocab_size)
        )
        sentences = sentences or [SENTENCES[2]]
        if config.num_requested:
            batch = batch.with_requested([[b % 3] for b in range(len(sentences))], 3)
        with torch.inference_mode():
            want_em, want_logits = model(batch)
        got_em, got_logits = engine(batch)
        mask = batch.mask.unsqueeze(2)
        assert got_em.shape == want_em.shape and got_logits.shape == want_logits.shape
        torch.testing.assert_close(got_em * mask, want_em * mask, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got_logits, want_logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "irnn"])
def test_batch_paths_agree(cell: str) -> None:
    """A sentence's outputs are the same alone (batch 1), in an equal-length batch (no
    padding) and in a ragged batch (packed order): the engine's three recurrent paths."""
    config = TaggerConfig(
        vocab_size=len(WORDS) + 2, char_vocab_size=len(CHARS) + 2, word_dim=7, char_dim=5,
        char_filters=6, shape_dim=3, hidden_size=9, num_tags=5, num_intents=4, cell=cell,
    )  # fmt: skip
    model = BiLSTMCRFTagger(config)
    _random(model)
    engine = NumpyTagger(model)
    ragged = engine.arrays(_encode(SENTENCES, config.vocab_size))
    equal = engine.arrays(_encode(SENTENCES[:2], config.vocab_size))
    for i, sentence in enumerate(SENTENCES):
        emissions, logits = engine.arrays(_encode([sentence], config.vocab_size))
        n = len(sentence)
        np.testing.assert_allclose(ragged[0][i, :n], emissions[0], atol=1e-6, rtol=1e-5)
        np.testing.assert_allclose(ragged[1][i], logits[0], atol=1e-6, rtol=1e-5)
        if i < 2:
            np.testing.assert_allclose(equal[0][i], emissions[0], atol=1e-6, rtol=1e-5)
            np.testing.assert_allclose(equal[1][i], logits[0], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cache_bytes", [engine_module.TOKEN_CACHE_BYTES, 1])
def test_token_cache_keeps_the_outputs(cache_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # cache_bytes=1: room for one token, so the cache starts over at each new token
    monkeypatch.setattr(engine_module, "TOKEN_CACHE_BYTES", cache_bytes)
    config = TaggerConfig(
        vocab_size=len(WORDS) + 2, char_vocab_size=len(CHARS) + 2, word_dim=7, char_dim=5,
        char_filters=6, shape_dim=3, hidden_size=9, num_tags=5, num_intents=4,
    )  # fmt: skip
    model = BiLSTMCRFTagger(config)
    _random(model)
    engine = NumpyTagger(model)
    batches = [[s] for s in SENTENCES] + [SENTENCES, [SENTENCES[1], SENTENCES[1]]]
    first = [engine.arrays(_encode(s, config.vocab_size)) for s in batches]
    known, table = engine.embedder.cache
    assert 0 < len(known) <= len(table)
    for sentences, (emissions, logits) in zip(batches, first, strict=True):
        batch = _encode(sentences, config.vocab_size)
        with torch.inference_mode():
            want_em, want_logits = model(batch)
        got_em, got_logits = engine(batch)  # known tokens now come from the cache
        mask = batch.mask.unsqueeze(2)
        torch.testing.assert_close(got_em * mask, want_em * mask, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got_logits, want_logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got_em, torch.from_numpy(emissions), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(got_logits, torch.from_numpy(logits), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    "cell,wide_buckets", [("lstm", 0), ("gru", 0), ("irnn", 0), ("lstm", 11), ("gru", 1)]
)
def test_sentiment_outputs_match_torch(cell: str, wide_buckets: int) -> None:
    config = SentimentConfig(
        vocab_size=len(WORDS) + 2,
        char_vocab_size=len(CHARS) + 2,
        word_dim=7,
        char_dim=5,
        char_filters=6,
        shape_dim=3,
        hidden_size=9,
        num_labels=3,
        cell=cell,
        wide_buckets=wide_buckets,
    )
    model = LSTMSentimentClassifier(config)
    _random(model)
    engine = NumpySentiment(model)
    for sentences in [SENTENCES, SENTENCES[:2], *([s] for s in SENTENCES), None]:
        batch = (
            _padded_one(config.vocab_size)
            if sentences is None
            else _encode(sentences, config.vocab_size)
        )
        with torch.inference_mode():
            want = model(batch)
        torch.testing.assert_close(engine(batch), want, atol=1e-5, rtol=1e-5)


def _tagger(path: Path) -> SlotTaggerPredictor:
    predictor = load_artifact(path).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    return predictor


def test_trained_tagger_parses_as_torch(tiny_tagger_dir: Path, test_data_dir: Path) -> None:
    """The serving rule: the same tags on >= 99.5% of valid utterances, slot F1 and intent
    accuracy within 0.002, every confidence within 1e-4."""
    torch_tagger = _tagger(tiny_tagger_dir)
    numpy_tagger = for_engine(torch_tagger, "numpy")
    assert isinstance(numpy_tagger.net, NumpyTagger) and torch_tagger.net is torch_tagger.model
    valid = as_tagging(read_slot_folder(test_data_dir / "tiny_slots" / "valid"))
    (t_scores, t_pred), (n_scores, n_pred) = (
        evaluate_tagging(p, valid) for p in (torch_tagger, numpy_tagger)
    )
    same = sum(a == b for a, b in zip(t_pred["tags"], n_pred["tags"], strict=True))
    assert same >= 0.995 * len(valid)
    assert abs(t_scores["slot_f1"] - n_scores["slot_f1"]) <= 0.002
    assert abs(t_scores["intent_accuracy"] - n_scores["intent_accuracy"]) <= 0.002
    texts = [" ".join(tokens) for tokens in valid.tokens] + ["Book a table for 2 at 7:30pm!"]
    for batch in ([texts], [[t] for t in texts]):
        for chunk in batch:
            for want, got in zip(
                torch_tagger.parse(chunk, n_best=3),
                numpy_tagger.parse(chunk, n_best=3),
                strict=True,
            ):
                assert got.tags == want.tags
                assert [n for n, _ in got.intent_ranking] == [n for n, _ in want.intent_ranking]
                for (_, p), (_, q) in zip(got.intent_ranking, want.intent_ranking, strict=True):
                    assert p == pytest.approx(q, abs=1e-4)
                assert [(s.slot, s.start, s.end) for s in got.slots] == [
                    (s.slot, s.start, s.end) for s in want.slots
                ]
                for s, w in zip(got.slots, want.slots, strict=True):
                    assert s.confidence == pytest.approx(w.confidence, abs=1e-4)
                for hyp, ref in zip(got.hypotheses, want.hypotheses, strict=True):
                    assert hyp.probability == pytest.approx(ref.probability, abs=1e-4)


def test_trained_sentiment_classifies_as_torch(tiny_sentiment_dir: Path) -> None:
    torch_model = load_artifact(tiny_sentiment_dir).predictor
    assert isinstance(torch_model, SentimentPredictor)
    numpy_model = for_engine(torch_model, "numpy")
    texts = ["I love this airline!!!", "worst. flight. ever.", "ok", "the food was fine :)"]
    for chunk in ([texts], [[t] for t in texts]):
        for batch in chunk:
            for want, got in zip(
                torch_model.classify(batch), numpy_model.classify(batch), strict=True
            ):
                assert got.label == want.label
                for label, p in want.scores.items():
                    assert got.scores[label] == pytest.approx(p, abs=1e-4)


def test_the_setting_selects_the_engine(
    tiny_tagger_dir: Path,
    tiny_sentiment_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SLOTFILL_ENGINE", "SLOTFILL_QUANTIZE"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().engine == "numpy"
    monkeypatch.setenv("SLOTFILL_ENGINE", "torch")
    assert Settings().engine == "torch"
    monkeypatch.setenv("SLOTFILL_ENGINE", "numpy")
    monkeypatch.setenv("SLOTFILL_QUANTIZE", "int8")
    with pytest.raises(pydantic.ValidationError, match="SLOTFILL_ENGINE=torch"):
        Settings()
    shutil.copytree(tiny_tagger_dir, tmp_path / "tiny" / VERSION)
    shutil.copytree(tiny_sentiment_dir, tmp_path / "feel" / VERSION)
    served = {}
    for engine in ("torch", "numpy"):
        registry = ModelRegistry(tmp_path, "tiny", ["tiny"], "feel", engine=engine)
        registry.load_all()
        sentiment = registry.sentiment()
        assert sentiment is not None
        served[engine] = (registry.get("tiny").tagger, sentiment.classifier)
    assert served["torch"][0].net is served["torch"][0].model
    assert isinstance(served["numpy"][0].net, NumpyTagger)
    assert isinstance(served["numpy"][1].net, NumpySentiment)
    text = "book a table for two at 7pm"
    assert served["numpy"][0].parse([text])[0].tags == served["torch"][0].parse([text])[0].tags
    assert for_engine(served["torch"][0], "torch") is served["torch"][0]


@pytest.mark.slow
def test_half_weights_tag_as_the_float_model_on_the_valid_split(
    tiny_train_config: dict[str, Any], test_data_dir: Path, tmp_path: Path
) -> None:
    """``SLOTFILL_RECURRENT_WEIGHTS=float16`` against the float32 torch model, by the serving
    rule: the same tags on >= 99.5% of valid utterances, slot F1 and intent accuracy within
    0.002. Trained to convergence, as the int8 check (tests/models/test_quantize.py): the
    shared 3-epoch tagger's near-ties say nothing of a served model. On ATIS valid:
    ``benchmarks.inference --recurrent float16``."""
    from training.config import SlotTrainConfig
    from training.pipeline import train_folder

    config = SlotTrainConfig(**(tiny_train_config | {"epochs": 25, "patience": 25}))
    train_folder("slots", test_data_dir / "tiny_slots", config, tmp_path / "tagger")
    floats = _tagger(tmp_path / "tagger")
    halves = for_engine(floats, "numpy")
    valid = as_tagging(read_slot_folder(test_data_dir / "tiny_slots" / "valid"))
    f_scores, f_pred = evaluate_tagging(floats, valid)
    for kernels in ("native", "numpy"):
        native.select(kernels, "float16")  # type: ignore[arg-type]
        h_scores, h_pred = evaluate_tagging(halves, valid)
        same = sum(a == b for a, b in zip(f_pred["tags"], h_pred["tags"], strict=True))
        assert same >= 0.995 * len(valid), kernels
        assert abs(f_scores["slot_f1"] - h_scores["slot_f1"]) <= 0.002
        assert abs(f_scores["intent_accuracy"] - h_scores["intent_accuracy"]) <= 0.002
    batch = halves.encode_arrays([["book", "a", "table", "for", "two"]])
    native.select("native", "float32")
    singles = halves.outputs(batch)[0]
    native.select("native", "float16")
    assert not np.array_equal(halves.outputs(batch)[0], singles)  # the halves were read
