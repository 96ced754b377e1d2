"""training.adversarial: FGM on the token representations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from training.adversarial import EmbeddingAdversary
from training.config import SentimentTrainConfig
from training.data import read_tsv
from training.loop import fit_sentiment


class _Toy(nn.Module):
    """Embedding -> mean over tokens -> linear: small enough to check by hand."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedder = nn.Embedding(10, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, ids: Tensor) -> Tensor:
        return self.out(self.embedder(ids).mean(dim=1))


IDS = torch.tensor([[1, 2, 3], [4, 5, 6]])
TARGET = torch.tensor([0, 2])


def _loss(model: _Toy) -> Tensor:
    return nn.functional.cross_entropy(model(IDS), TARGET, reduction="sum")


def test_the_second_pass_sees_representations_moved_epsilon_along_the_gradient() -> None:
    model = _Toy()
    seen: list[Tensor] = []
    model.out.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    with EmbeddingAdversary(model.embedder, 0.5) as adversary:
        total = adversary.loss(lambda: _loss(model))
    clean = model.embedder(IDS).detach()
    emb = clean.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(
        nn.functional.cross_entropy(model.out(emb.mean(dim=1)), TARGET, reduction="sum"), emb
    )
    delta = 0.5 * grad / grad.flatten(1).norm(dim=1)[:, None, None]
    assert torch.allclose(seen[0], clean.mean(dim=1))
    assert torch.allclose(seen[1], (clean + delta).mean(dim=1), atol=1e-6)
    assert delta.flatten(1).norm(dim=1).tolist() == pytest.approx([0.5, 0.5])
    with torch.no_grad():
        plain = float(_loss(model))
        perturbed = float(nn.functional.cross_entropy(model.out(seen[1]), TARGET, reduction="sum"))
    assert float(total.detach()) == pytest.approx(plain + perturbed, rel=1e-6)
    assert perturbed > plain  # the gradient's direction hurts


def test_epsilon_zero_is_the_plain_loss_and_a_closed_adversary_leaves_no_hook() -> None:
    model = _Toy()
    calls: list[int] = []

    def compute() -> Tensor:
        calls.append(1)
        return _loss(model)

    assert torch.equal(EmbeddingAdversary(model.embedder, 0.0).loss(compute), _loss(model))
    assert len(calls) == 1
    adversary = EmbeddingAdversary(model.embedder, 1.0)
    adversary.close()
    assert not model.embedder._forward_hooks
    with pytest.raises(ValueError, match="epsilon"):
        EmbeddingAdversary(model.embedder, -1.0)


def test_sentiment_training_uses_it_and_the_model_comes_out_plain(
    test_data_dir: Path, tiny_train_config: dict[str, Any]
) -> None:
    data = test_data_dir / "tiny_sentiment"
    train, valid = read_tsv(data / "train.tsv"), read_tsv(data / "valid.tsv")

    def fit(epsilon: float) -> Any:
        config = SentimentTrainConfig(
            **(tiny_train_config | {"epochs": 1, "adversarial_epsilon": epsilon})
        )
        return fit_sentiment(train, valid, config, show_progress=False)

    plain, adversarial = fit(0.0), fit(1.0)
    assert adversarial.history[0]["loss"] > plain.history[0]["loss"]  # two losses a step
    model = adversarial.predictor.model
    assert not model.embedder._forward_hooks
