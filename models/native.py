"""The NumPy engine's compiled kernels (``models/_native.c``), when the build made them.

``pip install`` compiles the extension where a C compiler and the Python headers are at hand
(``setup.py``: optional, so an install without a compiler still succeeds); without it, or with
``SLOTFILL_KERNELS=numpy``, the engine runs its NumPy loops, which give the same results to
float32 rounding (``tests/models/test_native.py``). One process-wide choice, made by the
server at start-up from its settings (:func:`select`), as ``threadpool_limits`` is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import numpy as np

try:
    from models import _native  # type: ignore[attr-defined]
except ImportError:  # not built: the NumPy loops
    _native = None

Kernels = Literal["native", "numpy"]
KERNELS: tuple[str, ...] = ("native", "numpy")
Recurrent = Literal["float16", "float32"]
RECURRENT: tuple[str, ...] = ("float16", "float32")
# The kernels run a batch's rows one after another, each row's arithmetic vectorised; BLAS
# shares each weight among the rows of a matrix product. Up to these many rows the kernels
# are faster (the server's batch of one, most of all); past them, the NumPy loops (paired
# A/B runs at batches of 1-64 on ATIS valid, docs/results/serving.md).
LSTM_ROWS = 16
CRF_ROWS = 8
logger = logging.getLogger(__name__)
_active = _native is not None
_half = False


def available() -> bool:
    """Whether the compiled kernels were built and import."""
    return _native is not None


def uses_fma() -> bool:
    """Whether the loaded kernels fuse multiply-adds: on x86-64, whether the loader picked
    their AVX2 + FMA clone (``x86-64-v3``, for a CPU with those features) over the baseline
    one; ``False`` without a build."""
    return _native is not None and bool(_native.uses_fma())


def uses_f16c() -> bool:
    """Whether the kernels widen half-precision weights with F16C (x86-64 with AVX2, FMA and
    F16C) rather than bit by bit; ``False`` without a build."""
    return _native is not None and bool(_native.uses_f16c())


def select(kernels: Kernels, recurrent: Recurrent = "float32") -> bool:
    """Run the engine's loops with ``kernels``; ``native`` where not built falls back to
    NumPy with a warning. ``recurrent``: the precision of the recurrent weights every
    recurrent step reads (:func:`half_weights`). Returns whether the compiled kernels are
    now in use."""
    global _active, _half
    if kernels not in KERNELS:
        raise ValueError(f"expected kernels in {KERNELS}, got {kernels!r}")
    if recurrent not in RECURRENT:
        raise ValueError(f"expected recurrent weights in {RECURRENT}, got {recurrent!r}")
    if kernels == "native" and _native is None:
        logger.warning("compiled kernels not built (no C compiler at install?): NumPy loops")
    _active = kernels == "native" and _native is not None
    _half = recurrent == "float16"
    return _active


def selected() -> tuple[Kernels, Recurrent]:
    """The engine's loops and recurrent precision now (what :func:`select` takes)."""
    return ("native" if _active else "numpy"), ("float16" if _half else "float32")


def half_weights() -> bool:
    """Whether the engine's recurrent steps read their weights rounded to IEEE binary16
    (``float16``): the compiled kernels read the halves themselves (half the bytes a step
    streams from the cache), the NumPy loops the same values widened to float32, so both
    give the same results to float32 rounding."""
    return _half


def active(rows: int = 1, most: int = 1) -> bool:
    """Whether the engine runs the compiled kernels now, for a batch of ``rows`` (a kernel
    that takes at most ``most`` rows: :data:`LSTM_ROWS`, :data:`CRF_ROWS`)."""
    return _active and rows <= most


