"""Adversarial training on the token representations: FGM (Miyato, Dai & Goodfellow 2017,
"Adversarial Training Methods for Semi-Supervised Text Classification")."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import torch
from torch import Tensor, nn


class EmbeddingAdversary:
    """Adds to a training step's loss the loss of the same batch with each utterance's token
    representations moved by ``epsilon`` (L2 norm over the utterance) along the gradient of
    the loss: to first order, the small change that hurts the model most.

    A forward hook on ``embedder`` (training mode only) records its output on the first pass
    and adds the perturbation on the second; :meth:`close` (or leaving the ``with`` block)
    removes the hook, so the trained model is the plain one. With ``epsilon`` 0 it is the
    plain loss, one forward pass.
    """

    def __init__(self, embedder: nn.Module, epsilon: float) -> None:
        if epsilon < 0:
            raise ValueError("expected epsilon >= 0")
        self.epsilon = epsilon
        self._seen: Tensor | None = None
        self._delta: Tensor | None = None
        self._handle = embedder.register_forward_hook(self._hook) if epsilon else None

    def _hook(self, module: nn.Module, inputs: Any, output: Tensor) -> Tensor | None:
        if not module.training:
            return None
        if self._delta is not None:
            return output + self._delta
        self._seen = output
        return None

    def loss(self, compute: Callable[[], Tensor]) -> Tensor:
        """``compute()`` (a forward pass and its loss) plus, with ``epsilon``, the same on
        the perturbed representations; one backward pass through the sum trains on both."""
        self._seen = self._delta = None
        clean = compute()
        if not self.epsilon or self._seen is None:
            return clean
        (grad,) = torch.autograd.grad(clean, self._seen, retain_graph=True)
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        self._delta = (self.epsilon * grad / norm.view(-1, *[1] * (grad.dim() - 1))).detach()
        try:
            return clean + compute()
        finally:
            self._seen = self._delta = None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __enter__(self) -> EmbeddingAdversary:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
