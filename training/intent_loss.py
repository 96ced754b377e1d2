"""Intent losses for rare intents: label smoothing and logit adjustment (issue 19).

Menon et al., "Long-tail learning via logit adjustment" (ICLR 2021): training on
``logits + tau * log(prior)`` and predicting from the raw logits moves the decision
boundary towards the frequent classes by the log-ratio of the priors, the Bayes rule for
the balanced error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from models.vocab import LabelSet
from training.config import SlotTrainConfig
from training.data import DataError

IntentLoss = Callable[[Tensor, Tensor], Tensor]


def intent_loss(
    config: SlotTrainConfig, intents: LabelSet, rows: Sequence[Sequence[str]], multi: bool
) -> IntentLoss | None:
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
    counts = Counter(row[0] for row in rows)
    prior = torch.tensor([counts[i] for i in intents.labels], dtype=torch.float)
    offset = tau * torch.log(prior / prior.sum())

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        shift = offset.to(device=logits.device, dtype=logits.dtype)
        return nn.functional.cross_entropy(logits + shift, target, label_smoothing=smoothing)

    return loss
