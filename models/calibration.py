"""Temperature scaling: one positive number per output head divides its scores before the
softmax, sigmoid or CRF that turns them into probabilities (Guo et al., 2017).

A positive scale changes no argmax and no Viterbi path, only how confident the probabilities
are. The temperatures are fitted on the valid split at the end of training
(``training.calibration``) and stored in the artifact manifest's ``temperatures``; a manifest
without them (an older artifact) serves with 1.0, that is unscaled. Every predictor that serves
an artifact, the torch one and any other engine, applies them through these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from models.crf import FORBIDDEN, CRFArrays

if TYPE_CHECKING:
    import torch

# Fitted temperatures are searched in this range; a manifest's must lie in it too.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0

Scores = TypeVar("Scores", "torch.Tensor", np.ndarray)  # a string: no torch import to serve


@dataclass(frozen=True)
class Temperatures:
    """What the manifest's ``temperatures`` holds: ``intent`` (a tagger's intent logits),
    ``spans`` (its CRF emissions and transitions) and ``labels`` (a sentiment model's logits)."""

    intent: float = 1.0
    spans: float = 1.0
    labels: float = 1.0

    def __post_init__(self) -> None:
        for name in ("intent", "spans", "labels"):
            value = getattr(self, name)
            if not (
                isinstance(value, int | float)
                and math.isfinite(value)
                and MIN_TEMPERATURE <= value <= MAX_TEMPERATURE
            ):
                raise ValueError(
                    f"temperature {name!r} must be a number in "
                    f"[{MIN_TEMPERATURE}, {MAX_TEMPERATURE}], got {value!r}"
                )

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> Temperatures:
        """From the manifest's object; absent keys (older artifacts) are 1.0."""
        raw = dict(raw or {})
        unknown = sorted(set(raw) - {"intent", "spans", "labels"})
        if unknown:
            raise ValueError(f"unknown temperatures {unknown}")
        return cls(**{k: float(v) if isinstance(v, int) else v for k, v in raw.items()})

    def to_dict(self) -> dict[str, float]:
        """Only the temperatures that scale something (not 1.0)."""
        return {k: v for k, v in vars(self).items() if v != 1.0}


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Log-probabilities over the last axis, computed stably."""
    z = x - x.max(axis=-1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis: what a parse reports from (scaled) logits."""
    if x.shape[-1] == 0:  # a tagger without intents (DSTC8 spans): nothing to normalise
        return x.copy()
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def scale_logits(logits: Scores, temperature: float) -> Scores:
    """``logits / temperature``: apply before the softmax (or sigmoids) that gives the
    served probabilities."""
    return logits if temperature == 1.0 else logits / temperature


def scale_crf_arrays(arrays: CRFArrays, temperature: float) -> CRFArrays:
    """The CRF's transition scores divided by ``temperature``, for span marginals; forbidden
    (BIO-invalid) transitions stay forbidden. Divide the emissions by the same temperature
    (:func:`scale_logits`) before the forward-backward pass."""
    if temperature == 1.0:
        return arrays

    def scaled(x: np.ndarray) -> np.ndarray:
        return np.where(x <= FORBIDDEN, FORBIDDEN, x / temperature)

    trans = scaled(arrays.transitions)
    t_max = float(trans.max())
    return CRFArrays(
        scaled(arrays.start),
        trans,
        scaled(arrays.end),
        np.exp(trans - t_max),
        t_max,
        np.ascontiguousarray(trans.T, dtype=np.float32),
    )
