"""The networks' forward pass in plain NumPy float32 (``SLOTFILL_ENGINE=numpy``).

At batch 1 an 11-token utterance is a few hundred tiny operations; torch spends far more
time dispatching them than computing (benchmarks/profile_parse.py), NumPy several times less
per call. The weights are the artifact's own (a loaded model's ``state_dict``), evaluation
mode only (no dropout). Both recurrent directions run as one batched matrix product per
step. Results match the torch model to float32 rounding (tests/models/test_engine.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from models import native
from models.crf import CRFArrays, bio_allowed
from models.features import BIGRAM_PRIME, TokenArrays, TokenBatch
from models.predictor import (
    ArraySentiment,
    ArrayTagger,
    SentimentPredictor,
    SlotTaggerPredictor,
    is_transformer,
)

if TYPE_CHECKING:  # no torch at run time: a NumPy-engine worker never imports it
    import torch

    from models.layers import EncoderConfig
    from models.sentiment import LSTMSentimentClassifier
    from models.slot_tagger import BiLSTMCRFTagger
    from models.transformer import TransformerSentimentClassifier, TransformerSentimentConfig

Engine = Literal["torch", "numpy"]
ENGINES: tuple[str, ...] = ("torch", "numpy")
F32 = np.float32
_HALF = F32(0.5)
_MASKED = F32(-1.0e4)  # as models.layers.masked_pool and the sentiment attention
_GATES = {"lstm": 4, "gru": 3, "irnn": 1}
# Per recurrent step, an array (2, rows, n): a list of them, or one array over steps.
Steps = Sequence[np.ndarray] | np.ndarray
# Most bytes of first-layer input projections precomputed per word id, per network.
FOLD_BYTES = 16 << 20
# Most bytes of projected token rows kept per network (Embedder.project), filled once.
TOKEN_CACHE_BYTES = 8 << 20


def state_arrays(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """A model's weights as float32 NumPy arrays, sharing memory with the model's CPU float32
    tensors (a served model's weights never change; a copy would double the pretrained
    vectors in every worker)."""
    return {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class Weights:
    """A network without torch: its state as float32 arrays (``state_dict`` names, as the
    artifact's safetensors file holds them), its manifest config and, for a tagger, its tags
    (the CRF's BIO constraints). What :mod:`models.artifact` builds an engine from."""

    arrays: Mapping[str, np.ndarray]
    config: Any  # the model's TaggerConfig / SentimentConfig, or the manifest's view of it
    tags: Sequence[str] = ()

    def crf(self) -> CRFArrays:
        """The constrained CRF scores, as ``BiLSTMCRFTagger.crf_params()`` gives them."""
        w = self.arrays
        allowed = bio_allowed(self.tags)
        start, trans = w["crf.start_transitions"], w["crf.transitions"]
        return CRFArrays.constrained(start, trans, w["crf.end_transitions"], allowed)


class Embedder:
    """:class:`models.layers.TokenEmbedder`: word ++ pretrained vector ++ char CNN ++ shape."""

    def __init__(self, w: Mapping[str, np.ndarray], config: EncoderConfig, prefix: str) -> None:
        self.words = w[f"{prefix}words.weight"]
        self.trained_words = self.words.shape[0]
        self.vectors = w.get(f"{prefix}vectors") if config.pretrained_dim else None
        # The character CNN as table look-ups: tap k of the width-3 convolution maps a
        # character to chars[id] @ weight[:, :, k].T, computed once per character here.
        # Row ``len(chars)`` is the convolution's zero padding; in the centre tap, the
        # padding id 0 (a position past the word's end) scores -inf, so the max over
        # positions skips it, and the ReLU after the max gives 0 for an all-padding token.
        self.taps: list[np.ndarray] | None = None
        if config.char_filters > 0:
            chars = w[f"{prefix}chars.weight"]
            conv = w[f"{prefix}char_conv.weight"]  # (filters, char_dim, 3)
            bias = w[f"{prefix}char_conv.bias"]
            zero = np.zeros((1, conv.shape[0]), dtype=F32)
            self.taps = [np.concatenate([chars @ conv[:, :, k].T, zero]) for k in range(3)]
            self.taps[1] = self.taps[1] + bias
            self.taps[1][0] = -np.inf
            self.edge = chars.shape[0]
        self.shapes = w.get(f"{prefix}shapes.weight") if config.shape_dim else None

    def fold(self, proj: np.ndarray, bias: np.ndarray) -> None:
        """Fold the first recurrent layer's input projection ``proj`` ``(dim, out)`` (rows in
        the order word ++ vector ++ chars ++ shape ++ any extra input) into look-up tables:
        the word and vector part of the first ids (the vocabulary is most frequent first),
        within :data:`FOLD_BYTES`, and the shape part of every shape. At batch 1 a gather of
        a dozen rows costs a fraction of the matrix product it replaces."""
        sizes = [self.words.shape[1], 0 if self.vectors is None else self.vectors.shape[1]]
        sizes += [0 if self.taps is None else self.taps[0].shape[1]]
        sizes += [0 if self.shapes is None else self.shapes.shape[1]]
        cuts = np.cumsum(sizes)
        self.proj_words, self.proj_vectors = proj[: cuts[0]], proj[cuts[0] : cuts[1]]
        self.proj_chars, self.proj_extra = proj[cuts[1] : cuts[2]], proj[cuts[3] :]
        self.bias = bias
        vocab = self.words.shape[0] if self.vectors is None else self.vectors.shape[0]
        rows = max(1, min(vocab, FOLD_BYTES // (proj.shape[1] * proj.itemsize)))
        self.folded = self._words_part(np.arange(rows)) + bias
        self.folded_shapes = None if self.shapes is None else self.shapes @ proj[cuts[2] : cuts[3]]
        # Rows of the tokens met while serving (project): token key -> row of the table,
        # swapped for an empty pair when full (a reader keeps the pair it took). Pages are
        # touched only when used.
        capacity = max(1, TOKEN_CACHE_BYTES // (proj.shape[1] * 4))
        self.cache: tuple[dict[bytes, int], np.ndarray] = (
            {},
            np.empty((capacity, proj.shape[1]), F32),
        )
        self.lock = threading.Lock()

    def _words_part(self, ids: np.ndarray) -> np.ndarray:
        trained = np.where(ids >= self.trained_words, 1, ids)
        out: np.ndarray = self.words[trained] @ self.proj_words
        if self.vectors is not None:
            out += self.vectors[ids] @ self.proj_vectors
        return out

    def project(
        self,
        token_ids: np.ndarray,
        char_ids: np.ndarray,
        shape_ids: np.ndarray,
        extra: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(tokens, out)``: the token vectors of the given (real, unpadded) tokens, with
        ``extra`` inputs ``(tokens, n)`` after them, times the folded projection, plus its
        bias. A token's row depends on its ids alone, so the rows of the tokens met are kept
        (:data:`TOKEN_CACHE_BYTES`): a repeated token costs a dictionary look-up instead of
        its character CNN and a dozen NumPy calls per utterance."""
        ids = np.concatenate(
            [token_ids[:, None], shape_ids[:, None], char_ids], axis=1, dtype=np.int64
        )
        keys, size = ids.tobytes(), ids.shape[1] * 8
        known, table = self.cache
        rows = [known.get(keys[i : i + size], -1) for i in range(0, len(keys), size)]
        out: np.ndarray = table[rows]
        if -1 in rows:  # new tokens: computed (their -1 rows above are placeholders), kept
            miss = [i for i, r in enumerate(rows) if r < 0]
            fresh = self._project(ids[miss, 0], ids[miss, 2:], ids[miss, 1])
            out[miss] = fresh
            self._keep([keys[i * size : (i + 1) * size] for i in miss], fresh)
        if extra is not None:
            out += extra @ self.proj_extra
        return out

    def _keep(self, keys: list[bytes], rows: np.ndarray) -> None:
        """Keep the projected ``rows`` of the tokens ``keys``; a full cache starts over
        (frequent tokens come back first). A row is written before its key is published and
        never rewritten: a full cache is replaced, not reused."""
        with self.lock:
            known, table = self.cache
            if len(known) + len(keys) > len(table):
                if len(keys) > len(table):
                    return
                known, table = {}, np.empty_like(table)
                self.cache = (known, table)
            for key, row in zip(keys, rows, strict=True):
                if key not in known:
                    table[len(known)] = row
                    known[key] = len(known)

    def _project(
        self, token_ids: np.ndarray, char_ids: np.ndarray, shape_ids: np.ndarray
    ) -> np.ndarray:
        """:meth:`project` without the cache and the extra inputs."""
        rows = self.folded.shape[0]
        out: np.ndarray = self.folded[np.minimum(token_ids, rows - 1)]
        rare = token_ids >= rows
        if rare.any():
            out[rare] = self._words_part(token_ids[rare]) + self.bias
        if self.taps is not None:
            out += self._char_cnn(char_ids) @ self.proj_chars
        if self.folded_shapes is not None:
            out += self.folded_shapes[shape_ids]
        return out

    def _char_cnn(self, char_ids: np.ndarray) -> np.ndarray:
        assert self.taps is not None
        n, c = char_ids.shape
        # Columns past the longest word are padding; one is kept so that the last real
        # character's window sees the padding character, as torch's convolution does.
        c = min(c, int((char_ids != 0).sum(axis=1).max()) + 1)
        ids = np.full((n, c + 2), self.edge, dtype=char_ids.dtype)
        ids[:, 1:-1] = char_ids[:, :c]
        left, centre, right = self.taps
        conv = left[ids[:, :-2]]
        conv += centre[ids[:, 1:-1]]
        conv += right[ids[:, 2:]]
        out: np.ndarray = np.maximum(conv.max(axis=1), 0.0)
        return out


class BiRNN:
    """A bidirectional ``nn.LSTM``/``nn.GRU``/ReLU ``nn.RNN`` (batch first), as
    :func:`models.layers.run_rnn` runs it: each direction starts at its sequence's real end,
    and padding positions come out zero.

    At batch 1 a step is a matrix-vector product over the recurrent weights (the floor: they
    outgrow the L2 cache) plus a few elementwise calls whose dispatch costs more than their
    arithmetic, so a step makes as few NumPy calls as it can, into preallocated buffers."""

    def __init__(self, w: Mapping[str, np.ndarray], config: EncoderConfig, prefix: str) -> None:
        self.cell = config.cell
        self.hidden = config.hidden_size
        gates = _GATES[self.cell]
        h = self.hidden
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.halves: list[tuple[np.ndarray, np.ndarray]] = []  # per layer: float16, widened
        for layer in range(config.num_layers):
            names = [f"l{layer}", f"l{layer}_reverse"]
            w_ih = [w[f"{prefix}weight_ih_{n}"] for n in names]  # (gates*h, in)
            w_hh = [w[f"{prefix}weight_hh_{n}"] for n in names]  # (gates*h, h)
            b_ih = [w[f"{prefix}bias_ih_{n}"] for n in names]
            b_hh = [w[f"{prefix}bias_hh_{n}"] for n in names]
            if self.cell == "lstm":  # torch's gate order i, f, g, o -> o, i, f, g
                order = np.r_[3 * h : 4 * h, 0 : 3 * h]
                w_ih, w_hh = [m[order] for m in w_ih], [m[order] for m in w_hh]
                b_ih, b_hh = [v[order] for v in b_ih], [v[order] for v in b_hh]
            # Input projection of both directions in one product; the hidden bias is folded
            # in except a GRU's candidate part, which its reset gate scales.
            bias = [bi + bh for bi, bh in zip(b_ih, b_hh, strict=True)]
            hh_bias = [np.zeros_like(bh) for bh in b_hh]
            if self.cell == "gru":
                bias = [
                    np.concatenate([bi[: 2 * h] + bh[: 2 * h], bi[2 * h :]])
                    for bi, bh in zip(b_ih, b_hh, strict=True)
                ]
                hh_bias = [np.concatenate([np.zeros(2 * h, F32), bh[2 * h :]]) for bh in b_hh]
            scale = self._scale(gates)
            proj = np.ascontiguousarray(np.concatenate([m.T * scale for m in w_ih], axis=1))
            proj_bias = np.concatenate([b * scale for b in bias])
            rec = np.ascontiguousarray(np.stack([m.T * scale for m in w_hh]))  # (2, h, g*h)
            rec_bias = np.stack([b * scale for b in hh_bias])[:, None, :]  # (2, 1, g*h)
            self.layers.append((proj, proj_bias, rec, rec_bias))
            # native.half_weights(): the kernels read the halves (in their panels), the NumPy
            # loops the halves widened (the same values); chosen per call, as the kernels are.
            half = rec.astype(np.float16)
            self.halves.append((native.panels(half), half.astype(F32)))

    def _scale(self, gates: int) -> np.ndarray:
        """Per gate row: 0.5 for sigmoid gates, so that one ``tanh`` over all gates gives
        ``sigmoid(x) = (tanh(x / 2) + 1) / 2`` for them (exact: halving is exact in float)."""
        h = self.hidden
        scale = np.ones(gates * h, dtype=F32)
        if self.cell == "lstm":  # gates o, i, f, g (reordered): g is the tanh one
            scale[: 3 * h] = 0.5
        elif self.cell == "gru":  # gates r, z, n
            scale[: 2 * h] = 0.5
        return scale

    def __call__(self, projected: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(batch, seq_len, 2 * hidden)`` states, given the first layer's projected inputs
        of the real tokens ``(tokens, 2 * gates * hidden)`` (see :meth:`Embedder.fold`)."""
        return padded(self.real(projected, mask), mask)

    def real(self, projected: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(tokens, 2 * hidden)``: the states of the real tokens only, in the order of
        ``projected`` (what the heads read: no work on padding)."""
        states = projected
        for index, (proj, proj_bias, _, rec_bias) in enumerate(self.layers):
            if index:
                states = states @ proj + proj_bias
            states = self._layer(states, mask, index, rec_bias)
        return states

    def _layer(
        self, xp: np.ndarray, mask: np.ndarray, index: int, rec_bias: np.ndarray
    ) -> np.ndarray:
        b, t = mask.shape
        compiled = self.cell == "lstm" and native.active(b, native.LSTM_ROWS)
        rec = self.layers[index][2]
        if native.half_weights():
            rec = self.halves[index][0 if compiled else 1]
        h, g = self.hidden, rec.shape[2]
        if compiled and b == 1:  # one sentence: the kernel reads and writes its layout as is
            states = np.empty((len(xp), 2 * h), dtype=F32)
            native.lstm_row(np.ascontiguousarray(xp), states, rec)
            return states
        # Per step: the inputs (2, rows, g) and where its states go (2, rows, h).
        inputs: Steps
        outputs: Steps
        if not compiled and len(xp) == b * t:  # no padding: every row runs every step
            x = xp.reshape(b, t, 2, g)
            by_step = np.empty((t, 2, b, g), dtype=F32)
            by_step[:, 0] = x[:, :, 0].swapaxes(0, 1)
            by_step[:, 1] = x[:, ::-1, 1].swapaxes(0, 1)
            out = np.empty((t, 2, b, h), dtype=F32)
            self._steps(by_step, out, rec, rec_bias)
            # (t, b, 2h) -> the tokens row by row
            states = np.concatenate([out[:, 0], out[::-1, 1]], axis=2).swapaxes(0, 1)
            return states.reshape(b * t, 2 * h)
        # Packed-sequence order: rows longest first, so the rows still running at step s
        # are a prefix of the batch and padding costs nothing. Step s reads position s
        # forwards and position length - 1 - s backwards: the real tokens at ``fwd`` and
        # ``bwd``, gathered (and their states written back) in that order; nothing padded.
        fwd, bwd, counts = _packed_order(mask)
        # One gather of half rows: (token, direction) -> row 2 * token + direction.
        halves = np.concatenate([2 * fwd, 2 * bwd + 1])
        gathered = xp.reshape(-1, g)[halves].reshape(2, len(fwd), g)
        out = np.empty((2, len(fwd), h), dtype=F32)
        if compiled:  # every step in one call (models/_native.c)
            native.lstm_layer(gathered, out, rec, counts)
        else:
            first = (np.cumsum(counts) - counts).tolist()
            running = counts.tolist()
            inputs = [gathered[:, i : i + k] for i, k in zip(first, running, strict=True)]
            outputs = [out[:, i : i + k] for i, k in zip(first, running, strict=True)]
            self._steps(inputs, outputs, rec, rec_bias)
        states = np.empty((len(fwd), 2 * h), dtype=F32)
        states[fwd, :h] = out[0]
        states[bwd, h:] = out[1]
        return states

    def _steps(self, inputs: Steps, outputs: Steps, rec: np.ndarray, rec_bias: np.ndarray) -> None:
        if self.cell == "lstm":
            self._lstm(inputs, outputs, rec)
        elif self.cell == "gru":
            self._gru(inputs, outputs, rec, rec_bias)
        else:
            self._irnn(inputs, outputs, rec)

    def _lstm(self, inputs: Steps, outputs: Steps, rec: np.ndarray) -> None:
        """The LSTM steps. Per row, ``work`` holds the gates o, i, f (sigmoids), the
        candidate g, then the cell c, so that one product ``[i, f] * [g, c]`` and one sum
        give the new cell."""
        h, b = self.hidden, inputs[0].shape[1]
        work = np.zeros((2, b, 5 * h), dtype=F32)
        prod = np.empty((2, b, 2 * h), dtype=F32)
        squashed = np.empty((2, b, h), dtype=F32)
        matmul, add, multiply, tanh = np.matmul, np.add, np.multiply, np.tanh  # local: faster
        state = work[:, :, :0]  # no state before the first step
        k = -1
        for s, (x, dest) in enumerate(zip(inputs, outputs, strict=True)):
            if x.shape[1] != k:  # fewer rows still running (packed order): narrower views
                k = x.shape[1]
                w = work[:, :k]
                pre, sig, i_f = w[..., : 4 * h], w[..., : 3 * h], w[..., h : 3 * h]
                g_c, cell, o = w[..., 3 * h :], w[..., 4 * h :], w[..., :h]
                p, tc = prod[:, :k], squashed[:, :k]
                p_ig, p_fc = p[..., :h], p[..., h:]
                state = state[:, :k]
            if s:
                matmul(state, rec, pre)
                add(pre, x, pre)
            else:  # the state starts at zero: no product
                np.copyto(pre, x)
            tanh(pre, pre)
            multiply(sig, _HALF, sig)  # sigmoid(x) = (tanh(x / 2) + 1) / 2 on o, i, f
            add(sig, _HALF, sig)
            multiply(i_f, g_c, p)  # i * g, f * c
            add(p_ig, p_fc, cell)
            tanh(cell, tc)
            state = multiply(o, tc, dest)

    def _gru(
        self,
        inputs: Steps,
        outputs: Steps,
        rec: np.ndarray,
        rec_bias: np.ndarray,
    ) -> None:
        """The GRU steps: ``h' = n + z * (h - n)``, ``n = tanh(x_n + r * (W_hn h + b_hn))``."""
        h, b = self.hidden, inputs[0].shape[1]
        hh = np.empty((2, b, 3 * h), dtype=F32)
        diff = np.empty((2, b, h), dtype=F32)
        state = np.zeros((2, b, h), dtype=F32)
        k = -1
        for s, (x, dest) in enumerate(zip(inputs, outputs, strict=True)):
            if x.shape[1] != k:
                k = x.shape[1]
                m = hh[:, :k]
                rz, r, z, n = m[..., : 2 * h], m[..., :h], m[..., h : 2 * h], m[..., 2 * h :]
                d, state = diff[:, :k], state[:, :k]
            if s:
                np.matmul(state, rec, out=m)
                np.add(m, rec_bias, out=m)
            else:
                np.copyto(m, rec_bias)
            np.add(rz, x[..., : 2 * h], out=rz)
            np.tanh(rz, out=rz)
            np.multiply(rz, _HALF, out=rz)
            np.add(rz, _HALF, out=rz)
            np.multiply(n, r, out=n)
            np.add(n, x[..., 2 * h :], out=n)
            np.tanh(n, out=n)
            np.subtract(state, n, out=d)
            np.multiply(d, z, out=d)
            state = np.add(n, d, out=dest)

    def _irnn(self, inputs: Steps, outputs: Steps, rec: np.ndarray) -> None:
        """The ReLU RNN steps: ``h' = max(x + W h, 0)``."""
        hh = np.empty((2, inputs[0].shape[1], self.hidden), dtype=F32)
        state = hh
        for s, (x, dest) in enumerate(zip(inputs, outputs, strict=True)):
            k = x.shape[1]
            if s:
                pre = np.matmul(state[:, :k], rec, out=hh[:, :k])
                np.add(pre, x, out=pre)
                x = pre
            state = np.maximum(x, 0.0, out=dest)


def _packed_order(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The real tokens' indices (row by row) in packed-sequence order, forwards and
    backwards, and the rows running at each step: rows longest first, so that those still
    running at step ``s`` are a prefix; step ``s`` reads position ``s`` of each forwards and
    position ``length - 1 - s`` backwards."""
    b, t = mask.shape
    if b == 1:
        steps = np.arange(int(mask.sum()))
        return steps, steps[::-1].copy(), np.ones(len(steps), dtype=np.int64)
    lengths = mask.sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    longest = lengths[order]
    counts = (longest[None, :] > np.arange(t)[:, None]).sum(axis=1)  # rows per step
    steps = np.arange(t)[:, None]
    real = steps < longest[None, :]
    at = (np.cumsum(lengths) - lengths)[order][None, :]  # first token of each row
    fwd = (at + steps)[real]
    bwd = (at + np.maximum(longest[None, :] - 1 - steps, 0))[real]
    return fwd, bwd, counts.astype(np.int64)


def padded(real: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(batch, seq_len, dim)`` from the real tokens' rows ``(tokens, dim)``; padding 0."""
    b, t = mask.shape
    if len(real) == b * t:
        return real.reshape(b, t, -1)
    states = np.zeros((b, t, real.shape[1]), dtype=F32)
    states[mask] = real
    return states


def pool(real: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`models.layers.masked_pool` (max ++ mean over real positions), from the real
    tokens' rows ``(tokens, dim)``."""
    if mask.shape[0] == 1:
        return np.concatenate([real.max(axis=0), real.sum(axis=0) / F32(len(real))])[None]
    lengths = mask.sum(axis=1)
    ends = np.cumsum(lengths).tolist()
    pooled = np.empty((len(ends), 2, real.shape[1]), dtype=F32)
    maximum, add = np.maximum.reduce, np.add.reduce  # a call per row: reduceat is slower
    for row, (start, end) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
        maximum(real[start:end], 0, None, pooled[row, 0])
        add(real[start:end], 0, None, pooled[row, 1])
    pooled[:, 1] /= lengths[:, None].astype(F32)
    return pooled.reshape(len(ends), -1)


def wide_term(
    words: np.ndarray, bigrams: np.ndarray, token_ids: np.ndarray, mask: np.ndarray
) -> np.ndarray:
    """:func:`models.layers.wide_term` in evaluation: word and hashed-bigram weights summed
    over the real tokens, ``(batch, classes)``."""
    if mask.shape[0] == 1 and mask.all():  # one sentence, no padding: no masks to apply
        ids = token_ids[0]
        hashed_row = (ids[:-1] * BIGRAM_PRIME + ids[1:]) % bigrams.shape[0]
        row: np.ndarray = words[ids].sum(axis=0)
        row += bigrams[hashed_row].sum(axis=0)
        return row[None]
    pairs = (mask[:, 1:] & mask[:, :-1])[:, :, None]
    hashed = (token_ids[:, :-1] * BIGRAM_PRIME + token_ids[:, 1:]) % bigrams.shape[0]
    total: np.ndarray = (words[token_ids] * mask[:, :, None]).sum(axis=1)
    total += (bigrams[hashed] * pairs).sum(axis=1)
    return total


def _arrays(
    batch: TokenBatch | TokenArrays,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The batch's index arrays and mask, without copies (CPU tensors share memory)."""
    return (
        np.asarray(batch.token_ids),
        np.asarray(batch.char_ids),
        np.asarray(batch.shape_ids),
        np.asarray(batch.mask),
    )


class NumpyTagger(ArrayTagger):
    """:class:`models.slot_tagger.BiLSTMCRFTagger`'s forward pass: :meth:`arrays` (what the
    predictor runs); called as the torch model is, the same outputs as float32 tensors."""

    def __init__(self, model: BiLSTMCRFTagger | Weights) -> None:
        if isinstance(model, Weights):
            w, self.crf = model.arrays, model.crf()
        else:
            w, self.crf = state_arrays(model), CRFArrays.of(model.crf_params())
        config = self.config = model.config
        self.embedder = Embedder(w, config, "embedder.")
        self.rnn = BiRNN(w, config, "rnn.")
        self.embedder.fold(*self.rnn.layers[0][:2])
        self.requested = w["requested.weight"].T.copy() if config.num_requested else None
        self.emit_w, self.emit_b = w["emit.weight"].T.copy(), w["emit.bias"]
        self.intent = (
            (w["intent.weight"].T.copy(), w["intent.bias"]) if config.num_intents else None
        )
        self.wide = (
            (w["wide_words.weight"], w["wide_bigrams.weight"]) if "wide_words.weight" in w else None
        )
        # Label attention's queries and values side by side, ``(hidden, 2 * intents)``: the
        # states meet both in one product.
        self.label_attention = (
            np.concatenate([w["intent_queries.weight"].T, w["intent_values"].T], axis=1)
            if "intent_values" in w
            else None
        )
        self.token_intent = (
            (w["token_intent.weight"].T.copy(), w["token_intent.bias"])
            if "token_intent.weight" in w
            else None
        )
        # The heads that read the states token by token (emissions, label attention's
        # queries and values, token votes) side by side: one product (arrays).
        heads = [(self.emit_w, self.emit_b)]
        if self.label_attention is not None:
            heads.append((self.label_attention, np.zeros(self.label_attention.shape[1], F32)))
        if self.token_intent is not None:
            heads.append(self.token_intent)
        self.heads_w = np.ascontiguousarray(np.concatenate([m for m, _ in heads], axis=1))
        self.heads_b = np.concatenate([v for _, v in heads])

    def arrays(self, batch: TokenBatch | TokenArrays) -> tuple[np.ndarray, np.ndarray]:
        """Emissions ``(batch, seq_len, num_tags)`` and intent logits ``(batch, intents)``."""
        token_ids, char_ids, shape_ids, mask = _arrays(batch)
        context = None
        if self.requested is not None:
            asked = (
                np.zeros((mask.shape[0], self.requested.shape[0]), dtype=F32)
                if batch.requested is None
                else np.asarray(batch.requested).astype(F32)
            )
            context = np.repeat(asked @ self.requested, mask.sum(axis=1), axis=0)
        inputs = self.embedder.project(token_ids[mask], char_ids[mask], shape_ids[mask], context)
        real = self.rnn.real(inputs, mask)
        # Every head that reads the states token by token, in one product over real tokens.
        out = real @ self.heads_w
        out += self.heads_b
        tags = self.emit_w.shape[1]
        emissions = self._emissions(out[:, :tags], mask)
        if self.intent is None:
            return emissions, np.zeros((mask.shape[0], 0), dtype=F32)
        weight, bias = self.intent
        logits: np.ndarray = pool(real, mask) @ weight + bias
        at, padding = tags, len(real) < mask.size
        if self.label_attention is not None:  # BiLSTMCRFTagger.label_attention
            # sum_t attention[t, c] * (state_t . value_c), the attended state dotted with the
            # value: one product and two sums (a three-operand einsum took 0.2 ms an utterance).
            c = self.label_attention.shape[1] // 2
            both = padded(out[:, at : at + 2 * c], mask)  # (batch, seq_len, 2 * intents)
            scores = both[..., :c]
            if padding:
                scores = np.where(mask[:, :, None], scores, _MASKED)
            weights = np.exp(scores - scores.max(axis=1, keepdims=True))
            logits += (weights * both[..., c:]).sum(axis=1) / weights.sum(axis=1)
            at += 2 * c
        if self.token_intent is not None:  # BiLSTMCRFTagger's token votes
            scores = out[:, at:] - out[:, at:].max(axis=1, keepdims=True)  # (tokens, intents)
            scores -= np.log(np.exp(scores).sum(axis=1, keepdims=True))
            lengths = np.maximum(mask.sum(axis=1, keepdims=True), 1).astype(F32)
            logits += padded(scores, mask).sum(axis=1) / lengths
        if self.wide is not None:  # BiLSTMCRFTagger.wide
            words_w, bigrams_w = self.wide
            words = np.where(token_ids >= words_w.shape[0], 1, token_ids)
            logits += wide_term(words_w, bigrams_w, words, mask)
        return emissions, logits

    def _emissions(self, scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``(batch, seq_len, num_tags)`` from the real tokens' emission scores; a padding
        position gets the bias alone (a zero state), as in torch."""
        b, t = mask.shape
        if len(scores) == b * t:
            return np.ascontiguousarray(scores).reshape(b, t, -1)
        emissions = np.empty((b, t, scores.shape[1]), dtype=F32)
        emissions[:] = self.emit_b
        emissions[mask] = scores
        return emissions

    def __call__(self, batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        emissions, logits = self.arrays(batch)
        return torch.from_numpy(emissions), torch.from_numpy(logits)


class NumpySentiment(ArraySentiment):
    """:class:`models.sentiment.LSTMSentimentClassifier`'s forward pass (label logits)."""

    def __init__(self, model: LSTMSentimentClassifier | Weights) -> None:
        w = model.arrays if isinstance(model, Weights) else state_arrays(model)
        config = self.config = model.config
        self.embedder = Embedder(w, config, "embedder.")
        self.rnn = BiRNN(w, config, "rnn.")
        self.embedder.fold(*self.rnn.layers[0][:2])
        self.attention_w, self.attention_b = w["attention.weight"][0], w["attention.bias"][0]
        self.out_w, self.out_b = w["out.weight"].T.copy(), w["out.bias"]
        self.buckets = config.wide_buckets
        if self.buckets:
            self.wide_words, self.wide_bigrams = w["wide_words.weight"], w["wide_bigrams.weight"]

    def wide(self, token_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The wide term (:func:`wide_term`)."""
        return wide_term(self.wide_words, self.wide_bigrams, token_ids, mask)

    def arrays(self, batch: TokenBatch | TokenArrays) -> np.ndarray:
        """Label logits ``(batch, num_labels)``."""
        token_ids, char_ids, shape_ids, mask = _arrays(batch)
        inputs = self.embedder.project(token_ids[mask], char_ids[mask], shape_ids[mask])
        real = self.rnn.real(inputs, mask)
        states = padded(real, mask)
        scores = states @ self.attention_w + self.attention_b
        if len(real) < mask.size:  # padding: masked out of the attention
            scores = np.where(mask, scores, _MASKED)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights = scores / scores.sum(axis=1, keepdims=True)
        attended = np.matmul(weights[:, None, :], states)[:, 0]
        pooled = np.concatenate([attended, pool(real, mask)], axis=1)
        out: np.ndarray = pooled @ self.out_w + self.out_b
        if self.buckets:
            out = out + self.wide(token_ids, mask)
        return out

    def __call__(self, batch: TokenBatch) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.arrays(batch))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    centred = x - x.mean(axis=-1, keepdims=True)
    variance = (centred * centred).mean(axis=-1, keepdims=True)
    out: np.ndarray = centred / np.sqrt(variance + F32(eps)) * weight + bias
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26); NumPy has none of its own, and
    SciPy's float32 erf took twice as long. In place, on two buffers: the expression form
    allocated a temporary per operation, and GELU was a quarter of an encoder's time."""
    a = np.abs(x)
    t = a * F32(0.3275911)
    t += F32(1.0)
    np.reciprocal(t, out=t)
    poly = t * F32(1.061405429)  # Horner's rule, innermost coefficient first
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += F32(coefficient)
        poly *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(F32(1.0), poly, out=poly)
    out: np.ndarray = np.copysign(poly, x, out=poly)
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU with the exact erf, as BERT's; ``x`` is left as it was."""
    out = _erf(x * F32(0.7071067811865476))
    out += F32(1.0)
    out *= x
    out *= _HALF
    return out


class NumpyTransformerSentiment(ArraySentiment):
    """:class:`models.transformer.TransformerSentimentClassifier`'s forward pass."""

    config: TransformerSentimentConfig

    def __init__(self, model: TransformerSentimentClassifier | Weights) -> None:
        w = model.arrays if isinstance(model, Weights) else state_arrays(model)
        c = self.config = model.config
        self.words, self.positions = w["word_embeddings.weight"], w["position_embeddings.weight"]
        self.segment = w["segment_embedding"]
        self.norm = (w["embedding_norm.weight"], w["embedding_norm.bias"])
        self.layers = []
        for i in range(c.num_layers):
            p = f"layers.{i}."
            # Query, key and value in one product: (hidden, 3 * hidden).
            qkv = np.concatenate([w[p + n + ".weight"] for n in ("query", "key", "value")]).T
            qkv_bias = np.concatenate([w[p + n + ".bias"] for n in ("query", "key", "value")])
            self.layers.append(
                (
                    np.ascontiguousarray(qkv),
                    qkv_bias,
                    w[p + "attention_out.weight"].T.copy(),
                    w[p + "attention_out.bias"],
                    (w[p + "attention_norm.weight"], w[p + "attention_norm.bias"]),
                    w[p + "intermediate.weight"].T.copy(),
                    w[p + "intermediate.bias"],
                    w[p + "output.weight"].T.copy(),
                    w[p + "output.bias"],
                    (w[p + "output_norm.weight"], w[p + "output_norm.bias"]),
                )
            )
        self.out_w, self.out_b = w["out.weight"].T.copy(), w["out.bias"]

    def arrays(self, batch: TokenBatch | TokenArrays) -> np.ndarray:
        """Label logits ``(batch, num_labels)``.

        The rows are packed, [CLS] pieces [SEP] one after the other without padding: every
        product but attention runs once over all of them, attention per row on its own
        length (padding a batch to its longest tweet cost more than batching saved).
        """
        c = self.config
        token_ids, _, _, mask = _arrays(batch)
        lengths = mask.sum(axis=1) + 2
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        ids = np.empty(int(lengths.sum()), dtype=np.int64)
        positions = np.concatenate([np.arange(n) for n in lengths])
        ids[starts] = c.cls_index
        ids[starts + lengths - 1] = c.sep_index
        body = np.ones(len(ids), dtype=bool)
        body[starts] = body[starts + lengths - 1] = False
        ids[body] = token_ids[mask]
        x = self.words[ids] + self.positions[positions] + self.segment
        x = _layer_norm(x, *self.norm, c.layer_norm_eps)
        heads, size = c.num_heads, c.hidden_size // c.num_heads
        scale = F32(1.0 / np.sqrt(size))
        rows = list(zip(starts.tolist(), (starts + lengths).tolist(), strict=True))
        attended = np.empty_like(x)
        for qkv, qkv_b, ao_w, ao_b, a_norm, in_w, in_b, out_w, out_b, o_norm in self.layers:
            projected = x @ qkv + qkv_b
            for first, last in rows:
                n = last - first
                # (n, 3 * hidden) -> q, k, v as (heads, n, size), contiguous for BLAS
                q, k, v = np.ascontiguousarray(
                    projected[first:last].reshape(n, 3, heads, size).transpose(1, 2, 0, 3)
                )
                scores = (q * scale) @ k.transpose(0, 2, 1)
                scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
                scores /= scores.sum(axis=-1, keepdims=True)
                attended[first:last] = (scores @ v).transpose(1, 0, 2).reshape(n, c.hidden_size)
            x = _layer_norm(x + attended @ ao_w + ao_b, *a_norm, c.layer_norm_eps)
            x = _layer_norm(x + _gelu(x @ in_w + in_b) @ out_w + out_b, *o_norm, c.layer_norm_eps)
        pooled = np.add.reduceat(x, starts, axis=0) / lengths[:, None].astype(F32)
        out: np.ndarray = pooled @ self.out_w + self.out_b
        return out

    def __call__(self, batch: TokenBatch) -> torch.Tensor:
        import torch

        return torch.from_numpy(self.arrays(batch))


Served = TypeVar("Served", bound=SlotTaggerPredictor | SentimentPredictor)


def for_engine(predictor: Served, engine: Engine) -> Served:
    """``predictor`` running its network on ``engine``: itself for ``torch``, else a copy whose
    forward pass is NumPy over a snapshot of the weights (the rest, CRF decoding and
    confidences included, is the predictor's own code)."""
    if engine == "torch":
        return predictor
    if engine != "numpy":
        raise ValueError(f"expected engine in {ENGINES}, got {engine!r}")
    served = copy.copy(predictor)
    if isinstance(served, SlotTaggerPredictor):
        served.net = NumpyTagger(served.model)
        if served.intent_classifier is not None:
            served.intent_classifier = for_engine(served.intent_classifier, engine)
    elif isinstance(served, SentimentPredictor):
        model = served.model
        served.net = (
            NumpyTransformerSentiment(model)  # type: ignore[arg-type]
            if is_transformer(model.config)
            else NumpySentiment(model)  # type: ignore[arg-type]
        )
    return served
