"""models.crf_kbest against brute force over every (valid) tag sequence on tiny cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_crf_oracle import CONSTRAINED, SEED, TAG_SETS, Case, all_paths, logsumexp, make_case

from models.crf import CRFArrays, CRFParams, bio_constraints, viterbi_decode
from models.crf_kbest import kbest_decode, kbest_paths

K = pytest.mark.parametrize("k", [1, 2, 3, 5, 10])


def brute_kbest(
    case: Case, b: int, constrained: bool, k: int
) -> list[tuple[tuple[int, ...], float]]:
    """The k best (path, probability), best first; ties in the documented order."""
    scores = all_paths(case, b, constrained)
    z = logsumexp(list(scores.values()))
    ranked = sorted(scores, key=lambda p: (-scores[p], tuple(reversed(p))))
    return [(p, math.exp(scores[p] - z)) for p in ranked[:k]]


@pytest.mark.parametrize("seed", range(60))
@CONSTRAINED
@K
def test_kbest_equals_brute_force(seed: int, constrained: bool, k: int) -> None:
    # Lengths 1-5 and 3-5 tags; k is often more than the number of valid sequences.
    case = make_case(seed, seq_len=1 + seed % 5)
    got = kbest_decode(case.emissions, case.mask, case.params(constrained), k)
    assert len(got) == len(case.lengths)
    for b, hyps in enumerate(got):
        scores = all_paths(case, b, constrained)
        z = logsumexp(list(scores.values()))
        expected = brute_kbest(case, b, constrained, k)
        assert len(hyps) == min(k, len(scores))
        assert len({tuple(h.path) for h in hyps}) == len(hyps)
        for h, (_, p) in zip(hyps, expected, strict=True):
            # Each listed sequence exists (valid BIO when constrained) with its exact score,
            # and the probabilities are the brute-force k best ones, in order.
            assert tuple(h.path) in scores
            assert h.score == pytest.approx(scores[tuple(h.path)], abs=1e-9)
            assert h.probability == pytest.approx(math.exp(scores[tuple(h.path)] - z), abs=1e-9)
            assert h.probability == pytest.approx(p, abs=1e-9)
        # Random scores have no ties, so the sequences themselves match too.
        assert [tuple(h.path) for h in hyps] == [p for p, _ in expected]
        assert sum(h.probability for h in hyps) <= 1 + 1e-12
        if k >= len(scores):  # every sequence listed: the probabilities add up to one
            assert sum(h.probability for h in hyps) == pytest.approx(1.0, abs=1e-9)


@SEED
@CONSTRAINED
def test_top_hypothesis_is_the_viterbi_path(seed: int, constrained: bool) -> None:
    case = make_case(seed, batch=4, seq_len=7, num_tags=5)
    params = case.params(constrained)
    paths = viterbi_decode(case.emissions, case.mask, params)
    got = kbest_decode(case.emissions, case.mask, params, 3)
    assert [hyps[0].path for hyps in got] == paths


@pytest.mark.parametrize("num_tags", [3, 4, 5])
@pytest.mark.parametrize("seq_len", [2, 3, 4])
@CONSTRAINED
def test_ties_come_in_reversed_lexicographic_order(
    num_tags: int, seq_len: int, constrained: bool
) -> None:
    # Small integer scores add up exactly in float64, so many sequences tie exactly.
    gen = torch.Generator().manual_seed(num_tags * 10 + seq_len)

    def ints(*shape: int) -> torch.Tensor:
        return torch.randint(0, 2, shape, generator=gen).double()

    case = Case(
        ints(1, seq_len, num_tags),
        torch.ones(1, seq_len, dtype=torch.bool),
        ints(num_tags),
        ints(num_tags, num_tags),
        ints(num_tags),
        TAG_SETS[num_tags],
        [seq_len],
    )
    k = 40
    hyps = kbest_decode(case.emissions, case.mask, case.params(constrained), k)[0]
    expected = brute_kbest(case, 0, constrained, k)
    assert [tuple(h.path) for h in hyps] == [p for p, _ in expected]
    scores = [h.score for h in hyps]
    assert len(set(scores)) < len(scores)  # the case has ties


def test_all_zero_scores_list_every_valid_sequence_equally() -> None:
    tags = ["O", "B-a", "I-a"]
    params = CRFParams.constrained(
        torch.zeros(3), torch.zeros(3, 3), torch.zeros(3), bio_constraints(tags)
    )
    hyps = kbest_paths(np.zeros((2, 3)), CRFArrays.of(params), 10)
    # Valid: O O, O B, B O, B B, B I (I-a may not start nor follow O).
    assert [h.path for h in hyps] == [[0, 0], [1, 0], [0, 1], [1, 1], [1, 2]]
    assert all(h.probability == pytest.approx(0.2, abs=1e-12) for h in hyps)


def test_log_z_given_or_computed_agree() -> None:
    case = make_case(3, batch=1, seq_len=4, num_tags=5)
    arrays = CRFArrays.of(case.params(True))
    em = case.emissions[0, : case.lengths[0]].double().numpy()
    assert kbest_paths(em, arrays, 4) == kbest_decode(case.emissions, case.mask, arrays, 4)[0]


def test_large_scores_keep_probabilities_exact() -> None:
    case = make_case(5, batch=2, seq_len=4, num_tags=5, scale=100.0)
    for b, hyps in enumerate(kbest_decode(case.emissions, case.mask, case.params(True), 6)):
        for h, (p, prob) in zip(hyps, brute_kbest(case, b, True, 6), strict=True):
            assert tuple(h.path) == p
            assert h.probability == pytest.approx(prob, abs=1e-9)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_refused(k: int) -> None:
    case = make_case(0)
    with pytest.raises(ValueError, match="k >= 1"):
        kbest_decode(case.emissions, case.mask, case.params(True), k)


def test_bad_emission_shape_is_refused() -> None:
    arrays = CRFArrays.of(make_case(0, num_tags=4).params(True))
    for bad in (np.zeros((0, 4)), np.zeros((2, 3)), np.zeros(4)):
        with pytest.raises(ValueError, match="expected emissions"):
            kbest_paths(bad, arrays, 2)
