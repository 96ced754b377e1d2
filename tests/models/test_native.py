"""The NumPy engine's compiled kernels (``models/_native.c``) compute what its NumPy loops
compute: the recurrent layers and the CRF's forward-backward recursions, over batches of one,
of equal and of mixed lengths; bad buffers are refused, not read past; the switch falls back
when nothing was built. The engine-against-torch and CRF oracle tests run whichever kernels
are active (the compiled ones where built), so both paths meet an independent reference."""

from __future__ import annotations

import logging
import math
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import models.crf as crf_module
from models import native
from models.calibration import scale_crf_arrays
from models.crf import CRFArrays, bio_allowed, decode_lattice
from models.engine import BiRNN
from models.layers import EncoderConfig

BUILT = pytest.mark.skipif(not native.available(), reason="compiled kernels not built")


def test_the_install_built_the_kernels() -> None:
    """Where a C compiler and the Python headers are at hand, ``pip install`` built them
    (setup.py marks the extension optional, so a broken build would pass unnoticed)."""
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not (shutil.which("cc") or shutil.which("gcc")) or not headers.exists():
        pytest.skip("no C compiler or Python headers here")
    assert native.available()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return next(
        (
            set(line.split(":", 1)[1].split())
            for line in text.splitlines()
            if line.startswith("flags")
        ),
        set(),
    )


@BUILT
def test_a_cpu_with_avx2_and_fma_runs_their_build() -> None:
    """The loader picks the clone by the CPU's features: a build dispatched on the CPU model
    (``arch=haswell``) ran its SSE2 clone on every other CPU, AMD's included, and the
    results could not tell (both clones compute the same numbers to rounding)."""
    flags = _cpu_flags()
    if not {"avx2", "fma"} <= flags:
        pytest.skip("no AVX2 + FMA here (or no /proc/cpuinfo)")
    assert native.uses_fma()


@BUILT
def test_a_cpu_with_f16c_widens_halves_with_it() -> None:
    """Half-precision weights take the F16C path where the CPU has it, not the bit-by-bit
    one (which gives the same numbers, several times slower)."""
    if not {"avx2", "fma", "f16c"} <= _cpu_flags():
        pytest.skip("no AVX2 + FMA + F16C here (or no /proc/cpuinfo)")
    assert native.uses_f16c()


@BUILT
def test_tanh_is_numpys_to_float32_precision() -> None:
    grid = np.concatenate(
        [np.linspace(-30, 30, 600_001), np.geomspace(1e-12, 1e-2, 2_001), [0.0, -0.0, 1e-45]]
    ).astype(np.float32)
    grid = np.concatenate([grid, -grid])
    got = native.tanh(grid)
    assert np.abs(got - np.tanh(grid.astype(np.float64))).max() <= 1e-6
    assert (np.sign(got) == np.sign(grid)).all()
    special = native.tanh(np.array([np.inf, -np.inf, np.nan], dtype=np.float32))
    assert special[0] == 1.0 and special[1] == -1.0 and math.isnan(special[2])


def _rnn(hidden: int, inputs: int, layers: int, seed: int) -> BiRNN:
    rng = np.random.default_rng(seed)
    config = EncoderConfig(
        vocab_size=3, char_vocab_size=3, hidden_size=hidden, num_layers=layers, cell="lstm"
    )
    weights = {}
    spread = 1.5 / math.sqrt(hidden)  # torch's initial range, wider (saturating gates too)
    for layer in range(layers):
        width = inputs if layer == 0 else 2 * hidden
        for name in (f"l{layer}", f"l{layer}_reverse"):
            weights[f"weight_ih_{name}"] = rng.normal(0, spread, (4 * hidden, width))
            weights[f"weight_hh_{name}"] = rng.normal(0, spread, (4 * hidden, hidden))
            weights[f"bias_ih_{name}"] = rng.normal(0, spread, 4 * hidden)
            weights[f"bias_hh_{name}"] = rng.normal(0, spread, 4 * hidden)
    return BiRNN({k: v.astype(np.float32) for k, v in weights.items()}, config, "")


@BUILT
@pytest.mark.parametrize("hidden", [1, 7, 32, 45, 200])
@pytest.mark.parametrize(
    "lengths", [[1], [11], [4, 4, 4], [3, 7, 1, 7, 5]], ids=["one", "eleven", "equal", "ragged"]
)
@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_layers_match_the_numpy_loops(hidden: int, lengths: list[int], layers: int) -> None:
    """Hidden sizes on and off the kernel's 32-column blocks; packed order for ragged rows,
    a sentence's own layout for one (``lstm_row``)."""
    rnn = _rnn(hidden, 10, layers, seed=hidden + len(lengths))
    mask = np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]
    rng = np.random.default_rng(0)
    projected = rng.normal(0, 1, (int(mask.sum()), 10)).astype(np.float32)
    first = rnn.layers[0]
    inputs = projected @ first[0] + first[1]
    native.select("numpy")
    want = rnn.real(inputs, mask)
    assert native.select("native")
    got = rnn.real(inputs, mask)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)


