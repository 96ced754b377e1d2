"""Batched CRF algorithms: constrained Viterbi, forward-backward, span marginals, likelihood.

pytorch-crf (``torchcrf.CRF``) owns the parameters. The training likelihood here is torch (it
needs autograd); decoding and marginals run on the whole batch in NumPy, and the serving path
(:func:`decode_lattice`: the best paths and the marginals) imports no torch at all, so
torch is imported only by the functions that take or return tensors. BIO constraints are
applied, so an ``I-x`` tag can only follow ``B-x`` or ``I-x`` and no invalid span is produced.

Shapes: ``emissions`` is ``(batch, seq_len, num_tags)``, ``mask`` is a boolean
``(batch, seq_len)`` whose first column is all true and whose true entries are a prefix of
each row.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from models import native

if TYPE_CHECKING:
    from torch import Tensor

# Large negative instead of -inf: keeps logsumexp and max free of NaNs (-inf - -inf).
FORBIDDEN = -1.0e4
# A sum of exp() terms below this may have lost its mass to underflow.
_TINY = 1.0e-30
# decode_lattice's probability space holds scores up to this far below a token's best
# (emissions plus transitions) without underflow (exp(-2 * 300) is far above float64's
# smallest); wider spreads take the log-space pass.
_SPREAD = 300.0
# ... and it rescales once the scores since the last rescaling may have moved this far.
_RESCALE = 250.0
# A sum of products of probabilities above this lost nothing that matters to underflow.
_TINY_SUM = 1.0e-250
# decode_lattice takes the tags of highest marginal as the best path when no other tag has
# a marginal of this times the path's probability (_sure_paths). The margin, a log score of
# 0.1 / temperature (>= 0.005 at the lowest fitted temperature), is far above float32
# rounding in Viterbi's sums of a few dozen scores.
_SURE = 0.9


def _rescales(costs: Sequence[float]) -> list[bool]:
    """Whether to rescale at each step, given how far each step can move the scores."""
    out, moved = [], 0.0
    for cost in costs:
        moved += cost
        out.append(moved > _RESCALE)
        if out[-1]:
            moved = 0.0
    return out


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


def bio_allowed(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Allowed first tags ``(num_tags,)`` and transitions ``(num_tags, num_tags)``, bool.

    ``I-x`` may start nothing and may only follow ``B-x`` or ``I-x``; all else is allowed.
    """
    continues = [tag[2:] if tag.startswith("I-") else None for tag in tags]
    allowed = [
        [slot is None or prev in (f"B-{slot}", f"I-{slot}") for slot in continues] for prev in tags
    ]
    allowed_start = [slot is None for slot in continues]
    return np.array(allowed_start, dtype=bool), np.array(allowed, dtype=bool).reshape(
        len(tags), len(tags)
    )


def bio_constraints(tags: Sequence[str]) -> tuple[Tensor, Tensor]:
    """:func:`bio_allowed` as bool tensors (for :meth:`CRFParams.constrained`)."""
    import torch

    allowed_start, allowed = bio_allowed(tags)
    return torch.from_numpy(allowed_start), torch.from_numpy(allowed)


def _check(emissions: Tensor, mask: Tensor, params: CRFParams | CRFArrays) -> None:
    import torch

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
    import torch

    t_max = params.transitions.max()
    return torch.exp(params.transitions - t_max), t_max


