"""Exponential moving average of a model's weights (Polyak averaging).

Evaluating the average of the last few hundred steps instead of the last step smooths out
the noise of small-batch AdamW; early stopping then picks among smoother checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """Shadow copies of ``model``'s parameters, updated by :meth:`update` after each step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights.

        The warm-up ``(1 + n) / (10 + n)`` keeps the first steps from being dominated by the
        random initialisation.
        """
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for avg, p in zip(self.shadow, self.params, strict=True):
            avg.lerp_(p.detach(), 1.0 - decay)

    @contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """Inside the block the model holds the averaged weights; the raw ones come back after."""
        raw = [p.detach().clone() for p in self.params]
        for p, avg in zip(self.params, self.shadow, strict=True):
            p.copy_(avg)
        try:
            yield
        finally:
            for p, r in zip(self.params, raw, strict=True):
                p.copy_(r)
