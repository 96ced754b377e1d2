"""Sentiment training loss: cross-entropy, optionally re-weighted, logit-adjusted or smoothed.

Macro-F1 weighs each label alike, so on imbalanced data (the airline set is 63% negative)
the rarer labels count for more than their share of the examples. Two ways to move the
classifier towards them, both touching only training (the network and serving are the same):

* class weights ``n_c ** -power`` (1: inverse frequency, 0.5: its square root);
* logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021):
  the loss is taken of ``logits + tau * log(prior)`` while predictions use the raw logits,
  which shifts each decision boundary by ``tau`` times the log-ratio of the priors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from training.config import SentimentTrainConfig

# (logits (batch, labels), label ids (batch,)) -> scalar loss
Loss = Callable[[Tensor, Tensor], Tensor]


def label_counts(label_ids: Sequence[int], num_labels: int) -> Tensor:
    """Training examples per label id; a label without examples raises ``ValueError`` (its
    prior would be 0 and its log-prior -inf)."""
    counts = torch.bincount(torch.tensor(list(label_ids), dtype=torch.long), minlength=num_labels)
    if len(counts) != num_labels or bool((counts == 0).any()):
        raise ValueError(f"expected every one of {num_labels} labels among the training ids")
    return counts.to(torch.float)


def class_weights(counts: Tensor, power: float) -> Tensor:
    """``counts ** -power`` scaled to mean 1 over the labels (cross-entropy's mean
    reduction divides by the targets' weights, so the scale changes nothing but readability)."""
    weights = counts.pow(-power)
    return weights * (len(weights) / weights.sum())


def logit_offsets(counts: Tensor, tau: float) -> Tensor:
    """``tau * log(prior)``, added to the logits inside the loss only."""
    return tau * torch.log(counts / counts.sum())


def sentiment_loss(config: SentimentTrainConfig, label_ids: Sequence[int], num_labels: int) -> Loss:
    """The training loss the config asks for; plain cross-entropy when every option is 0."""
    counts = label_counts(label_ids, num_labels)
    weight = class_weights(counts, config.class_weight_power) if config.class_weight_power else None
    offset = logit_offsets(counts, config.logit_adjustment) if config.logit_adjustment else None
    smoothing = config.label_smoothing

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        if offset is not None:
            logits = logits + offset.to(device=logits.device, dtype=logits.dtype)
        w = None if weight is None else weight.to(device=logits.device, dtype=logits.dtype)
        return nn.functional.cross_entropy(logits, target, weight=w, label_smoothing=smoothing)

    return loss
