"""Batched CRF algorithms: constrained Viterbi, forward-backward, span marginals, likelihood.

pytorch-crf (``torchcrf.CRF``) owns the parameters. The training likelihood here is torch (it
needs autograd); decoding and marginals run on the whole batch in NumPy. BIO constraints are
applied, so an ``I-x`` tag can only follow ``B-x`` or ``I-x`` and no invalid span is produced.

Shapes: ``emissions`` is ``(batch, seq_len, num_tags)``, ``mask`` is a boolean
``(batch, seq_len)`` whose first column is all true and whose true entries are a prefix of
each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# Large negative instead of -inf: keeps logsumexp and max free of NaNs (-inf - -inf).
FORBIDDEN = -1.0e4
# A sum of exp() terms below this may have lost its mass to underflow.
_TINY = 1.0e-30


@dataclass(frozen=True)
class CRFParams:
    """Transition scores with BIO constraints folded in.

    ``start``/``end`` are ``(num_tags,)``; ``transitions[i, j]`` scores tag ``j`` after ``i``.
    """

    start: Tensor
    transitions: Tensor
    end: Tensor

    @classmethod
    def constrained(
        cls,
        start: Tensor,
        transitions: Tensor,
        end: Tensor,
        allowed: tuple[Tensor, Tensor] | None,
    ) -> CRFParams:
        """Fold allowed first tags and transitions (see :func:`bio_constraints`) into the
        scores; ``None`` applies no constraints."""
        if allowed is None:
            return cls(start, transitions, end)
        allowed_start, allowed_transitions = allowed
        return cls(
            start.masked_fill(~allowed_start, FORBIDDEN),
            transitions.masked_fill(~allowed_transitions, FORBIDDEN),
            end,
        )


def bio_constraints(tags: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Allowed first tags ``(num_tags,)`` and transitions ``(num_tags, num_tags)``.

    ``I-x`` may start nothing and may only follow ``B-x`` or ``I-x``; all else is allowed.
    """
    continues = [tag[2:] if tag.startswith("I-") else None for tag in tags]
    allowed = [
        [slot is None or prev in (f"B-{slot}", f"I-{slot}") for slot in continues] for prev in tags
    ]
    allowed_start = [slot is None for slot in continues]
    return torch.tensor(allowed_start, dtype=torch.bool), torch.tensor(allowed, dtype=torch.bool)


def _check(emissions: Tensor, mask: Tensor, params: CRFParams | CRFArrays) -> None:
    if emissions.dim() != 3:
        raise ValueError(
            f"expected emissions of shape (batch, seq_len, num_tags), got {tuple(emissions.shape)}"
        )
    if mask.shape != emissions.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(
            f"expected a bool mask of shape {tuple(emissions.shape[:2])}, "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    if emissions.shape[1] == 0 or not bool(mask[:, 0].all()):
        raise ValueError("expected every sequence to have at least one token (mask[:, 0] all true)")
    if params.transitions.shape != (emissions.shape[2], emissions.shape[2]):
        raise ValueError(
            f"expected transitions for {emissions.shape[2]} tags, "
            f"got {tuple(params.transitions.shape)}"
        )


def _exp_transitions(params: CRFParams) -> tuple[Tensor, Tensor]:
    """``exp(transitions - max)`` and that max: exp() stays in range, the max is added back."""
    t_max = params.transitions.max()
    return torch.exp(params.transitions - t_max), t_max


def _log_matmul(log_a: Tensor, log_b: Tensor, exp_b: Tensor, b_max: Tensor) -> Tensor:
    """``logsumexp(log_a[:, :, None] + log_b, dim=1)`` as one matrix product.

    ``log_a`` is ``(batch, n)``, ``exp_b = exp(log_b - b_max)`` is ``(n, m)``. A product of
    small matrices is several times faster on CPU than the ``(batch, n, m)`` broadcast.
    Where every term of a sum underflowed (large scores, or a tag whose only allowed
    predecessors score far below the best one), the exact broadcast is used instead.
    """
    a_max = log_a.max(dim=1, keepdim=True).values
    summed = torch.exp(log_a - a_max) @ exp_b
    out = torch.log(summed.clamp_min(_TINY)) + a_max + b_max
    underflow = summed < _TINY
    if bool(underflow.any()):
        exact = torch.logsumexp(log_a.unsqueeze(2) + log_b, dim=1)
        out = torch.where(underflow, exact, out)
    return out


@dataclass(frozen=True)
class CRFArrays:
    """:class:`CRFParams` as float64 NumPy arrays, for inference.

    Decoding and marginals run in NumPy: per time step they are a handful of operations on
    ``(batch, num_tags, num_tags)`` arrays, and NumPy's per-call overhead is several times
    lower than torch's on such small arrays (measured: ``benchmarks/decode.py``).
    """

    start: np.ndarray
    transitions: np.ndarray
    end: np.ndarray
    exp_transitions: np.ndarray  # exp(transitions - t_max)
    t_max: float
    transitions_t32: np.ndarray  # transitions.T as contiguous float32, for Viterbi

    @classmethod
    def of(cls, params: CRFParams) -> CRFArrays:
        """Convert (detached, CPU, float64)."""
        trans = params.transitions.detach().cpu().double().numpy()
        t_max = float(trans.max())
        return cls(
            params.start.detach().cpu().double().numpy(),
            trans,
            params.end.detach().cpu().double().numpy(),
            np.exp(trans - t_max),
            t_max,
            np.ascontiguousarray(trans.T, dtype=np.float32),
        )


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, np.float64)