@BUILT
@pytest.mark.parametrize("hidden", [1, 7, 45, 200])
@pytest.mark.parametrize("lengths", [[11], [3, 7, 1, 7, 5]], ids=["eleven", "ragged"])
def test_half_weights_give_the_numpy_loops_results(hidden: int, lengths: list[int]) -> None:
    """``float16``: the kernels read the halves (F16C's eight at a time, the columns past the
    last block one by one), the NumPy loops the halves widened: the same to float32
    rounding, and off the float32 weights' states by about the halves' rounding."""
    rnn = _rnn(hidden, 10, 2, seed=hidden)
    mask = np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]
    rng = np.random.default_rng(1)
    projected = rng.normal(0, 1, (int(mask.sum()), 10)).astype(np.float32)
    first = rnn.layers[0]
    inputs = projected @ first[0] + first[1]
    native.select("numpy", "float16")
    assert native.half_weights() and native.selected() == ("numpy", "float16")
    want = rnn.real(inputs, mask)
    native.select("native", "float16")
    got = rnn.real(inputs, mask)
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)
    native.select("native", "float32")
    full = rnn.real(inputs, mask)
    assert not np.array_equal(full, got)  # the halves were read
    assert np.abs(full - got).max() < 0.02


@BUILT
@pytest.mark.parametrize("hidden", [1, 7, 45, 200])
def test_the_portable_halves_path_matches_f16c(hidden: int) -> None:
    """The bit-by-bit widening (a CPU without F16C, or not x86) over the same panels gives
    the F16C path's states: the same products in the same order."""
    rnn = _rnn(hidden, 10, 1, seed=hidden)
    mask = np.ones((1, 9), dtype=bool)
    inputs = (
        np.random.default_rng(2).normal(0, 1, (9, rnn.layers[0][0].shape[1])).astype(np.float32)
    )
    native.select("native", "float16")
    fast = rnn.real(inputs, mask)
    was = native._native.portable_halves(True)
    try:
        assert not native.uses_f16c()
        slow = rnn.real(inputs, mask)
    finally:
        native._native.portable_halves(was)
    np.testing.assert_allclose(slow, fast, atol=1e-6, rtol=1e-6)


def test_panels_hold_each_column_block_contiguous() -> None:
    rec = np.arange(2 * 3 * 84, dtype=np.float32).reshape(2, 3, 84)  # panels 64, 8, 8, 1 x 4
    got = native.panels(rec).reshape(2, -1)
    assert got.shape == (2, 3 * 84) and sorted(got[1].tolist()) == sorted(rec[1].ravel().tolist())
    np.testing.assert_array_equal(got[:, : 3 * 64], rec[:, :, :64].reshape(2, -1))
    np.testing.assert_array_equal(got[:, 3 * 64 : 3 * 72], rec[:, :, 64:72].reshape(2, -1))
    np.testing.assert_array_equal(got[:, 3 * 72 : 3 * 80], rec[:, :, 72:80].reshape(2, -1))
    np.testing.assert_array_equal(got[:, 3 * 80 : 3 * 81], rec[:, :, 80])  # then column by column
    np.testing.assert_array_equal(got[:, 3 * 83 :], rec[:, :, 83])


@BUILT
def test_halves_widen_exactly_subnormals_and_signed_zeros_included() -> None:
    """The kernel's own widening (the columns outside F16C's blocks: hidden 1 has four):
    the product of a one-hot state with each half is that half's value, as NumPy widens it."""
    values = np.array(
        [0.0, -0.0, 1.0, -2.5, 6.1e-5, 5.96e-8, -3.0e-7, 65504.0, -1.0e-3, 0.333],
        dtype=np.float16,
    )
    for value in values:
        rec = native.panels(np.full((2, 1, 4), value, dtype=np.float16))  # one-column panels
        wide = rec.astype(np.float32)
        inputs = np.zeros((2, 2, 4), np.float32)
        inputs[:, 0] = 3.0  # a first state tanh(3) * sigmoid(3)... times the weight after
        got, want = np.empty((2, 2, 1), np.float32), np.empty((2, 2, 1), np.float32)
        native.lstm_layer(inputs, got, rec, np.array([1, 1]))
        native.lstm_layer(inputs, want, wide, np.array([1, 1]))
        np.testing.assert_array_equal(got, want, err_msg=str(value))