def _log_matmul(log_a: Tensor, log_b: Tensor, exp_b: Tensor, b_max: Tensor) -> Tensor:
    """``logsumexp(log_a[:, :, None] + log_b, dim=1)`` as one matrix product.

    ``log_a`` is ``(batch, n)``, ``exp_b = exp(log_b - b_max)`` is ``(n, m)``. A product of
    small matrices is several times faster on CPU than the ``(batch, n, m)`` broadcast.
    Where every term of a sum underflowed (large scores, or a tag whose only allowed
    predecessors score far below the best one), the exact broadcast is used instead.
    """
    import torch

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
        return cls.build(
            params.start.detach().cpu().double().numpy(),
            params.transitions.detach().cpu().double().numpy(),
            params.end.detach().cpu().double().numpy(),
        )

    @cached_property
    def transitions32(self) -> np.ndarray:
        """``transitions[prev, cur]`` as contiguous float32, for Viterbi's forward pass."""
        return np.ascontiguousarray(self.transitions_t32.T)

    @cached_property
    def exp_transitions_t(self) -> np.ndarray:
        """``exp_transitions.T``, contiguous (the backward recursion's operand)."""
        return np.ascontiguousarray(self.exp_transitions.T)

    @cached_property
    def spread(self) -> float:
        """How far apart the allowed (not :data:`FORBIDDEN`) scores lie: max - min over the
        start, transition and end scores."""
        scores = np.concatenate([self.start, self.transitions.ravel(), self.end])
        allowed = scores[scores > FORBIDDEN]
        return float(allowed.max() - allowed.min()) if allowed.size else 0.0

    @classmethod
    def build(cls, start: np.ndarray, transitions: np.ndarray, end: np.ndarray) -> CRFArrays:
        """From the (already constrained) float64 scores."""
        t_max = float(transitions.max())
        return cls(
            start,
            transitions,
            end,
            np.exp(transitions - t_max),
            t_max,
            np.ascontiguousarray(transitions.T, dtype=np.float32),
        )

    @classmethod
    def constrained(
        cls,
        start: np.ndarray,
        transitions: np.ndarray,
        end: np.ndarray,
        allowed: tuple[np.ndarray, np.ndarray] | None,
    ) -> CRFArrays:
        """:meth:`CRFParams.constrained` then :meth:`of`, on the float32 weights as stored
        (``crf.start_transitions``...), torch-free and with the same values."""
        if allowed is not None:
            start = np.where(allowed[0], start, np.float32(FORBIDDEN))
            transitions = np.where(allowed[1], transitions, np.float32(FORBIDDEN))
        return cls.build(
            np.asarray(start, np.float32).astype(np.float64),
            np.asarray(transitions, np.float32).astype(np.float64),
            np.asarray(end, np.float32).astype(np.float64),
        )


def _np(x: Tensor | np.ndarray) -> np.ndarray:
    if hasattr(x, "detach"):  # a tensor; tested by attribute so that NumPy callers skip torch
        return np.asarray(x.detach().cpu().double().numpy())
    return np.asarray(x, np.float64)


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
    # float32; the forward pass sums in a (batch, prev, cur) layout and takes the max over
    # prev, an elementwise maximum of whole rows (measured 1.3x faster than a max along
    # contiguous rows of the (batch, cur, prev) layout, with the same values).
    em, on = emissions.detach().cpu().float().numpy(), mask.cpu().numpy()
    return viterbi_arrays(em, on, arrays)


def viterbi_arrays(em: np.ndarray, on: np.ndarray, arrays: CRFArrays) -> list[list[int]]:
    """:func:`viterbi_decode` on NumPy arrays: float32 emissions and a bool mask."""
    trans, trans_t = arrays.transitions32[None], arrays.transitions_t32
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
        best = (score[:k, :, None] + trans).max(axis=1) + em[:k, t]
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


