"""Sentiment training with an auxiliary data set (``auxiliary_data``): its text trains the
shared encoder through a head of its own, and that head is not saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from models.artifact import load_artifact
from models.sentiment import LSTMSentimentClassifier
from training.config import SentimentTrainConfig
from training.data import DataError, TextDataset, read_tsv
from training.loop import fit_sentiment
from training.pipeline import train_folder

# Labels of their own, and words that the main data never has.
AUXILIARY = TextDataset(
    [
        "a luminous , heartfelt picture",
        "luminous and wise",
        "a tedious , plodding mess",
        "plodding and tedious from start to end",
    ]
    * 4,
    ["pos", "pos", "neg", "neg"] * 4,
    "auxiliary",
)


def _luminous_row(data: Path, config: dict[str, Any], weight: float) -> torch.Tensor:
    """The trained embedding of "luminous", a word of the auxiliary data only."""
    settings = config | {"auxiliary_weight": weight, "weight_decay": 0.0, "epochs": 1}
    predictor = fit_sentiment(
        read_tsv(data / "train.tsv"),
        read_tsv(data / "valid.tsv"),
        SentimentTrainConfig(**settings),
        show_progress=False,
        auxiliary=AUXILIARY,
    ).predictor
    index = predictor.words.stoi["luminous"]
    model = predictor.model
    assert isinstance(model, LSTMSentimentClassifier)
    return model.embedder.words.weight[index].detach().clone()


def test_the_auxiliary_loss_reaches_the_shared_encoder(
    test_data_dir: Path, tiny_train_config: dict[str, Any]
) -> None:
    data = test_data_dir / "tiny_sentiment"
    config = tiny_train_config | {"pretrained_vectors": "none"}
    # Same seed and vocabulary, so the same initial row. Without weight decay, only a
    # gradient of the auxiliary loss can move it: weighted 0 it stays where it started.
    silent = _luminous_row(data, config, 0.0)
    heard = _luminous_row(data, config, 1.0)
    assert not torch.equal(heard, silent)
    assert torch.equal(_luminous_row(data, config, 0.0), silent)  # the rest is deterministic


def _write_tsv(path: Path, rows: TextDataset) -> None:
    path.mkdir(parents=True, exist_ok=True)
    lines = ["text\tlabel", *(f"{t}\t{y}" for t, y in zip(rows.texts, rows.labels, strict=True))]
    (path / "train.tsv").write_text("\n".join(lines) + "\n")


def test_the_artifact_keeps_only_the_main_labels_and_no_auxiliary_head(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    _write_tsv(tmp_path / "aux", AUXILIARY)
    config = SentimentTrainConfig(
        **(tiny_train_config | {"auxiliary_data": str(tmp_path / "aux"), "epochs": 1})
    )
    trained = train_folder("sentiment", test_data_dir / "tiny_sentiment", config, tmp_path / "m")
    assert trained.artifact is not None
    loaded = load_artifact(trained.artifact)
    model = loaded.predictor.model
    assert isinstance(model, LSTMSentimentClassifier)
    assert not [k for k in model.state_dict() if k.startswith("head.")]
    assert loaded.predictor.labels.to_list() == ["negative", "neutral", "positive"]
    assert loaded.manifest.training["config"]["auxiliary_data"] == str(tmp_path / "aux")
    (result,) = loaded.predictor.classify(["thanks so much, great crew"])
    assert set(result.scores) == {"negative", "neutral", "positive"}


def test_a_missing_auxiliary_folder_is_a_data_error(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    config = SentimentTrainConfig(**(tiny_train_config | {"auxiliary_data": str(tmp_path)}))
    with pytest.raises(DataError, match=r"train\.tsv"):
        train_folder("sentiment", test_data_dir / "tiny_sentiment", config, tmp_path / "m")
    assert not (tmp_path / "m").exists()