def _np_log_matmul(
    log_a: np.ndarray, log_b: np.ndarray, exp_b: np.ndarray, b_max: float
) -> np.ndarray:
    """``logsumexp(log_a[:, :, None] + log_b, axis=1)`` as one matrix product, exact where the
    product underflowed (see :func:`_log_matmul`)."""
    a_max = log_a.max(axis=1, keepdims=True)
    summed = np.exp(log_a - a_max) @ exp_b
    underflow = summed < _TINY
    out: np.ndarray = np.log(np.maximum(summed, _TINY)) + a_max + b_max
    if underflow.any():
        full = log_a[:, :, None] + log_b[None]
        f_max = full.max(axis=1)
        exact = np.log(np.exp(full - f_max[:, None, :]).sum(axis=1)) + f_max
        out = np.where(underflow, exact, out)
    return out


def viterbi_decode(
    emissions: Tensor, mask: Tensor, params: CRFParams | CRFArrays
) -> list[list[int]]:
    """Best tag sequence of every sequence in the batch, each as long as its mask.

    The forward pass keeps only the best score per tag and step; the backtrack recomputes the
    best predecessor of the one chosen tag per step (a ``num_tags`` vector, with the same
    float32 sums), instead of an ``argmax`` over all ``num_tags x num_tags`` pairs per step.
    """
    arrays = params if isinstance(params, CRFArrays) else CRFArrays.of(params)
    _check(emissions, mask, arrays)
    # float32 and a (batch, cur, prev) layout: the max runs over contiguous memory.
    em, on = emissions.detach().cpu().float().numpy(), mask.cpu().numpy()
    trans_t = arrays.transitions_t32
    batch, seq_len = on.shape
    lengths = on.sum(axis=1)
    # Longest rows first: the rows still running at step t are a prefix (``running[t]``
    # of them), so a batch of mixed lengths costs its real tokens, not its padding.
    order = np.argsort(-lengths, kind="stable")
    if batch > 1:
        em, lengths = em[order], lengths[order]
    running = (lengths[None, :] > np.arange(seq_len)[:, None]).sum(axis=1).tolist()
    score = arrays.start.astype(np.float32) + em[:, 0]  # (batch, num_tags)
    scores = [score]
    for t in range(1, seq_len):
        k = running[t]
        best = (score[:k, None, :] + trans_t[None]).max(axis=2) + em[:k, t]
        if k < batch:  # rows that have ended keep their last score
            best = np.concatenate([best, score[k:]])
        score = best
        scores.append(score)
    last = (score + arrays.end).argmax(axis=1)
    path = [last]
    for t in range(seq_len - 1, 0, -1):
        k = running[t]
        # trans_t[last] is (rows, prev): the scores of moving into each row's chosen tag.
        prev = (scores[t - 1][:k] + trans_t[last[:k]]).argmax(axis=1)
        # Past the end of a sequence the tag stays put, so backtracking passes through.
        last = np.concatenate([prev, last[k:]]) if k < batch else prev
        path.append(last)
    path.reverse()
    tags = np.stack(path, axis=1)
    if batch > 1:
        tags[order] = tags.copy()
        lengths = on.sum(axis=1)
    return [row[:n] for row, n in zip(tags.tolist(), lengths.tolist(), strict=True)]