@dataclass(frozen=True)
class Lattice:
    """A batch's forward-backward pass in probability space, rescaled per token: the log
    forward score of tag ``k`` at token ``t`` of row ``b`` (as :func:`forward_backward`'s
    ``alpha``) is ``log(alpha[b, t, k]) + log_alpha[b, t]``, likewise for ``beta``. Rows are
    in the batch's order; entries past a row's length are not meaningful. Float64, over the
    temperature-scaled ``emissions`` and CRF ``arrays``."""

    emissions: np.ndarray  # (batch, seq_len, num_tags)
    probs: np.ndarray  # exp(emissions - em_max)
    em_max: np.ndarray  # (batch, seq_len): the largest emission per token
    alpha: np.ndarray
    beta: np.ndarray
    log_alpha: np.ndarray  # (batch, seq_len)
    log_beta: np.ndarray
    log_z: np.ndarray  # (batch,)
    arrays: CRFArrays

    def with_rows(self, rows: Sequence[int], other: Lattice) -> Lattice:
        """This lattice with its rows ``rows`` replaced by ``other``'s rows 0, 1, ... (over
        the same CRF, ``other``'s sequences no longer than this one's)."""
        at = np.asarray(rows, dtype=np.int64)
        parts: dict[str, np.ndarray] = {}
        for name in ("emissions", "probs", "em_max", "alpha", "beta", "log_alpha", "log_beta"):
            mine, theirs = getattr(self, name).copy(), getattr(other, name)
            mine[at, : theirs.shape[1]] = theirs
            parts[name] = mine
        log_z = self.log_z.copy()
        log_z[at] = other.log_z
        return Lattice(**parts, log_z=log_z, arrays=self.arrays)

    def span_probs(
        self, row: int, path: Sequence[int], spans: Sequence[tuple[int, int, int]]
    ) -> list[float]:
        """For each ``(first, end, inside)``: the marginal probability that tokens
        ``first..end-1`` of ``row`` carry exactly ``path[first:end]`` and the token at ``end``
        (if any) is not tag ``inside`` (the span's ``I-x``; -1: none), as :func:`span_log_prob`
        gives it (:meth:`rows_span_probs` for one row)."""
        return self.rows_span_probs([row], [path], [spans])[0]

    def rows_span_probs(
        self,
        rows: Sequence[int],
        paths: Sequence[Sequence[int]],
        spans: Sequence[Sequence[tuple[int, int, int]]],
    ) -> list[list[float]]:
        """:meth:`span_probs` of ``paths[i]`` and ``spans[i]`` for each ``rows[i]``, all in a
        few vectorised steps: a batch's spans cost about what one utterance's do."""
        counts = [len(row_spans) for row_spans in spans]
        if not any(counts):
            return [[] for _ in rows]
        arrays = self.arrays
        if len(paths) == 1 and native.active(1, native.CRF_ROWS):  # one call (models/_native.c)
            row = rows[0]
            parts = (self.emissions, self.probs, self.em_max, self.alpha, self.beta)
            lattice = (*(a[row] for a in parts), self.log_alpha[row], self.log_beta[row])
            crf = (arrays.transitions, arrays.exp_transitions, arrays.end)
            log_z, t_max = float(self.log_z[row]), arrays.t_max
            return [native.span_row(lattice, log_z, crf, t_max, _TINY_SUM, paths[0], spans[0])]
        at_rows = np.asarray(rows, dtype=np.int64)
        if len(paths) == 1:  # the server's batch of one: no padding, no bookkeeping
            p = np.asarray(paths[0], dtype=np.int64)[None]
            lengths, on = np.array([p.shape[1]]), None
        else:
            lengths = np.array([len(path) for path in paths], dtype=np.int64)
            on = np.arange(lengths.max())[None, :] < lengths[:, None]
            p = np.zeros(on.shape, dtype=np.int64)
            p[on] = np.concatenate([np.asarray(path, dtype=np.int64) for path in paths])
        # cum[i, t]: transitions and emissions along path i from token 1 to t (0 past its end).
        steps = np.arange(1, p.shape[1])[None, :]
        step = np.zeros(p.shape)
        step[:, 1:] = arrays.transitions[p[:, :-1], p[:, 1:]]
        step[:, 1:] += self.emissions[at_rows[:, None], steps, p[:, 1:]]
        cum = np.cumsum(step if on is None else np.where(on, step, 0.0), axis=1)
        # One entry per span: i indexes paths, r the lattice's rows.
        i = np.repeat(np.arange(len(paths)), counts)
        r = at_rows[i]
        first, end, inside = np.array([s for row_spans in spans for s in row_spans]).T
        n = lengths[i]
        with np.errstate(divide="ignore", over="ignore"):  # an underflowed score: probability 0
            log_p = np.log(self.alpha[r, first, p[i, first]]) + self.log_alpha[r, first]
            log_p += cum[i, end - 1] - cum[i, first] - self.log_z[r]
            closed = end >= n  # the path's last token: the end score
            log_p[closed] += arrays.end[p[i[closed], n[closed] - 1]]
            if not closed.all():
                open_ = ~closed
                io, ro, at = i[open_], r[open_], end[open_]
                tail = self._tails(ro, at, p[io, at - 1], inside[open_])
                log_p[open_] += tail + arrays.t_max + self.em_max[ro, at] + self.log_beta[ro, at]
            probs: list[float] = np.minimum(np.exp(log_p), 1.0).tolist()
        if len(paths) == 1:
            return [probs]
        bounds = np.cumsum([0, *counts]).tolist()
        return [probs[a:b] for a, b in itertools.pairwise(bounds)]

    def _tails(
        self, rows: np.ndarray, at: np.ndarray, last: np.ndarray, no: np.ndarray
    ) -> np.ndarray:
        """``log`` of the scaled sums over the tags at token ``at`` of row ``rows`` but ``no``
        (-1: none) after tag ``last``, in probability space; in log space where such a sum
        may have underflowed."""
        terms = self.arrays.exp_transitions[last] * self.probs[rows, at] * self.beta[rows, at]
        ext = np.flatnonzero(no >= 0)
        terms[ext, no[ext]] = 0.0  # the span would go on
        sums = terms.sum(axis=1)
        if sums.min() > _TINY_SUM:
            out: np.ndarray = np.log(sums)
            return out
        arrays = self.arrays
        logs = arrays.transitions[last] + self.emissions[rows, at] + np.log(self.beta[rows, at])
        logs[ext, no[ext]] = -np.inf
        top = logs.max(axis=1)
        safe = np.where(np.isfinite(top), top, 0.0)
        exact: np.ndarray = np.log(np.exp(logs - safe[:, None]).sum(axis=1)) + safe
        exact -= arrays.t_max + self.em_max[rows, at]
        return exact


