"""Fixtures shared by every test directory.

``tiny_tagger_dir`` and ``tiny_sentiment_dir`` are real artifacts (``manifest.json`` +
``model.safetensors``) trained once per session from ``tests/data/`` with tiny settings
(hidden size 16, 3 epochs, one thread: about a second each). They are shared: treat them as
read-only and copy one (``shutil.copytree``) before corrupting it. The tiny tagger does
predict some slots (e.g. ``party_size`` for "two" in "book a table for two at 7pm"), but
its scores mean nothing beyond "a trained model loads and runs".

Torch runs single-threaded (``OMP_NUM_THREADS=1`` unless set): the tensors in tests are tiny,
and on a busy machine thread hand-offs made small CRF calls 40 times slower.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before anything imports torch

TEST_DATA = Path(__file__).resolve().parent / "data"

# Small and fast on one core; lr is high so that 3 epochs learn something.
TINY_TRAIN_CONFIG: dict[str, Any] = {
    "epochs": 3,
    "hidden_size": 16,
    "word_dim": 16,
    "char_dim": 8,
    "char_filters": 8,
    "batch_size": 8,
    "lr": 0.02,
    "threads": 1,
    "device": "cpu",
    "seed": 13,
}


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    """``tests/data``: ``tiny_slots/``, ``tiny_sentiment/``, ``malformed/``."""
    return TEST_DATA


@pytest.fixture(scope="session")
def tiny_tagger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact directory (task ``slots``) of a tagger trained on ``tests/data/tiny_slots``."""
    from training.config import SlotTrainConfig
    from training.data import read_slot_folder
    from training.loop import fit_tagger, save_fit

    data = TEST_DATA / "tiny_slots"
    config = SlotTrainConfig(**TINY_TRAIN_CONFIG)
    train, valid = read_slot_folder(data / "train"), read_slot_folder(data / "valid")
    result = fit_tagger(train, valid, config, show_progress=False)
    out = tmp_path_factory.mktemp("artifacts") / "tiny_tagger"
    return save_fit(out, "slots", result, config, {"name": "tiny_slots"})


@pytest.fixture(scope="session")
def tiny_sentiment_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact directory (task ``sentiment``) trained on ``tests/data/tiny_sentiment``."""
    from training.config import SentimentTrainConfig
    from training.data import read_tsv
    from training.loop import fit_sentiment, save_fit

    data = TEST_DATA / "tiny_sentiment"
    config = SentimentTrainConfig(**TINY_TRAIN_CONFIG)
    train, valid = read_tsv(data / "train.tsv"), read_tsv(data / "valid.tsv")
    result = fit_sentiment(train, valid, config, show_progress=False)
    out = tmp_path_factory.mktemp("artifacts") / "tiny_sentiment"
    return save_fit(out, "sentiment", result, config, {"name": "tiny_sentiment"})
