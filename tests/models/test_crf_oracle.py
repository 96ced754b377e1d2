"""models.crf against brute force over every tag sequence (tiny sizes) and against pytorch-crf.

The oracle never uses FORBIDDEN: a constrained CRF is the unconstrained one restricted to the
tag sequences that are valid BIO, so it enumerates those only, in float64.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import Tensor
from torchcrf import CRF

import models.crf as crf_module
from models.calibration import scale_crf_arrays
from models.crf import (
    CRFArrays,
    CRFParams,
    bio_allowed,
    bio_constraints,
    decode_lattice,
    forward_backward,
    forward_backward_arrays,
    log_likelihood,
    span_log_prob,
    viterbi_arrays,
    viterbi_decode,
)

# Deliberately not in B/I order, so nothing can depend on where a tag sits.
TAG_SETS: dict[int, list[str]] = {
    3: ["O", "B-a", "I-a"],
    4: ["I-a", "O", "B-b", "B-a"],
    5: ["I-b", "O", "B-a", "I-a", "B-b"],
}
SEEDS = range(25)
Path = tuple[int, ...]


@dataclass(frozen=True)
class Case:
    """A padded batch of emissions with random CRF scores."""

    emissions: Tensor  # (batch, seq_len, num_tags); garbage on padding
    mask: Tensor
    start: Tensor
    transitions: Tensor
    end: Tensor
    tags: list[str]
    lengths: list[int]

    def params(self, constrained: bool) -> CRFParams:
        allowed = bio_constraints(self.tags) if constrained else None
        return CRFParams.constrained(self.start, self.transitions, self.end, allowed)


def make_case(
    seed: int, *, batch: int = 0, seq_len: int = 0, num_tags: int = 0, scale: float = 1.0
) -> Case:
    """Random sizes (batch 2-3, seq_len 1-4, 3-5 tags) unless given; varied lengths."""
    rng = random.Random(seed)
    batch = batch or rng.randint(2, 3)
    seq_len = seq_len or rng.randint(1, 4)
    num_tags = num_tags or rng.randint(3, 5)
    lengths = [rng.randint(1, seq_len) for _ in range(batch)]
    gen = torch.Generator().manual_seed(seed)
    mask = torch.arange(seq_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    emissions = torch.randn(batch, seq_len, num_tags, generator=gen) * scale
    # Huge values on padding: no result may depend on them.
    noise = 100 * torch.randn(batch, seq_len, num_tags, generator=gen)
    emissions = torch.where(mask.unsqueeze(2), emissions, noise)
    tags = TAG_SETS.get(num_tags) or ["O"] + [f"{p}-s{i}" for i in range(num_tags) for p in "BI"]
    return Case(
        emissions,
        mask,
        torch.randn(num_tags, generator=gen),
        torch.randn(num_tags, num_tags, generator=gen),
        torch.randn(num_tags, generator=gen),
        tags[:num_tags],
        lengths,
    )


def is_valid_bio(tags: Sequence[str]) -> bool:
    """I-x only right after B-x or I-x (written independently of models.crf)."""
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev not in (f"B-{tag[2:]}", f"I-{tag[2:]}"):
            return False
        prev = tag
    return True


def all_paths(case: Case, b: int, constrained: bool) -> dict[Path, float]:
    """Score of every (valid, if constrained) tag sequence of sequence ``b``, in float64."""
    n = case.lengths[b]
    em = case.emissions[b].double().tolist()
    start, trans, end = (x.double().tolist() for x in (case.start, case.transitions, case.end))
    out: dict[Path, float] = {}
    for path in itertools.product(range(len(case.tags)), repeat=n):
        if constrained and not is_valid_bio([case.tags[i] for i in path]):
            continue
        score = start[path[0]] + em[0][path[0]] + end[path[-1]]
        for t in range(1, n):
            score += trans[path[t - 1]][path[t]] + em[t][path[t]]
        out[path] = score
    return out


def logsumexp(values: Sequence[float]) -> float:
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def pad(paths: Sequence[Sequence[int]], seq_len: int) -> Tensor:
    return torch.tensor([list(p) + [0] * (seq_len - len(p)) for p in paths])


CONSTRAINED = pytest.mark.parametrize("constrained", [False, True], ids=["free", "bio"])
SEED = pytest.mark.parametrize("seed", SEEDS)


def test_bio_constraints_example() -> None:
    allowed_start, allowed = bio_constraints(["O", "B-a", "I-a", "B-b", "I-b"])
    assert allowed_start.tolist() == [True, True, False, True, False]
    assert allowed[:, 2].tolist() == [False, True, True, False, False]  # I-a after B-a/I-a only
    assert allowed[:, 4].tolist() == [False, False, False, True, True]
    assert allowed[:, [0, 1, 3]].all()


@SEED
@CONSTRAINED
def test_viterbi_finds_the_best_path(seed: int, constrained: bool) -> None:
    case = make_case(seed)
    paths = viterbi_decode(case.emissions, case.mask, case.params(constrained))
    for b, path in enumerate(paths):
        scores = all_paths(case, b, constrained)
        assert len(path) == case.lengths[b]
        assert tuple(path) in scores  # a valid BIO sequence when constrained
        assert scores[tuple(path)] == pytest.approx(max(scores.values()), abs=1e-4)


@SEED
@CONSTRAINED
def test_forward_backward_log_z_and_marginals(seed: int, constrained: bool) -> None:
    case = make_case(seed)
    alpha, beta, log_z = forward_backward(case.emissions, case.mask, case.params(constrained))
    for b, n in enumerate(case.lengths):
        scores = all_paths(case, b, constrained)
        z = logsumexp(list(scores.values()))
        assert float(log_z[b]) == pytest.approx(z, abs=1e-4)
        for t in range(n):
            for k in range(len(case.tags)):
                brute = sum(math.exp(s - z) for p, s in scores.items() if p[t] == k)
                got = math.exp(float(alpha[b, t, k] + beta[b, t, k] - log_z[b]))
                assert got == pytest.approx(brute, abs=1e-5)


@SEED
@CONSTRAINED
def test_span_log_prob(seed: int, constrained: bool) -> None:
    case = make_case(seed)
    params = case.params(constrained)
    alpha, beta, log_z = forward_backward(case.emissions, case.mask, params)
    rng = random.Random(seed)
    num_tags = len(case.tags)
    for b, n in enumerate(case.lengths):
        scores = all_paths(case, b, constrained)
        z = logsumexp(list(scores.values()))
        for start, end in itertools.combinations(range(n + 1), 2):
            # Half the time a span of a likely path, else arbitrary (possibly invalid) tags.
            some = rng.choice(list(scores))
            span = (
                some[start:end]
                if rng.random() < 0.5
                else tuple(rng.randrange(num_tags) for _ in range(end - start))
            )
            outside = rng.sample(range(num_tags), rng.randint(1, num_tags))
            brute = sum(
                math.exp(s - z)
                for p, s in scores.items()
                if p[start:end] == span and (end >= n or p[end] in outside)
            )
            got = span_log_prob(
                case.emissions[b],
                alpha[b],
                beta[b],
                log_z[b],
                params,
                n,
                span,
                start,
                end,
                outside,
            )
            assert math.exp(got) == pytest.approx(brute, abs=1e-5)
            if brute > 1e-3:
                assert got == pytest.approx(math.log(brute), abs=1e-3)


@SEED
def test_log_likelihood_matches_pytorch_crf(seed: int) -> None:
    case = make_case(seed)
    crf = CRF(len(case.tags), batch_first=True)
    with torch.no_grad():
        crf.start_transitions.copy_(case.start)
        crf.transitions.copy_(case.transitions)
        crf.end_transitions.copy_(case.end)
    gen = torch.Generator().manual_seed(seed)
    tag_ids = torch.randint(len(case.tags), case.mask.shape, generator=gen)
    emissions = case.emissions.clone().requires_grad_(True)
    ours = log_likelihood(
        emissions,
        tag_ids,
        case.mask,
        CRFParams(crf.start_transitions, crf.transitions, crf.end_transitions),
    )
    theirs = crf(emissions, tag_ids, mask=case.mask, reduction="none")
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-5)
    # Training runs on these gradients.
    inputs = [emissions, *crf.parameters()]
    for mine, ref, x in zip(
        torch.autograd.grad(ours.sum(), inputs, allow_unused=True),
        torch.autograd.grad(theirs.sum(), inputs, allow_unused=True),
        inputs,
        strict=True,
    ):
        zero = torch.zeros_like(x)  # unused: transitions when every sequence has one token
        torch.testing.assert_close(
            zero if mine is None else mine, zero if ref is None else ref, atol=1e-4, rtol=1e-4
        )


def _valid_gold(case: Case, seed: int) -> tuple[Tensor, list[dict[Path, float]], list[Path]]:
    """Per sequence: the best valid path (every second seed) or a random valid one."""
    rng = random.Random(seed)
    all_scores = [all_paths(case, b, True) for b in range(len(case.lengths))]
    gold = [max(s, key=s.__getitem__) if seed % 2 else rng.choice(sorted(s)) for s in all_scores]
    return pad(gold, case.mask.shape[1]), all_scores, gold


@pytest.mark.parametrize("scale", [1.0, 30.0, 100.0])
@SEED
def test_log_likelihood_constrained_matches_brute_force(seed: int, scale: float) -> None:
    # Large scores used to underflow exp() in the matrix-product forward pass (fixed).
    case = make_case(seed, scale=scale)
    tag_ids, all_scores, gold = _valid_gold(case, seed)
    got = log_likelihood(case.emissions, tag_ids, case.mask, case.params(True))
    _, _, log_z = forward_backward(case.emissions, case.mask, case.params(True))
    for b, scores in enumerate(all_scores):
        expected = scores[gold[b]] - logsumexp(list(scores.values()))
        assert float(got[b]) == pytest.approx(expected, abs=1e-4 * max(1.0, scale))
        # Same partition function as forward_backward.
        assert float(got[b]) == pytest.approx(
            scores[gold[b]] - float(log_z[b]), abs=1e-4 * max(1.0, scale)
        )


REAL_TAGS = [
    "O",
    "B-from_city",
    "I-from_city",
    "B-to_city",
    "I-to_city",
    "B-time",
    "I-time",
    "B-date",
]


@pytest.mark.parametrize("seed", range(10))
def test_constrained_decoding_never_emits_invalid_bio(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    k, batch, seq_len = len(REAL_TAGS), 16, 10
    allowed_start, allowed = bio_constraints(REAL_TAGS)
    # Scores that favour invalid moves, so only the constraints can keep them out.
    start = torch.randn(k, generator=gen) + 3.0 * (~allowed_start)
    transitions = 3 * torch.randn(k, k, generator=gen) + 5.0 * (~allowed)
    end = torch.randn(k, generator=gen)
    emissions = 5 * torch.randn(batch, seq_len, k, generator=gen)
    lengths = torch.randint(1, seq_len + 1, (batch,), generator=gen)
    lengths[0] = seq_len
    mask = torch.arange(seq_len).unsqueeze(0) < lengths.unsqueeze(1)

    def decode(constraints: tuple[Tensor, Tensor] | None) -> list[list[str]]:
        params = CRFParams.constrained(start, transitions, end, constraints)
        return [[REAL_TAGS[i] for i in p] for p in viterbi_decode(emissions, mask, params)]

    assert all(is_valid_bio(tags) for tags in decode((allowed_start, allowed)))
    assert not all(is_valid_bio(tags) for tags in decode(None))  # the test has teeth


@SEED
@CONSTRAINED
def test_batched_equals_one_by_one(seed: int, constrained: bool) -> None:
    case = make_case(seed, batch=4, seq_len=7, num_tags=5)
    params = case.params(constrained)
    paths = viterbi_decode(case.emissions, case.mask, params)
    alpha, beta, log_z = forward_backward(case.emissions, case.mask, params)
    gen = torch.Generator().manual_seed(seed)
    tag_ids = torch.randint(5, case.mask.shape, generator=gen)
    ll = log_likelihood(case.emissions, tag_ids, case.mask, params)
    for b, n in enumerate(case.lengths):
        em, one = case.emissions[b : b + 1, :n], torch.ones(1, n, dtype=torch.bool)
        assert viterbi_decode(em, one, params) == [paths[b]]
        a1, b1, z1 = forward_backward(em, one, params)
        torch.testing.assert_close(z1[0], log_z[b])
        torch.testing.assert_close(a1[0], alpha[b, :n])
        torch.testing.assert_close(b1[0], beta[b, :n])
        torch.testing.assert_close(
            log_likelihood(em, tag_ids[b : b + 1, :n], one, params)[0], ll[b]
        )
        first = paths[b][: max(1, n // 2)]
        args = (params, n, first, 0, len(first), list(range(5)))
        assert span_log_prob(em[0], a1[0], b1[0], z1[0], *args) == pytest.approx(
            span_log_prob(case.emissions[b], alpha[b], beta[b], log_z[b], *args), abs=1e-5
        )


@pytest.mark.parametrize("seed", range(10))
def test_viterbi_agrees_with_pytorch_crf_decode(seed: int) -> None:
    case = make_case(seed, batch=5, seq_len=9, num_tags=6)
    crf = CRF(6, batch_first=True)
    with torch.no_grad():
        crf.start_transitions.copy_(case.start)
        crf.transitions.copy_(case.transitions)
        crf.end_transitions.copy_(case.end)
    assert viterbi_decode(case.emissions, case.mask, case.params(False)) == crf.decode(
        case.emissions, case.mask
    )


def _ll(emissions: Tensor, mask: Tensor, params: CRFParams) -> object:
    return log_likelihood(
        emissions, torch.zeros(emissions.shape[:2], dtype=torch.long), mask, params
    )


DECODERS: list[Callable[[Tensor, Tensor, CRFParams], object]] = [
    viterbi_decode,
    forward_backward,
    _ll,
]
ok_mask = torch.ones(2, 3, dtype=torch.bool)
BAD_INPUTS = {
    "emissions 2-d": (torch.zeros(2, 4), ok_mask, 4),
    "mask shape": (torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=torch.bool), 4),
    "mask not bool": (torch.zeros(2, 3, 4), torch.ones(2, 3, dtype=torch.uint8), 4),
    "first token masked": (torch.zeros(2, 3, 4), torch.tensor([[1, 1, 0], [0, 0, 0]]).bool(), 4),
    "empty sequence": (torch.zeros(2, 0, 4), torch.ones(2, 0, dtype=torch.bool), 4),
    "transitions size": (torch.zeros(2, 3, 4), ok_mask, 5),
}


@pytest.mark.parametrize("fn", DECODERS, ids=["viterbi", "forward_backward", "log_likelihood"])
@pytest.mark.parametrize("emissions,mask,num_tags", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_shapes_raise_value_error(
    fn: Callable[[Tensor, Tensor, CRFParams], object],
    emissions: Tensor,
    mask: Tensor,
    num_tags: int,
) -> None:
    params = CRFParams(
        torch.zeros(num_tags), torch.zeros(num_tags, num_tags), torch.zeros(num_tags)
    )
    with pytest.raises(ValueError, match="expected"):
        fn(emissions, mask, params)


def _inside(tags: Sequence[str], tag: int) -> int:
    """The ``I-x`` tag id that would continue a span ending in ``tags[tag]`` (-1: none)."""
    slot = tags[tag][2:] if tags[tag][:2] in ("B-", "I-") else None
    return tags.index(f"I-{slot}") if slot and f"I-{slot}" in tags else -1


@SEED
@CONSTRAINED
def test_lattice_against_brute_force(seed: int, constrained: bool) -> None:
    """The serving pass (decode_lattice): Viterbi's paths, log Z, every token marginal and
    the exact-span probabilities the predictor asks for, against every tag sequence."""
    case = make_case(seed)
    params = case.params(constrained)
    paths, lattice = decode_lattice(case.emissions.numpy(), case.lengths, CRFArrays.of(params))
    assert paths == viterbi_decode(case.emissions, case.mask, params)
    rng = random.Random(seed)
    for b, n in enumerate(case.lengths):
        scores = all_paths(case, b, constrained)
        z = logsumexp(list(scores.values()))
        assert float(lattice.log_z[b]) == pytest.approx(z, abs=1e-4)
        for t in range(n):
            scale = math.exp(lattice.log_alpha[b, t] + lattice.log_beta[b, t] - z)
            for k in range(len(case.tags)):
                brute = sum(math.exp(s - z) for p, s in scores.items() if p[t] == k)
                got = lattice.alpha[b, t, k] * lattice.beta[b, t, k] * scale
                assert got == pytest.approx(brute, abs=1e-5)
        some = rng.choice(list(scores))
        spans = [
            (i, j, _inside(case.tags, some[j - 1]))
            for i, j in itertools.combinations(range(n + 1), 2)
        ]
        got = lattice.span_probs(b, list(some), spans)
        for (start, end, inside), prob in zip(spans, got, strict=True):
            brute = sum(
                math.exp(s - z)
                for p, s in scores.items()
                if p[start:end] == some[start:end] and (end >= n or p[end] != inside)
            )
            assert prob == pytest.approx(brute, abs=1e-5)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("scale", [1.0, 8.0, 50.0], ids=["calm", "peaky", "wide"])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.5])
@pytest.mark.parametrize("log_tails", [False, True], ids=["tails", "log-tails"])
def test_lattice_against_the_log_space_pass(
    seed: int, scale: float, temperature: float, log_tails: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Larger BIO tag sets, batches of mixed lengths, calibrated (temperature-scaled) CRFs and
    emissions hundreds apart (the log-space fallback): the same paths as viterbi_decode, the
    same span probabilities as span_log_prob over forward_backward_arrays, within 1e-9.
    ``log_tails``: every span's tail takes the log-space branch (as after an underflow)."""
    if log_tails:
        monkeypatch.setattr(crf_module, "_TINY_SUM", math.inf)
    case = make_case(seed, batch=4, seq_len=9, num_tags=7, scale=scale)
    arrays = CRFArrays.of(case.params(True))
    scaled = scale_crf_arrays(arrays, temperature)
    em32 = case.emissions.numpy()
    paths, lattice = decode_lattice(em32, case.lengths, arrays, scaled, temperature)
    assert paths == viterbi_decode(case.emissions, case.mask, arrays)
    em = em32.astype(np.float64) / temperature
    alpha, beta, log_z = forward_backward_arrays(em, case.mask.numpy(), scaled)
    np.testing.assert_allclose(lattice.log_z, log_z, rtol=0, atol=1e-9)
    rng = random.Random(seed)
    for b, n in enumerate(case.lengths):
        path = paths[b] if rng.random() < 0.5 else [rng.randrange(7) for _ in range(n)]
        spans = [
            (i, j, _inside(case.tags, path[j - 1]))
            for i, j in itertools.combinations(range(n + 1), 2)
        ]
        got = lattice.span_probs(b, path, spans)
        for (start, end, inside), prob in zip(spans, got, strict=True):
            outside = [k for k in range(7) if k != inside]
            want = span_log_prob(
                em[b], alpha[b], beta[b], log_z[b], scaled, n, path[start:end], start, end, outside
            )
            assert prob == pytest.approx(min(1.0, math.exp(want)), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_of_rows_gets_what_each_row_gets_alone(seed: int) -> None:
    """``rows_span_probs`` (what the predictor calls once per batch) equals ``span_probs``
    row by row: rows of mixed lengths, in any order, some without spans, paths that are not
    the best ones, spans that reach the end and spans that stop before it."""
    case = make_case(seed, batch=5, seq_len=8, num_tags=7, scale=4.0)
    arrays = CRFArrays.of(case.params(True))
    paths, lattice = decode_lattice(case.emissions.numpy(), case.lengths, arrays)
    rng = random.Random(seed)
    rows = [3, 0, 4, 1, 2]
    picked = [
        paths[b] if rng.random() < 0.5 else [rng.randrange(7) for _ in range(case.lengths[b])]
        for b in rows
    ]
    spans = [
        []
        if b == 4
        else [
            (i, j, _inside(case.tags, path[j - 1]))
            for i, j in itertools.combinations(range(len(path) + 1), 2)
        ]
        for b, path in zip(rows, picked, strict=True)
    ]
    together = lattice.rows_span_probs(rows, picked, spans)
    alone = [
        lattice.span_probs(b, path, row_spans)
        for b, path, row_spans in zip(rows, picked, spans, strict=True)
    ]
    assert [len(x) for x in together] == [len(s) for s in spans]
    for got, want in zip(together, alone, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert lattice.rows_span_probs(rows, picked, [[] for _ in rows]) == [[] for _ in rows]


def test_bio_allowed_is_bio_constraints() -> None:
    tags = ["O", "B-a", "I-a", "B-b", "I-b", "I-c"]
    allowed_start, allowed = bio_allowed(tags)
    want_start, want = bio_constraints(tags)
    assert allowed_start.tolist() == want_start.tolist() and allowed.tolist() == want.tolist()
    params = CRFParams.constrained(
        *(torch.randn(6), torch.randn(6, 6), torch.randn(6)), (want_start, want)
    )
    arrays = CRFArrays.constrained(
        params.start.numpy(), params.transitions.numpy(), params.end.numpy(), None
    )
    raw = CRFArrays.of(params)
    assert (arrays.transitions == raw.transitions).all() and (arrays.start == raw.start).all()


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("temperature", [1.0, 0.05, 4.0])
def test_sure_paths_are_the_best_paths(seed: int, temperature: float) -> None:
    """The marginals' proof of the best path (_sure_paths, which spares decode_lattice its
    Viterbi pass): each row it calls sure has Viterbi's path, at any temperature; and peaky
    emissions give sure rows and flat ones doubtful rows, so both branches are taken."""
    case = make_case(seed, batch=6, seq_len=7, num_tags=7, scale=6.0 if seed % 2 else 0.3)
    arrays = CRFArrays.of(case.params(True))
    scaled = scale_crf_arrays(arrays, temperature)
    em32 = case.emissions.numpy()
    em = em32.astype(np.float64) / temperature
    on = case.mask.numpy()
    log_a, log_b, log_z = forward_backward_arrays(em, on, scaled)
    weights = np.exp(log_a + log_b - log_z[:, None, None])
    tags, sure = crf_module._sure_paths(em, on, weights, log_z, scaled)
    want = viterbi_decode(case.emissions, case.mask, arrays)
    for b in np.flatnonzero(sure):
        assert tags[b, : case.lengths[b]].tolist() == want[b]
    if seed % 2 and temperature == 1.0:
        assert sure.any()
    if not seed % 2 and temperature == 1.0:
        assert not sure.all()


def test_a_tie_goes_to_viterbi() -> None:
    """Two tags with the same scores everywhere: two best paths; the marginals cannot choose,
    so the row goes to Viterbi and gets its path (the first tag on ties)."""
    tags = ["O", "B-a", "B-b"]
    start, trans, end = np.zeros(3), np.zeros((3, 3)), np.zeros(3)
    arrays = CRFArrays.constrained(start, trans, end, bio_allowed(tags))
    em32 = np.array([[[0.0, 5.0, 5.0], [9.0, 0.0, 0.0]]], dtype=np.float32)
    on = np.ones((1, 2), dtype=bool)
    em = em32.astype(np.float64)
    log_a, log_b, log_z = forward_backward_arrays(em, on, arrays)
    _, sure = crf_module._sure_paths(em, on, np.exp(log_a + log_b), log_z, arrays)
    assert not sure.any()
    paths, _ = decode_lattice(em32, [2], arrays)
    assert paths == viterbi_arrays(em32, on, arrays) == [[1, 0]]