def decode_lattice(
    emissions: np.ndarray,
    lengths: Sequence[int],
    arrays: CRFArrays,
    scaled: CRFArrays | None = None,
    temperature: float = 1.0,
) -> tuple[list[list[int]], Lattice]:
    """Viterbi paths and the forward-backward :class:`Lattice`.

    ``emissions`` ``(batch, seq_len, num_tags)`` float32 (the network's output), ``lengths``
    per row (>= 1). The paths are :func:`viterbi_decode`'s over ``arrays`` (the same float32
    sums, so the same paths), taken from the marginals where they prove a path the best
    (:func:`_sure_paths`: a confident utterance, most of them) and from Viterbi for the other
    rows; the lattice is of the CRF ``scaled`` (default: ``arrays``)
    over ``emissions / temperature`` in float64 (the calibrated marginals). The
    forward-backward recursions run in probability space, each step one matrix product
    with ``exp(transitions - t_max)`` and a rescaling, about a third of the NumPy calls of
    the log-space :func:`forward_backward_arrays`; where scores lie so far apart that
    probabilities could underflow (emissions hundreds apart), the lattice is that function's.
    """
    em32 = np.asarray(emissions, dtype=np.float32)
    lens = np.asarray(lengths, dtype=np.int64)
    if em32.ndim != 3 or lens.shape != em32.shape[:1] or em32.shape[1] == 0:
        raise ValueError(f"expected (batch, seq_len >= 1, num_tags) emissions, got {em32.shape}")
    batch, seq_len, num_tags = em32.shape
    if arrays.transitions.shape != (num_tags, num_tags):
        raise ValueError(f"expected transitions for {num_tags} tags")
    if batch and (lens.min() < 1 or lens.max() > seq_len):
        raise ValueError(f"expected lengths in 1..{seq_len}, got {lens.tolist()}")
    marg = scaled or arrays
    if batch == 1 and lens[0] == seq_len and native.active(1, native.CRF_ROWS):
        one = _decode_row(em32[0], arrays, marg, temperature)
        if one is not None:
            return one
    # Longest rows first, as in viterbi_decode: the rows running at step t are a prefix.
    order = np.argsort(-lens, kind="stable")
    if batch > 1:
        em32, lens = em32[order], lens[order]
    running = (lens[None, :] > np.arange(seq_len)[:, None]).sum(axis=1).tolist()
    em = em32.astype(np.float64)
    if temperature != 1.0:
        em = em / temperature  # as models.calibration.scale_logits
    em_max = em.max(axis=2)
    probs = np.exp(em - em_max[:, :, None])
    exp_t, exp_tt = marg.exp_transitions, marg.exp_transitions_t
    alpha = np.zeros((batch, seq_len, num_tags))
    beta = np.zeros((batch, seq_len, num_tags))
    sums_a, sums_b = np.ones((batch, seq_len)), np.ones((batch, seq_len))
    # A step scales the scores down by at most its spread and up by at most num_tags: they
    # are rescaled only when that could add up to _RESCALE since the last time (for a
    # calibrated tagger's emissions, once or twice per utterance), two NumPy calls a step.
    spreads = em_max - em.min(axis=2)
    costs = (spreads.max(axis=0) + marg.spread + math.log(num_tags)).tolist()
    forward_rescales = _rescales(costs[1:])
    backward_rescales = _rescales(costs[:0:-1])
    head = marg.start + em[:, 0]
    head_max = head.max(axis=1)
    alpha[:, 0] = np.exp(head - head_max[:, None])
    sums_a[:, 0] = alpha[:, 0].sum(axis=1)
    alpha[:, 0] /= sums_a[:, 0, None]
    rows = np.arange(batch)
    end_max = float(marg.end.max())
    end_probs = np.exp(marg.end - end_max)
    end_sum = float(end_probs.sum())
    beta[rows, lens - 1] = end_probs / end_sum
    # Both recursions, compiled where built (models/_native.c: one call instead of about
    # five NumPy calls a token), else in NumPy; the same sums to float64 rounding.
    passes = native.lattice_passes if native.active(batch, native.CRF_ROWS) else _lattice_passes
    passes(
        alpha,
        beta,
        (sums_a, sums_b),
        probs,
        (exp_t, exp_tt),
        running,
        (forward_rescales, backward_rescales),
    )
    inside = np.arange(seq_len)[None, :] < lens[:, None]
    spread = float(spreads[inside].max()) + marg.spread
    kept = (
        spread <= _SPREAD
        and (sums_a[inside] > 0).all()
        and (sums_b[inside] > 0).all()
        and (alpha[rows, lens - 1].sum(axis=1) > 0).all()
        and (beta[:, 0].sum(axis=1) > 0).all()
    )
    if kept:
        steps_a = marg.t_max + em_max + np.log(sums_a)
        steps_a[:, 0] = head_max + np.log(sums_a[:, 0])
        log_alpha = np.cumsum(steps_a, axis=1)
        steps_b = np.zeros((batch, seq_len))
        before_end = np.arange(seq_len - 1)[None, :] < (lens - 1)[:, None]
        steps_b[:, :-1] = np.where(
            before_end, marg.t_max + em_max[:, 1:] + np.log(sums_b[:, :-1]), 0.0
        )
        steps_b[rows, lens - 1] = end_max + np.log(end_sum)
        log_beta = np.cumsum(steps_b[:, ::-1], axis=1)[:, ::-1]
        log_z = log_alpha[rows, lens - 1] + np.log(alpha[rows, lens - 1] @ end_probs) + end_max
    else:  # underflow: the log-space pass, as a lattice
        log_a, log_b, log_z = forward_backward_arrays(em, inside, marg)
        log_alpha, log_beta = log_a.max(axis=2), log_b.max(axis=2)
        alpha = np.exp(log_a - log_alpha[:, :, None])
        beta = np.exp(log_b - log_beta[:, :, None])
    tags, sure = _sure_paths(em, inside, alpha * beta, log_z, marg)
    if not sure.all():  # Viterbi for the rows whose best path the marginals leave in doubt
        doubt = np.flatnonzero(~sure)
        for row, path in zip(
            doubt, viterbi_arrays(em32[doubt], inside[doubt], arrays), strict=True
        ):
            tags[row, : len(path)] = path
    if batch > 1:
        back = np.empty_like(order)
        back[order] = np.arange(batch)
        tags, lens = tags[back], lens[back]
        em, probs, em_max, alpha, beta = (
            em[back],
            probs[back],
            em_max[back],
            alpha[back],
            beta[back],
        )
        log_alpha, log_beta, log_z = log_alpha[back], log_beta[back], log_z[back]
    paths = [row[:n] for row, n in zip(tags.tolist(), lens.tolist(), strict=True)]
    lattice = Lattice(em, probs, em_max, alpha, beta, log_alpha, log_beta, log_z, marg)
    return paths, lattice


