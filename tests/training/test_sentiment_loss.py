"""The sentiment loss options: class weights, logit adjustment, label smoothing."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from training.class_losses import class_weights, label_counts, logit_offsets, sentiment_loss
from training.config import SentimentTrainConfig
from training.data import TextDataset, read_tsv
from training.loop import fit_sentiment

# 6 examples of label 0, 3 of label 1, 1 of label 2.
IDS = [0] * 6 + [1] * 3 + [2]


def _loss(**options: float) -> Any:
    """The loss with ``options``, label smoothing off unless they set it (default 0.1)."""
    return sentiment_loss(SentimentTrainConfig(**({"label_smoothing": 0.0} | options)), IDS, 3)


def test_counts_per_label_and_a_label_without_examples_is_refused() -> None:
    assert label_counts(IDS, 3).tolist() == [6.0, 3.0, 1.0]
    with pytest.raises(ValueError, match="every one of 4 labels"):
        label_counts(IDS, 4)


def test_inverse_frequency_weights_have_mean_one() -> None:
    counts = label_counts(IDS, 3)
    weights = class_weights(counts, 1.0)
    assert float(weights.mean()) == pytest.approx(1.0)
    # 1/6 : 1/3 : 1 = 1 : 2 : 6
    assert (weights / weights[0]).tolist() == pytest.approx([1.0, 2.0, 6.0])
    root = class_weights(counts, 0.5)
    assert (root / root[0]).tolist() == pytest.approx([1.0, math.sqrt(2), math.sqrt(6)])
    assert class_weights(counts, 0.0).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_logit_offsets_are_tau_times_the_log_prior() -> None:
    offsets = logit_offsets(label_counts(IDS, 3), 0.5)
    assert offsets.tolist() == pytest.approx([0.5 * math.log(p) for p in (0.6, 0.3, 0.1)])


def test_without_options_the_loss_is_plain_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    expected = nn.functional.cross_entropy(logits, target)
    assert torch.equal(_loss()(logits, target), expected)


def test_logit_adjustment_asks_rare_labels_for_a_wider_margin() -> None:
    # Logits that do not choose: plain cross-entropy is log 3 whatever the target; the
    # adjusted loss sees softmax(log prior) = prior, so it is -log(prior of the target).
    logits = torch.zeros(3, 3)
    target = torch.tensor([0, 1, 2])
    per_label = [
        float(_loss(logit_adjustment=1.0)(logits[i : i + 1], target[i : i + 1])) for i in range(3)
    ]
    assert per_label == pytest.approx([-math.log(0.6), -math.log(0.3), -math.log(0.1)])
    # Its gradient pushes the rare label's logit up harder than the frequent one's.
    grads = []
    for label in (0, 2):
        x = torch.zeros(1, 3, requires_grad=True)
        _loss(logit_adjustment=1.0)(x, torch.tensor([label])).backward()
        assert x.grad is not None
        grads.append(-float(x.grad[0, label]))
    assert grads[1] > grads[0] > 0


def test_class_weights_weigh_each_example_by_its_label() -> None:
    torch.manual_seed(1)
    logits, target = torch.randn(2, 3), torch.tensor([0, 2])
    each = nn.functional.cross_entropy(logits, target, reduction="none")
    # weights 1 and 6 (inverse frequency, relative): a weighted mean of the two losses
    expected = (1.0 * each[0] + 6.0 * each[1]) / 7.0
    assert float(_loss(class_weight_power=1.0)(logits, target)) == pytest.approx(float(expected))


def test_label_smoothing_penalises_confidence() -> None:
    confident, target = torch.tensor([[8.0, 0.0, 0.0]]), torch.tensor([0])
    plain, smoothed = _loss()(confident, target), _loss(label_smoothing=0.2)(confident, target)
    assert float(smoothed) > float(plain)
    undecided = torch.zeros(1, 3)
    assert float(_loss(label_smoothing=0.2)(undecided, target)) == pytest.approx(math.log(3))


def test_training_uses_the_configured_loss(
    test_data_dir: Path, tiny_train_config: dict[str, Any]
) -> None:
    full = read_tsv(test_data_dir / "tiny_sentiment" / "train.tsv")
    # The tiny set is balanced, where neither option changes anything: keep 5 positives.
    keep = [i for i, y in enumerate(full.labels) if y != "positive"]
    keep += [i for i, y in enumerate(full.labels) if y == "positive"][:5]
    train = TextDataset([full.texts[i] for i in keep], [full.labels[i] for i in keep], "train")
    valid = read_tsv(test_data_dir / "tiny_sentiment" / "valid.tsv")

    def first_loss(**options: float) -> float:
        config = SentimentTrainConfig(**(tiny_train_config | {"epochs": 1} | options))
        return float(fit_sentiment(train, valid, config, show_progress=False).history[0]["loss"])

    plain = first_loss()
    assert first_loss() == plain  # one thread, one seed: the same run
    assert first_loss(logit_adjustment=1.0) != plain
    assert first_loss(class_weight_power=1.0) != plain
