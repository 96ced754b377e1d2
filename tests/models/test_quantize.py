"""Serving a tagger with int8 weights (``SLOTFILL_QUANTIZE=int8``): the same answers as the
float model on a valid split, and the setting reaches the served model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from app.config import Settings
from app.serving.registry import ModelRegistry
from models.artifact import load_artifact
from models.predictor import SlotTaggerPredictor
from models.quantize import for_serving, quantized_tagger
from training.config import SlotTrainConfig
from training.data import read_slot_folder
from training.pipeline import train_folder
from training.tagging import as_tagging
from training.tagging_eval import evaluate_tagging

VERSION = "20260101T000000000000Z"


def _tagger(path: Path) -> SlotTaggerPredictor:
    predictor = load_artifact(path).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    return predictor


@pytest.mark.slow
def test_int8_tags_as_the_float_model_on_the_valid_split(
    tiny_train_config: dict[str, Any], test_data_dir: Path, tmp_path: Path
) -> None:
    # Trained to convergence: the shared 3-epoch tagger has near-ties between tags that any
    # change of rounding flips (int8 changed 1 of its 20 valid labellings), which says
    # nothing of a served model. On ATIS: benchmarks.profile_parse --quantize int8.
    config = SlotTrainConfig(**(tiny_train_config | {"epochs": 25, "patience": 25}))
    train_folder("slots", test_data_dir / "tiny_slots", config, tmp_path / "tagger")
    floats = _tagger(tmp_path / "tagger")
    before = {k: v.clone() for k, v in floats.model.state_dict().items()}
    int8 = quantized_tagger(floats)
    assert not isinstance(int8.model.rnn, nn.LSTM)  # swapped for the int8 module
    assert not isinstance(int8.model.emit, nn.Linear)
    for key, value in floats.model.state_dict().items():  # the float model is untouched
        assert torch.equal(value, before[key]), key
    valid = as_tagging(read_slot_folder(test_data_dir / "tiny_slots" / "valid"))
    (f_scores, f_pred), (q_scores, q_pred) = (evaluate_tagging(p, valid) for p in (floats, int8))
    same = sum(a == b for a, b in zip(f_pred["tags"], q_pred["tags"], strict=True))
    assert same >= 0.995 * len(valid)
    assert abs(f_scores["slot_f1"] - q_scores["slot_f1"]) <= 0.002
    assert abs(f_scores["intent_accuracy"] - q_scores["intent_accuracy"]) <= 0.002


def test_the_setting_selects_the_served_weights(
    tiny_tagger_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLOTFILL_QUANTIZE", raising=False)
    assert Settings().quantize == "none"
    monkeypatch.setenv("SLOTFILL_QUANTIZE", "int8")
    monkeypatch.setenv("SLOTFILL_ENGINE", "torch")  # int8 is a torch model
    assert Settings().quantize == "int8"
    shutil.copytree(tiny_tagger_dir, tmp_path / "tiny" / VERSION)
    served = {}
    for mode in ("none", "int8"):
        registry = ModelRegistry(tmp_path, "tiny", [], None, quantize=mode)
        registry.load_all()
        served[mode] = registry.get("tiny").tagger
    assert isinstance(served["none"].model.rnn, nn.LSTM)
    assert not isinstance(served["int8"].model.rnn, nn.LSTM)
    text = "book a table for two at 7pm"
    assert served["int8"].parse([text])[0].tags == served["none"].parse([text])[0].tags
    assert for_serving(served["none"], "none") is served["none"]