def _decode_row(
    em32: np.ndarray, arrays: CRFArrays, marg: CRFArrays, temperature: float
) -> tuple[list[list[int]], Lattice] | None:
    """:func:`decode_lattice` of one row of ``(n, k)`` float32 emissions by the compiled
    kernel (``models/_native.c``: the same steps in one call); None where its probability
    space may have underflowed (the caller's log-space pass takes over)."""
    n, k = em32.shape
    em, probs, alpha, beta = (np.empty((1, n, k)) for _ in range(4))
    em_max, log_alpha, log_beta = (np.empty((1, n)) for _ in range(3))
    tags = np.empty(n, dtype=np.int64)
    crf = (marg.start, marg.end, marg.transitions, marg.exp_transitions, marg.exp_transitions_t)
    kept, sure, log_z = native.lattice_row(
        np.ascontiguousarray(em32),
        temperature,
        crf,
        (marg.t_max, marg.spread, _SPREAD, _RESCALE, _SURE),
        (em, probs, em_max, alpha, beta, log_alpha, log_beta, tags),
    )
    if not kept:
        return None
    path = tags.tolist()
    if not sure:  # the marginals leave the best path in doubt
        path = viterbi_arrays(em32[None], np.ones((1, n), dtype=bool), arrays)[0]
    lattice = Lattice(em, probs, em_max, alpha, beta, log_alpha, log_beta, np.array([log_z]), marg)
    return [path], lattice


