"""k-best Viterbi: the k most probable whole tag sequences of a CRF, with their probabilities.

A best-first (A*) search from the last token backwards over suffixes of tags. A suffix's
priority is its own score plus the best score of any prefix that leads into it (the forward
Viterbi scores), an exact bound, so complete sequences come out best first. A popped suffix
pushes only its best one-tag extension and its next-best sibling (siblings are sorted once),
so k sequences of n tokens cost one forward pass plus O(k n) heap operations.

BIO constraints: scores at ``FORBIDDEN`` (as :meth:`CRFParams.constrained` folds them in) are
treated as impossible, so only valid sequences are listed, and fewer than k when fewer exist.

Ties: sequences with equal scores come in ascending order of their tag ids read from the
last token backwards (``tuple(reversed(path))`` compared lexicographically).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.crf import FORBIDDEN, CRFArrays, CRFParams, _check, _np, forward_backward_arrays

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Hypothesis:
    """One whole-sequence labelling: tag ids per token, unnormalised score, probability."""

    path: list[int]
    score: float
    probability: float  # exp(score - log Z)


@dataclass(frozen=True)
class _Siblings:
    """The allowed tags at token ``t`` after the suffix ``parent`` (reversed), best first."""

    t: int
    parent: tuple[int, ...]
    tags: list[int]
    priority: list[float]  # -inf: impossible (sorted last)
    suffix: list[float]  # score of tokens t..end given each tag


def _possible(scores: np.ndarray) -> np.ndarray:
    return np.where(scores <= FORBIDDEN, -np.inf, scores)


def kbest_paths(
    emissions: np.ndarray, arrays: CRFArrays, k: int, log_z: float | None = None
) -> list[Hypothesis]:
    """The ``k`` most probable tag sequences of one sequence, best first (see module doc).

    ``emissions`` is one unpadded ``(seq_len, num_tags)`` sequence, ``seq_len >= 1``.
    ``log_z`` is its log partition function if already computed
    (:func:`~models.crf.forward_backward_arrays`), else it is computed here.
    """
    em = np.asarray(emissions, dtype=np.float64)
    if k < 1:
        raise ValueError(f"expected k >= 1, got {k}")
    if em.ndim != 2 or em.shape[0] == 0 or em.shape[1] != arrays.start.shape[0]:
        raise ValueError(
            f"expected emissions of shape (seq_len >= 1, {arrays.start.shape[0]}), got {em.shape}"
        )
    if log_z is None:
        log_z = float(forward_backward_arrays(em[None], np.ones((1, len(em)), bool), arrays)[2][0])
    n = em.shape[0]
    start, trans = _possible(arrays.start), _possible(arrays.transitions)
    trans_t = np.ascontiguousarray(trans.T)  # trans_t[j]: every move into tag j
    # into[t, j]: best score of tags 0..t-1 plus the move into tag j at t (no emission at t).
    into = np.empty_like(em)
    into[0] = start
    for t in range(1, n):
        into[t] = ((into[t - 1] + em[t - 1])[:, None] + trans).max(axis=0)

    heap: list[tuple[float, tuple[int, ...], _Siblings, int]] = []

    def push_first(t: int, parent: tuple[int, ...], suffix: np.ndarray) -> None:
        priority = into[t] + suffix
        # Stable: equal priorities keep ascending tag order (the documented tie order).
        # Python lists from here on: the search touches a few items of each, one at a time.
        order = np.argsort(-priority, kind="stable")
        sib = _Siblings(t, parent, order.tolist(), priority[order].tolist(), suffix[order].tolist())
        if sib.priority[0] > -math.inf:
            heapq.heappush(heap, (-sib.priority[0], (*parent, sib.tags[0]), sib, 0))

    push_first(n - 1, (), em[n - 1] + arrays.end)
    found: list[Hypothesis] = []
    # Keys (-priority, reversed suffix) never decrease along a pop order, and they are unique,
    # so the heap never compares the _Siblings objects.
    while heap and len(found) < k:
        neg_priority, reversed_tags, sib, pos = heapq.heappop(heap)
        if pos + 1 < len(sib.tags) and sib.priority[pos + 1] > -math.inf:
            nxt = sib.tags[pos + 1]
            heapq.heappush(heap, (-sib.priority[pos + 1], (*sib.parent, nxt), sib, pos + 1))
        tag = sib.tags[pos]
        if sib.t == 0:
            score = -neg_priority
            found.append(
                Hypothesis(list(reversed(reversed_tags)), score, min(1.0, math.exp(score - log_z)))
            )
        else:
            t = sib.t - 1
            push_first(t, reversed_tags, sib.suffix[pos] + trans_t[tag] + em[t])
    return found


def kbest_decode(
    emissions: Tensor, mask: Tensor, params: CRFParams | CRFArrays, k: int
) -> list[list[Hypothesis]]:
    """:func:`kbest_paths` for every sequence of a padded batch (shapes as in models.crf)."""
    arrays = params if isinstance(params, CRFArrays) else CRFArrays.of(params)
    _check(emissions, mask, arrays)
    em, on = _np(emissions), mask.cpu().numpy()
    _, _, log_z = forward_backward_arrays(em, on, arrays)
    lengths = on.sum(axis=1).tolist()
    return [kbest_paths(em[b, :n], arrays, k, float(log_z[b])) for b, n in enumerate(lengths)]