def _lattice_case(
    seed: int, lengths: list[int], num_tags: int, scale: float
) -> tuple[np.ndarray, CRFArrays]:
    rng = np.random.default_rng(seed)
    tags = ["O"] + [f"{p}-s{i}" for i in range(num_tags) for p in "BI"]
    tags = tags[:num_tags]
    emissions = (rng.normal(0, scale, (len(lengths), max(lengths), num_tags))).astype(np.float32)
    start, trans, end = (rng.normal(0, 1, s) for s in (num_tags, (num_tags, num_tags), num_tags))
    arrays = CRFArrays.constrained(
        start.astype(np.float32),
        trans.astype(np.float32),
        end.astype(np.float32),
        bio_allowed(tags),
    )
    return emissions, arrays


@BUILT
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("scale", [1.0, 20.0, 200.0], ids=["calm", "peaky", "underflow"])
@pytest.mark.parametrize("temperature", [1.0, 0.4])
def test_lattices_match_the_numpy_loops(seed: int, scale: float, temperature: float) -> None:
    """The same paths and the same lattice to float64 rounding, with rescaling on every step
    (``_RESCALE`` 0), on some steps, and with scores so far apart that the passes underflow and
    the log-space pass takes over."""
    lengths = [[1], [9], [5, 9, 2, 9]][seed % 3]
    emissions, arrays = _lattice_case(seed, lengths, 5 + seed, scale)
    scaled = scale_crf_arrays(arrays, temperature)
    for rescale in (crf_module._RESCALE, 0.0):
        crf_module._RESCALE, saved = rescale, crf_module._RESCALE
        try:
            native.select("numpy")
            want_paths, want = decode_lattice(emissions, lengths, arrays, scaled, temperature)
            native.select("native")
            got_paths, got = decode_lattice(emissions, lengths, arrays, scaled, temperature)
        finally:
            crf_module._RESCALE = saved
        assert got_paths == want_paths
        names = ("emissions", "probs", "em_max", "alpha", "beta", "log_alpha", "log_beta")
        for name in (*names, "log_z"):
            np.testing.assert_allclose(
                getattr(got, name), getattr(want, name), rtol=1e-12, atol=1e-300, err_msg=name
            )


@BUILT
def test_bad_buffers_are_refused() -> None:
    rnn = _rnn(4, 3, 1, seed=0)
    rec = rnn.layers[0][2]
    inputs = np.zeros((2, 3, 16), np.float32)
    outputs = np.zeros((2, 3, 4), np.float32)
    counts = np.array([1, 1, 1])
    native.lstm_layer(inputs, outputs, rec, counts)
    with pytest.raises(ValueError, match="float32"):
        native.lstm_layer(inputs.astype(np.float64), outputs, rec, counts)
    with pytest.raises(ValueError, match="rec"):  # halves or singles, nothing wider
        native.lstm_layer(inputs, outputs, rec.astype(np.float64), counts)
    with pytest.raises(ValueError, match="recurrent"):
        native.select("native", "bfloat16")  # type: ignore[arg-type]
    row_in, row_out = np.zeros((3, 32), np.float32), np.zeros((3, 8), np.float32)
    native.lstm_row(row_in, row_out, rec)
    with pytest.raises(ValueError, match="sizes"):  # a token of inputs without its states
        native.lstm_row(np.zeros((4, 32), np.float32), row_out, rec)
    with pytest.raises(ValueError, match="float32"):
        native.lstm_row(row_in.astype(np.float64), row_out, rec)
    with pytest.raises(ValueError, match="contiguous"):  # read as laid out: no strided views
        native.lstm_row(np.zeros((3, 64), np.float32)[:, ::2], row_out, rec)
    with pytest.raises(ValueError, match="shapes"):
        native.lstm_layer(inputs, outputs, rec, np.array([1, 1]))
    with pytest.raises(ValueError, match="counts"):  # the kernel's own check: rows may not grow
        native.lstm_layer(np.zeros((2, 4, 16), np.float32), np.zeros((2, 4, 4), np.float32),
                          rec, np.array([1, 1, 2]))  # fmt: skip
    with pytest.raises(ValueError, match="float64"):
        native.lattice_passes(
            *(np.zeros((1, 2, 3), np.float32),) * 2,
            (np.ones((1, 2)), np.ones((1, 2))),
            np.zeros((1, 2, 3)),
            (np.eye(3), np.eye(3)),
            [1, 1],
            ([False], [False]),
        )
    cube = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="sizes"):  # a flag too few for the steps
        native.lattice_passes(
            cube, cube.copy(), (np.ones((1, 2)), np.ones((1, 2))), cube.copy(),
            (np.eye(3), np.eye(3)), [1, 1], ([], []),
        )  # fmt: skip
    two = np.zeros((2, 2, 3))
    with pytest.raises(ValueError, match="sizes"):  # rows must run longest first
        native.lattice_passes(
            two, two.copy(), (np.ones((2, 2)), np.ones((2, 2))), two.copy(),
            (np.eye(3), np.eye(3)), [1, 2], ([False], [False]),
        )  # fmt: skip