def forward_backward_arrays(
    emissions: np.ndarray, mask: np.ndarray, arrays: CRFArrays
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`forward_backward` on NumPy arrays (float64)."""
    batch, seq_len, _ = emissions.shape
    alphas = [arrays.start + emissions[:, 0]]
    for t in range(1, seq_len):
        nxt = _np_log_matmul(alphas[-1], arrays.transitions, arrays.exp_transitions, arrays.t_max)
        alphas.append(np.where(mask[:, t, None], nxt + emissions[:, t], alphas[-1]))
    end = np.broadcast_to(arrays.end, (batch, arrays.end.shape[0]))
    betas = [end]
    trans_t, exp_t = arrays.transitions.T, arrays.exp_transitions.T
    for t in range(seq_len - 2, -1, -1):
        nxt = _np_log_matmul(emissions[:, t + 1] + betas[-1], trans_t, exp_t, arrays.t_max)
        betas.append(np.where(mask[:, t + 1, None], nxt, end))
    betas.reverse()
    alpha, beta = np.stack(alphas, axis=1), np.stack(betas, axis=1)
    both = alpha[:, 0] + beta[:, 0]
    z_max = both.max(axis=1)
    log_z = np.log(np.exp(both - z_max[:, None]).sum(axis=1)) + z_max
    return alpha, beta, log_z


def forward_backward(
    emissions: Tensor, mask: Tensor, params: CRFParams
) -> tuple[Tensor, Tensor, Tensor]:
    """Log forward and backward scores ``(batch, seq_len, num_tags)`` and ``log Z`` ``(batch,)``.

    ``alpha[b, t, k]`` includes the emission at ``t``; ``beta[b, t, k]`` covers ``t+1`` onwards
    plus the end score. Entries past a sequence's end are not meaningful. Float64.
    """
    arrays = CRFArrays.of(params)
    _check(emissions, mask, arrays)
    alpha, beta, log_z = forward_backward_arrays(_np(emissions), mask.cpu().numpy(), arrays)
    return torch.from_numpy(alpha), torch.from_numpy(beta), torch.from_numpy(log_z)


def span_log_prob(
    emissions: Tensor | np.ndarray,
    alpha: Tensor | np.ndarray,
    beta: Tensor | np.ndarray,
    log_z: Tensor | np.ndarray | float,
    params: CRFParams | CRFArrays,
    length: int,
    path: Sequence[int],
    start: int,
    end: int,
    outside: Sequence[int],
) -> float:
    """Log marginal probability that tokens ``start..end-1`` carry exactly ``path``.

    ``emissions``/``alpha``/``beta`` are one sequence's ``(seq_len, num_tags)`` slices and
    ``log_z`` a scalar. "Exactly" means the span neither extends to the right: the tag at
    ``end`` (if any) must be one of ``outside`` (for a slot ``x``: every tag but ``I-x``).
    The tag before ``start`` is free (a ``B-x`` span may follow anything).
    """
    arrays = params if isinstance(params, CRFArrays) else CRFArrays.of(params)
    em, al, be = _np(emissions), _np(alpha), _np(beta)
    score = float(al[start, path[0]])
    for offset in range(1, end - start):
        t = start + offset
        score += arrays.transitions[path[offset - 1], path[offset]] + em[t, path[offset]]
    last = path[-1]
    if end >= length:
        score += arrays.end[last]
    else:
        idx = np.asarray(outside, dtype=np.int64)
        tail = arrays.transitions[last, idx] + em[end, idx] + be[end, idx]
        t_max = tail.max()
        score += float(np.log(np.exp(tail - t_max).sum()) + t_max)
    z = float(log_z.item()) if isinstance(log_z, Tensor | np.ndarray) else float(log_z)
    return score - z


def log_likelihood(emissions: Tensor, tag_ids: Tensor, mask: Tensor, params: CRFParams) -> Tensor:
    """Per-sequence log-likelihood ``(batch,)`` of ``tag_ids`` ``(batch, seq_len)``.

    The same quantity as ``torchcrf.CRF.forward(..., reduction="none")``, computed with
    the gold score fully vectorised and the partition function as one small matrix
    product per time step (log-sum-exp via ``exp(alpha - max) @ exp(transitions)``),
    which measured several times faster than the broadcast in pytorch-crf on CPU.
    """
    _check(emissions, mask, params)
    _, seq_len, _ = emissions.shape
    maskf = mask.to(emissions.dtype)
    emitted = emissions.gather(2, tag_ids.unsqueeze(2)).squeeze(2)  # (batch, seq_len)
    moved = params.transitions[tag_ids[:, :-1], tag_ids[:, 1:]]  # (batch, seq_len - 1)
    last = tag_ids.gather(1, (mask.sum(dim=1) - 1).unsqueeze(1)).squeeze(1)
    gold = (
        params.start[tag_ids[:, 0]]
        + (emitted * maskf).sum(dim=1)
        + (moved * maskf[:, 1:]).sum(dim=1)
        + params.end[last]
    )
    exp_trans, t_max = _exp_transitions(params)
    alpha = params.start + emissions[:, 0]
    for t in range(1, seq_len):
        nxt = _log_matmul(alpha, params.transitions, exp_trans, t_max) + emissions[:, t]
        alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
    log_z = torch.logsumexp(alpha + params.end, dim=1)
    return gold - log_z
