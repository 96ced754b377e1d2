"""Intent distillation from taggers of other seeds (issue 19, ``intent_teacher_seeds``): the
loss, the teachers' soft targets and their cache, and a student trained with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from models.predictor import SlotTaggerPredictor
from training.config import SlotTrainConfig
from training.formats import read_data
from training.loop import fit_tagger
from training.tagger_distill import cache_key, distill_loss, intent_logits, soft_targets
from training.tagging import TaggingSet, tagging_set


@pytest.fixture(scope="module")
def tiny(test_data_dir: Path) -> tuple[TaggingSet, TaggingSet]:
    splits = read_data(test_data_dir / "tiny_slots")
    return tagging_set(splits.train, "train"), tagging_set(splits.valid, "valid")


def config(base: dict[str, Any], tmp_path: Path, **more: Any) -> SlotTrainConfig:
    return SlotTrainConfig(**{**base, "distill_cache": str(tmp_path / "cache"), **more})


class Counted:
    """``fit_tagger``, counting the teachers it trains."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def __call__(
        self, train: TaggingSet, valid: TaggingSet, cfg: SlotTrainConfig
    ) -> SlotTaggerPredictor:
        self.seeds.append(cfg.seed)
        assert cfg.intent_teacher_seeds is None  # a teacher has no teachers
        predictor = fit_tagger(train, valid, cfg, show_progress=False).predictor
        assert isinstance(predictor, SlotTaggerPredictor)
        return predictor


def test_the_loss_is_zero_where_the_student_agrees_and_scales_with_t_squared() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    for t in (1.0, 2.0, 4.0):
        agree = torch.softmax(logits / t, dim=-1)
        assert distill_loss(logits, agree, t).item() == pytest.approx(0.0, abs=1e-6)
    targets = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    student = torch.log_softmax(logits / 2.0, dim=-1)
    kl = (targets * (targets.log() - student)).sum(dim=1).mean()
    assert distill_loss(logits, targets, 2.0).item() == pytest.approx(4.0 * kl.item(), rel=1e-5)


def test_teachers_train_once_and_their_mean_is_read_from_the_cache(
    tiny: tuple[TaggingSet, TaggingSet], tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    train, valid = tiny
    cfg = config(tiny_train_config, tmp_path, intent_teacher_seeds=[1, 2])
    intents = sorted({row[0] for row in train.intents})
    fit = Counted()
    first = soft_targets(train, valid, cfg, intents, fit)
    assert fit.seeds == [1, 2]
    assert first.shape == (len(train), len(intents))
    assert torch.allclose(first.sum(dim=1), torch.ones(len(train)))
    # Another student seed, weight or temperature: the same teachers, none trained again.
    again = config(
        tiny_train_config, tmp_path, intent_teacher_seeds=[1, 2], seed=5, distill_temperature=1.0
    )
    assert soft_targets(train, valid, again, intents, fit).shape == first.shape
    assert fit.seeds == [1, 2]
    # The mean of each teacher's own probabilities at the temperature.
    alone = [
        soft_targets(
            train, valid, cfg.model_copy(update={"intent_teacher_seeds": [s]}), intents, fit
        )
        for s in (1, 2)
    ]
    assert fit.seeds == [1, 2]
    assert torch.allclose(first, (alone[0] + alone[1]) / 2, atol=1e-6)
    assert not torch.allclose(alone[0], alone[1])  # two seeds, two teachers


def test_the_cache_key_follows_the_data_and_the_teacher_not_the_machine(
    tiny: tuple[TaggingSet, TaggingSet], tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    train, valid = tiny
    cfg = config(tiny_train_config, tmp_path)
    key = cache_key(train, valid, cfg)
    assert cache_key(train, valid, cfg.model_copy(update={"threads": 2})) == key
    assert cache_key(train, valid, cfg.model_copy(update={"seed": 14})) != key
    assert cache_key(train, valid, cfg.model_copy(update={"hidden_size": 32})) != key
    assert cache_key(valid, valid, cfg) != key


def test_a_damaged_cache_file_trains_the_teacher_again(
    tiny: tuple[TaggingSet, TaggingSet], tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    train, valid = tiny
    cfg = config(tiny_train_config, tmp_path, intent_teacher_seeds=[1])
    intents = sorted({row[0] for row in train.intents})
    fit = Counted()
    first = soft_targets(train, valid, cfg, intents, fit)
    [kept] = (tmp_path / "cache").glob("tagger-*.npz")
    kept.write_bytes(b"not an npz file")
    assert torch.allclose(soft_targets(train, valid, cfg, intents, fit), first)
    assert fit.seeds == [1, 1]


def test_a_student_with_weight_zero_is_the_tagger_trained_without_teachers(
    tiny: tuple[TaggingSet, TaggingSet], tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    """The teachers train first and the student then draws as it would without them."""
    train, valid = tiny
    plain = fit_tagger(train, valid, config(tiny_train_config, tmp_path), show_progress=False)
    zero = config(tiny_train_config, tmp_path, intent_teacher_seeds=[1], distill_weight=0.0)
    silent = fit_tagger(train, valid, zero, show_progress=False)
    taught = config(tiny_train_config, tmp_path, intent_teacher_seeds=[1], distill_weight=0.9)
    student = fit_tagger(train, valid, taught, show_progress=False)
    outputs = [
        intent_logits(fit.predictor, train)  # type: ignore[arg-type]
        for fit in (plain, silent, student)
    ]
    assert np.allclose(outputs[0], outputs[1])
    assert not np.allclose(outputs[0], outputs[2])


def test_teacher_epochs_are_reported_as_the_teachers(
    tiny: tuple[TaggingSet, TaggingSet], tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    train, valid = tiny
    records: list[dict[str, Any]] = []
    cfg = config(tiny_train_config, tmp_path, intent_teacher_seeds=[1, 2])
    fit_tagger(train, valid, cfg, records.append, show_progress=False)
    epochs = tiny_train_config["epochs"]
    assert [r.get("model") for r in records] == ["teacher"] * 2 * epochs + [None] * epochs


def test_teachers_are_for_single_label_intents() -> None:
    with pytest.raises(ValidationError, match="single-label"):
        SlotTrainConfig(intent_teacher_seeds=[1], intent_mode="multi_label")
    assert SlotTrainConfig(intent_teacher_seeds=3).intent_teacher_seeds == [3]  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SlotTrainConfig(intent_teacher_seeds=[])