def test_select_falls_back_without_a_build(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(native, "_native", None)
    with caplog.at_level(logging.WARNING, logger="models.native"):
        assert not native.select("native")
    assert not native.active() and "not built" in caplog.text
    with pytest.raises(ValueError, match="kernels"):
        native.select("fortran")  # type: ignore[arg-type]


@BUILT
def test_batches_past_max_rows_take_the_numpy_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    """BLAS shares the weights among a batch's rows; the kernels run rows one by one, so they
    take batches up to ``LSTM_ROWS`` / ``CRF_ROWS`` only."""
    calls: list[str] = []
    lstm, passes = native.lstm_layer, native.lattice_passes
    monkeypatch.setattr(native, "lstm_layer", lambda *a: (calls.append("lstm"), lstm(*a))[1])
    monkeypatch.setattr(native, "lattice_passes", lambda *a: (calls.append("crf"), passes(*a))[1])
    native.select("native")
    rnn = _rnn(6, 4, 1, seed=1)
    assert native.CRF_ROWS < native.LSTM_ROWS
    for rows, expected in (
        (native.CRF_ROWS, ["lstm", "crf"]),
        (native.LSTM_ROWS, ["lstm"]),
        (native.LSTM_ROWS + 1, []),
    ):
        calls.clear()
        lengths = [3 + r % 4 for r in range(rows)]
        mask = np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]
        projected = np.ones((int(mask.sum()), 4), np.float32)
        rnn.real(projected @ rnn.layers[0][0] + rnn.layers[0][1], mask)
        emissions, arrays = _lattice_case(rows, lengths, 5, 1.0)
        decode_lattice(emissions, lengths, arrays)
        assert calls == expected


@BUILT
def test_one_row_takes_the_row_kernel_sure_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch of one is the row kernel's (``lattice_row``): the same paths and span
    probabilities as the NumPy steps, whether the marginals prove the path (no Viterbi) or
    leave it in doubt (Viterbi), and the log-space pass where it reports an underflow."""
    outcomes: list[tuple[bool, bool]] = []
    row = native.lattice_row

    def spy(*args: Any) -> tuple[bool, bool, float]:
        kept, sure, log_z = row(*args)
        outcomes.append((kept, sure))
        return kept, sure, log_z

    monkeypatch.setattr(native, "lattice_row", spy)
    for seed in range(40):
        scale = (0.3, 3.0, 400.0)[seed % 3]
        emissions, arrays = _lattice_case(seed, [2 + seed % 9], 9, scale)
        native.select("numpy")
        want_paths, want = decode_lattice(emissions, [emissions.shape[1]], arrays)
        native.select("native")
        got_paths, got = decode_lattice(emissions, [emissions.shape[1]], arrays)
        assert got_paths == want_paths
        n = emissions.shape[1]
        spans = [(i, j, -1) for i in range(n) for j in range(i + 1, n + 1)]
        np.testing.assert_allclose(
            got.span_probs(0, got_paths[0], spans),
            want.span_probs(0, want_paths[0], spans),
            rtol=1e-10,
            atol=1e-300,
        )
    assert {(True, True), (True, False), (False, False)} <= set(outcomes)


@BUILT
@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("log_tails", [False, True], ids=["tails", "log-tails"])
def test_span_probabilities_of_one_row_match_the_numpy_steps(
    seed: int, log_tails: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``span_row`` against the vectorised NumPy steps on rows of a padded batch lattice
    (any row, shorter than the batch), best and other paths, spans that close the path and
    spans that stop before a tag they exclude; ``log_tails``: every tail in log space."""
    if log_tails:
        monkeypatch.setattr(crf_module, "_TINY_SUM", math.inf)
    lengths = [7, 3 + seed % 4, 1, 7]
    emissions, arrays = _lattice_case(seed, lengths, 7, (1.0, 6.0)[seed % 2])
    paths, lattice = decode_lattice(emissions, lengths, arrays)
    rng = np.random.default_rng(seed)
    for row, n in enumerate(lengths):
        path = paths[row] if seed % 3 else rng.integers(0, 7, n).tolist()
        spans = [(i, j, int(rng.integers(-1, 7))) for i in range(n) for j in range(i + 1, n + 1)]
        native.select("numpy")
        want = lattice.rows_span_probs([row], [path], [spans])
        native.select("native")
        got = lattice.rows_span_probs([row], [path], [spans])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-9, atol=1e-300)
    with pytest.raises(ValueError, match="spans"):
        lattice.rows_span_probs([0], [paths[0]], [[(0, 8, -1)]])  # past the path's end