def _lattice_passes(
    alpha: np.ndarray,
    beta: np.ndarray,
    sums: tuple[np.ndarray, np.ndarray],
    probs: np.ndarray,
    exp_transitions: tuple[np.ndarray, np.ndarray],
    running: Sequence[int],
    rescales: tuple[Sequence[bool], Sequence[bool]],
) -> None:
    """:func:`decode_lattice`'s forward and backward recursions (as
    :func:`models.native.lattice_passes` runs them compiled): each step one matrix product
    with ``exp(transitions - t_max)`` and, where ``rescales`` says, a rescaling to sum 1."""
    (sums_a, sums_b), (exp_t, exp_tt) = sums, exp_transitions
    seq_len = alpha.shape[1]
    work = np.empty((alpha.shape[0], alpha.shape[2]))
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(1, seq_len):
            k = running[t]
            nxt = alpha[:k, t]
            np.matmul(alpha[:k, t - 1], exp_t, out=nxt)
            nxt *= probs[:k, t]
            if rescales[0][t - 1]:
                total = nxt.sum(axis=1, keepdims=True)
                nxt /= total
                sums_a[:k, t] = total[:, 0]
        for t in range(seq_len - 1, 0, -1):
            k = running[t]
            into = beta[:k, t - 1]
            np.matmul(np.multiply(probs[:k, t], beta[:k, t], out=work[:k]), exp_tt, out=into)
            if rescales[1][seq_len - 1 - t]:
                total = into.sum(axis=1, keepdims=True)
                into /= total
                sums_b[:k, t - 1] = total[:, 0]


def _sure_paths(
    em: np.ndarray, inside: np.ndarray, weights: np.ndarray, log_z: np.ndarray, arrays: CRFArrays
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's path of most probable tags, and whether the marginals prove it the best path.

    ``weights`` ``(batch, seq_len, num_tags)`` are proportional, per token, to the marginals of
    the CRF ``arrays`` over the (float64) ``em``; ``inside`` marks the real tokens. A path's
    probability is at most the marginal of each of its tags, so every tag of the best path
    has a marginal of at least the probability of any path ``c``. Where, at every token, only
    ``c``'s tag reaches :data:`_SURE` times ``c``'s probability, ``c`` is the best path: the
    same as Viterbi's, which then need not run. The factor leaves a second tag in, and the row
    to Viterbi, on a tie or near tie (float32 rounding in Viterbi's sums), on a path of low
    probability, and on a ``c`` that breaks a BIO constraint (probability 0)."""
    batch, seq_len, _ = weights.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        marginals = weights / weights.sum(axis=2, keepdims=True)
    tags = marginals.argmax(axis=2)
    rows, cols = np.arange(batch)[:, None], np.arange(seq_len)[None, :]
    lens = inside.sum(axis=1)
    score = arrays.start[tags[:, 0]] + arrays.end[tags[np.arange(batch), lens - 1]]
    score += np.where(inside, em[rows, cols, tags], 0.0).sum(axis=1)
    steps = arrays.transitions[tags[:, :-1], tags[:, 1:]]
    score += np.where(inside[:, 1:], steps, 0.0).sum(axis=1)
    bound = _SURE * np.exp(score - log_z)
    rivals = (marginals >= bound[:, None, None]).sum(axis=2)  # NaN marginals: 0 rivals
    sure: np.ndarray = ((rivals == 1) | ~inside).all(axis=1)
    return tags, sure


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
    import torch

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
    z = float(log_z.item()) if hasattr(log_z, "item") else float(log_z)
    return score - z


def log_likelihood(emissions: Tensor, tag_ids: Tensor, mask: Tensor, params: CRFParams) -> Tensor:
    """Per-sequence log-likelihood ``(batch,)`` of ``tag_ids`` ``(batch, seq_len)``.

    The same quantity as ``torchcrf.CRF.forward(..., reduction="none")``, computed with
    the gold score fully vectorised and the partition function as one small matrix
    product per time step (log-sum-exp via ``exp(alpha - max) @ exp(transitions)``),
    which measured several times faster than the broadcast in pytorch-crf on CPU.
    """
    import torch

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
