"""Classification losses of the intent head and the sentiment classifier: cross-entropy,
optionally re-weighted, logit-adjusted or smoothed (issue 19), one definition for both.

Macro-F1 weighs each class alike, so on imbalanced data (the airline set is 63% negative,
ATIS 74% atis_flight) the rarer classes count for more than their share of the examples.
Two ways to move the classifier towards them, both touching only training (the network and
serving are the same):

* class weights ``n_c ** -power`` (1: inverse frequency, 0.5: its square root);
* logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021):
  the loss is taken of ``logits + tau * log(prior)`` while predictions use the raw logits,
  which shifts each decision boundary by ``tau`` times the log-ratio of the priors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from models.vocab import LabelSet
from training.config import SentimentTrainConfig, SlotTrainConfig
from training.data import DataError

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


def adjusted_cross_entropy(
    counts: Tensor,
    *,
    weight_power: float = 0.0,
    tau: float = 0.0,
    smoothing: float = 0.0,
    per_row: bool = False,
) -> Loss:
    """Cross-entropy over classes with training ``counts``: weighted by ``counts **
    -weight_power``, taken of ``logits + tau * log(prior)``, with label smoothing; plain
    cross-entropy when all three are 0; the batch mean, or with ``per_row`` each row's loss."""
    weight = class_weights(counts, weight_power) if weight_power else None
    offset = logit_offsets(counts, tau) if tau else None

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        if offset is not None:
            logits = logits + offset.to(device=logits.device, dtype=logits.dtype)
        w = None if weight is None else weight.to(device=logits.device, dtype=logits.dtype)
        return nn.functional.cross_entropy(
            logits,
            target,
            weight=w,
            label_smoothing=smoothing,
            reduction="none" if per_row else "mean",
        )

    return loss


def sentiment_loss(
    config: SentimentTrainConfig,
    label_ids: Sequence[int],
    num_labels: int,
    per_row: bool = False,
) -> Loss:
    """The training loss the config asks for; plain cross-entropy when every option is 0."""
    return adjusted_cross_entropy(
        label_counts(label_ids, num_labels),
        weight_power=config.class_weight_power,
        tau=config.logit_adjustment,
        smoothing=config.label_smoothing,
        per_row=per_row,
    )


def intent_loss(
    config: SlotTrainConfig, intents: LabelSet, rows: Sequence[Sequence[str]], multi: bool
) -> Loss | None:
    """The single-label intent loss the config asks for, of (logits, class ids), ``rows``
    the training examples' intents; ``None`` for the model's own cross-entropy (neither
    option set, or no intents)."""
    smoothing, tau = config.intent_label_smoothing, config.intent_logit_adjustment
    if not (smoothing or tau) or not len(intents):
        return None
    if multi:
        raise DataError(
            "intent_label_smoothing and intent_logit_adjustment apply to single-label "
            "intents; this model's intents are multi-label"
        )
    ids = [intents.index_of[row[0]] for row in rows]
    return adjusted_cross_entropy(label_counts(ids, len(intents)), tau=tau, smoothing=smoothing)