def panels(halves: np.ndarray) -> np.ndarray:
    """Recurrent weights ``(..., hidden, g)`` in the kernels' half-precision layout (the same
    shape; ``models/_native.c``): the columns in panels 64 wide, then 8, then 1, each panel's
    rows contiguous, so that a block of columns reads one run of memory."""
    h, g = halves.shape[-2:]
    widths = [64] * (g // 64) + [8] * (g % 64 // 8) + [1] * (g % 8)
    cuts = np.cumsum([0, *widths])
    lead = halves.shape[:-2]
    parts = [halves[..., a:b].reshape(*lead, h * (b - a)) for a, b in pairwise(cuts)]
    return np.ascontiguousarray(np.concatenate(parts, axis=-1).reshape(halves.shape))


def lstm_layer(
    inputs: np.ndarray, outputs: np.ndarray, rec: np.ndarray, counts: np.ndarray
) -> None:
    """Every step of a bidirectional LSTM layer in one call (``models/_native.c``).

    ``inputs`` ``(2, tokens, 4 * hidden)``: the projected inputs of each direction in packed
    order (step ``s`` owns ``counts[s]`` rows after those of the steps before it, counts not
    increasing); ``outputs`` ``(2, tokens, hidden)`` receives the states in the same order;
    ``rec`` ``(2, hidden, 4 * hidden)``: :class:`models.engine.BiRNN`'s recurrent weights
    (gates o, i, f, g; sigmoid gates halved), float32, or float16 in :func:`panels`. All
    C-contiguous, the rest float32."""
    assert _native is not None
    hidden = rec.shape[1]
    for name, array in (("inputs", inputs), ("outputs", outputs), ("rec", rec)):
        allowed = (np.float32, np.float16) if name == "rec" else (np.float32,)
        if array.dtype not in allowed or not array.flags.c_contiguous:
            kinds = " or ".join(np.dtype(a).name for a in allowed)
            raise ValueError(f"{name}: expected C-contiguous {kinds}, got {array.dtype}")
    tokens = int(counts.sum())
    expected = ((2, tokens, 4 * hidden), (2, tokens, hidden), (2, hidden, 4 * hidden))
    if (inputs.shape, outputs.shape, rec.shape) != expected:
        got = (inputs.shape, outputs.shape, rec.shape)
        raise ValueError(f"expected shapes {expected}, got {got}")
    counts = np.ascontiguousarray(counts, np.int64)
    _native.lstm_layer(inputs, outputs, rec, counts, hidden, rec.dtype == np.float16)


def lstm_row(inputs: np.ndarray, outputs: np.ndarray, rec: np.ndarray) -> None:
    """:func:`lstm_layer` for one sentence, in the engine's own layout (nothing to gather or
    scatter around the call): ``inputs`` ``(tokens, 2 * 4 * hidden)``, each token's projected
    inputs forwards then backwards; ``outputs`` ``(tokens, 2 * hidden)`` receives its states
    likewise; ``rec`` as :func:`lstm_layer`'s. C-contiguous (the kernel checks the sizes)."""
    assert _native is not None
    if inputs.dtype != np.float32 or outputs.dtype != np.float32:
        raise ValueError(
            f"expected float32 inputs and outputs, got {inputs.dtype}, {outputs.dtype}"
        )
    if rec.dtype != np.float32 and rec.dtype != np.float16:
        raise ValueError(f"rec: expected float32 or float16, got {rec.dtype}")
    _native.lstm_row(inputs, outputs, rec, rec.shape[1], rec.dtype == np.float16)


def lattice_passes(
    alpha: np.ndarray,
    beta: np.ndarray,
    sums: tuple[np.ndarray, np.ndarray],
    probs: np.ndarray,
    exp_transitions: tuple[np.ndarray, np.ndarray],
    running: Sequence[int],
    rescales: tuple[Sequence[bool], Sequence[bool]],
) -> None:
    """:func:`models.crf.decode_lattice`'s forward and backward recursions in one call
    (``models/_native.c``): ``alpha``, ``beta``, ``probs`` ``(batch, seq_len, num_tags)``
    and ``sums`` (forward, backward) ``(batch, seq_len)`` float64 and C-contiguous, rows
    longest first; ``exp_transitions`` the CRF's ``exp_transitions`` and its transpose;
    ``running[t]`` rows run at token ``t``; ``rescales`` the forward and backward flags."""
    assert _native is not None
    arrays = (alpha, beta, *sums, probs, *exp_transitions)
    if any(a.dtype != np.float64 or not a.flags.c_contiguous for a in arrays):
        raise ValueError("expected C-contiguous float64 arrays")
    _native.lattice_passes(
        alpha,
        beta,
        *sums,
        probs,
        *exp_transitions,
        np.asarray(running, dtype=np.int64),
        np.asarray(rescales[0], dtype=np.uint8),
        np.asarray(rescales[1], dtype=np.uint8),
        alpha.shape[2],
    )


def lattice_row(
    emissions: np.ndarray,
    temperature: float,
    crf: tuple[np.ndarray, ...],
    constants: tuple[float, float, float, float, float],
    out: tuple[np.ndarray, ...],
) -> tuple[bool, bool, float]:
    """:func:`models.crf.decode_lattice` for one row in one call (``models/_native.c``):
    ``emissions`` ``(n, k)`` float32; ``crf`` the calibrated CRF's start, end, transitions,
    ``exp_transitions`` and its transpose (float64); ``constants`` its ``t_max`` and
    ``spread``, then ``models.crf``'s spread, rescale and sure limits; ``out``: the
    calibrated emissions, their exponentials, per-token maxima, alpha, beta, log alpha, log
    beta (float64) and the tags (int64), written. Returns (kept, sure, log Z)."""
    assert _native is not None
    if emissions.dtype != np.float32 or not emissions.flags.c_contiguous:
        raise ValueError("expected C-contiguous float32 emissions")
    if any(a.dtype != np.float64 or not a.flags.c_contiguous for a in (*crf, *out[:-1])):
        raise ValueError("expected C-contiguous float64 arrays")
    if out[-1].dtype != np.int64:
        raise ValueError("expected int64 tags")
    t_max, spread, *limits = constants
    kept, sure, log_z = _native.lattice_row(
        emissions, temperature, *crf, t_max, spread, tuple(limits), *out
    )
    return bool(kept), bool(sure), float(log_z)


def span_row(
    lattice: tuple[np.ndarray, ...],
    log_z: float,
    crf: tuple[np.ndarray, np.ndarray, np.ndarray],
    t_max: float,
    tiny: float,
    path: Sequence[int],
    spans: Sequence[tuple[int, int, int]],
) -> list[float]:
    """:meth:`models.crf.Lattice.span_probs` of one row in one call (``models/_native.c``):
    ``lattice`` the row's emissions, probs, em_max, alpha, beta, log_alpha and log_beta
    (float64); ``crf`` its transitions, ``exp_transitions`` and end scores; ``tiny`` the
    tail sum below which a tail is taken in log space."""
    assert _native is not None
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (*lattice, *crf)]
    out = np.empty(len(spans))
    _native.span_row(
        *arrays[:7],
        log_z,
        *arrays[7:9],
        arrays[9],
        t_max,
        tiny,
        np.asarray(path, dtype=np.int64),
        np.asarray(spans, dtype=np.int64).reshape(-1, 3),
        out,
    )
    result: list[float] = out.tolist()
    return result


def tanh(values: np.ndarray) -> np.ndarray:
    """The kernels' float32 ``tanh`` of ``values`` (a copy): for tests against ``np.tanh``."""
    assert _native is not None
    out = np.array(values, dtype=np.float32, order="C")
    _native.tanh_f32(out)
    return out
