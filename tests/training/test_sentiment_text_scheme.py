"""A sentiment model reads text at serving time as it was trained to (its ``text_scheme`` and
wide term travel in the artifact), and models from before the schemes keep reading it plainly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models.artifact import load_artifact
from models.engine import for_engine
from models.predictor import SentimentPredictor
from models.sentiment import LSTMSentimentClassifier, SentimentConfig
from models.text import sentiment_words
from training.config import SentimentTrainConfig
from training.evaluate import sentiment_inputs
from training.pipeline import train_folder

TEXTS = ["@united thanks!!! sooo good :-)", "My bag never showed up :( #fail", "Is UA212 on time?"]


@pytest.fixture(scope="module")
def tweet_model(tmp_path_factory: pytest.TempPathFactory, test_data_dir: Path) -> Path:
    from tests.conftest import TINY_TRAIN_CONFIG

    config: dict[str, Any] = {**TINY_TRAIN_CONFIG, "text_scheme": "tweet", "wide_buckets": 64}
    out = tmp_path_factory.mktemp("artifacts") / "tweet_sentiment"
    artifact = train_folder(
        "sentiment", test_data_dir / "tiny_sentiment", SentimentTrainConfig(**config), out
    ).artifact
    assert artifact is not None
    return artifact


def test_scheme_and_wide_term_are_stored_and_served(tweet_model: Path) -> None:
    artifact = load_artifact(tweet_model)
    predictor = artifact.predictor
    assert isinstance(predictor, SentimentPredictor)
    assert artifact.manifest.model_config["text_scheme"] == "tweet"
    assert artifact.manifest.model_config["wide_buckets"] == 64
    assert predictor.scheme == "tweet"
    # classify() tokenizes as training did: the same as the tweet words fed directly.
    want = predictor.classify_tokens(sentiment_inputs(TEXTS, "tweet"))
    assert predictor.classify(TEXTS) == want
    assert sentiment_words(TEXTS[0], "tweet") != sentiment_words(TEXTS[0])
    # The wide term is trained, and the NumPy engine adds it as torch does.
    model = predictor.model
    assert isinstance(model, LSTMSentimentClassifier)
    assert float(model.wide_bigrams.weight.detach().abs().sum()) > 0
    torch_free = load_artifact(tweet_model, engine="numpy").predictor
    assert isinstance(torch_free, SentimentPredictor)
    for engine in (for_engine(predictor, "numpy"), torch_free):
        for a, b in zip(want, engine.classify(TEXTS), strict=True):
            assert a.label == b.label
            assert all(abs(a.scores[k] - b.scores[k]) < 1e-5 for k in a.scores)


def test_a_manifest_without_the_new_fields_reads_plain_text() -> None:
    """Older manifests lack ``text_scheme`` and ``wide_buckets``: plain tokens, no wide term."""
    config = SentimentConfig(vocab_size=10, char_vocab_size=5, num_labels=3)
    model = LSTMSentimentClassifier(config)
    assert config.text_scheme == "plain" and config.wide_buckets == 0
    assert not any(name.startswith("wide") for name in model.state_dict())
    with pytest.raises(ValueError, match="text_scheme"):
        manifest_config: dict[str, Any] = {**config.to_dict(), "text_scheme": "emoji"}
        SentimentConfig(**manifest_config)
