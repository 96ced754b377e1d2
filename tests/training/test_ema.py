"""The weight average: its arithmetic, and that it swaps in and out without leaking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from training.ema import WeightAverage


def _model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def test_update_moves_the_average_by_one_minus_decay() -> None:
    model = _model()
    average = WeightAverage(model, decay=0.9)
    average.steps = 1000  # past the warm-up, so the decay is exactly 0.9
    before = [s.clone() for s in average.shadow]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update()
    for old, new, p in zip(before, average.shadow, model.parameters(), strict=True):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * p.detach())


def test_warm_up_follows_the_first_steps_closely() -> None:
    model = _model()
    average = WeightAverage(model, decay=0.999)
    with torch.no_grad():
        model.weight.fill_(5.0)
    average.update()  # decay min(0.999, 2/11): the average moves most of the way
    assert float(average.shadow[0].mean()) > 3.0


def test_applied_swaps_the_average_in_and_restores_the_raw_weights() -> None:
    model = _model()
    average = WeightAverage(model, decay=0.5)
    raw = [p.detach().clone() for p in model.parameters()]
    for s in average.shadow:
        s.fill_(7.0)
    x = torch.ones(1, 3)
    with average.applied():
        assert torch.all(model.weight == 7.0)
        torch.testing.assert_close(model(x), torch.full((1, 2), 28.0))
    for p, r in zip(model.parameters(), raw, strict=True):
        assert torch.equal(p.detach(), r)


def test_applied_restores_the_raw_weights_after_an_error() -> None:
    model = _model()
    average = WeightAverage(model, decay=0.5)
    raw = model.weight.detach().clone()
    for s in average.shadow:
        s.zero_()
    with pytest.raises(RuntimeError), average.applied():
        raise RuntimeError("evaluation failed")
    assert torch.equal(model.weight.detach(), raw)


def test_fit_with_ema_keeps_the_averaged_weights_it_scored(
    test_data_dir: Path, tiny_train_config: dict[str, Any]
) -> None:
    """The stored valid metrics are those of the weights the model ends up with."""
    from training.config import SlotTrainConfig
    from training.data import read_slot_folder
    from training.evaluate import evaluate_tagger
    from training.loop import fit_tagger

    data = test_data_dir / "tiny_slots"
    train, valid = read_slot_folder(data / "train"), read_slot_folder(data / "valid")
    plain_config = SlotTrainConfig(**(tiny_train_config | {"ema_decay": None}))
    plain = fit_tagger(train, valid, plain_config, show_progress=False)
    config = SlotTrainConfig(**(tiny_train_config | {"ema_decay": 0.9}))
    result = fit_tagger(train, valid, config, show_progress=False)
    assert evaluate_tagger(result.predictor, valid)[0] == result.metrics  # type: ignore[arg-type]
    # Same seed and data: only the averaging differs, and it changes the weights kept.
    assert not torch.equal(
        plain.predictor.model.state_dict()["emit.weight"],
        result.predictor.model.state_dict()["emit.weight"],
    )
