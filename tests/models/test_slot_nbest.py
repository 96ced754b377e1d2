"""SlotTaggerPredictor.parse(n_best=k): the k most probable labellings as slots in the raw text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_slot_predictor import TEXTS, busy_tagger, tagger  # noqa: F401 (fixtures)

from benchmarks import nbest as nbest_benchmark
from models.predictor import Parse, SlotTaggerPredictor

DATA = Path(__file__).resolve().parents[1] / "data"
TINY_SLOTS = DATA / "tiny_slots"


def check_hypotheses(text: str, parse: Parse, k: int) -> None:
    hyps = parse.hypotheses
    assert 1 <= len(hyps) <= k
    probs = [h.probability for h in hyps]
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 < p <= 1.0 for p in probs)
    assert sum(probs) <= 1.0 + 1e-9
    assert len({tuple(h.tags) for h in hyps}) == len(hyps)
    for h in hyps:
        assert len(h.tags) == len(parse.tokens)
        for s in h.slots:
            assert text[s.start : s.end] == s.value
    # The best labelling is the parse's own.
    assert hyps[0].tags == parse.tags
    assert [(s.slot, s.value, s.start, s.end) for s in hyps[0].slots] == [
        (s.slot, s.value, s.start, s.end) for s in parse.slots
    ]
    # A slot's confidence is the probability of every labelling with exactly that span, so it
    # bounds the summed probability of the listed ones that have it (forward-backward against
    # k-best: two separate computations).
    for slot in parse.slots:
        key = (slot.slot, slot.start, slot.end)
        having = sum(
            h.probability for h in hyps if key in {(s.slot, s.start, s.end) for s in h.slots}
        )
        assert having <= slot.confidence + 1e-6


@pytest.mark.parametrize("k", [1, 3, 10])
def test_n_best_hypotheses(tagger: SlotTaggerPredictor, k: int) -> None:  # noqa: F811
    for text, parse in zip(TEXTS, tagger.parse(TEXTS, n_best=k), strict=True):
        check_hypotheses(text, parse, k)


def test_busy_tagger_has_alternatives(busy_tagger: SlotTaggerPredictor) -> None:  # noqa: F811
    parses = busy_tagger.parse(TEXTS, n_best=5)
    assert all(len(p.hypotheses) == 5 for p in parses if len(p.tokens) > 1)
    # Some alternative labelling has different slots from the best one.
    assert any(p.hypotheses[1].slots != p.hypotheses[0].slots for p in parses)


def test_every_labelling_of_one_token(busy_tagger: SlotTaggerPredictor) -> None:  # noqa: F811
    # One token: O, B-time, B-city, B-party_size (an I- tag cannot start), all listed.
    (parse,) = busy_tagger.parse(["hello"], n_best=10)
    assert sorted(h.tags[0] for h in parse.hypotheses) == ["B-city", "B-party_size", "B-time", "O"]
    assert sum(h.probability for h in parse.hypotheses) == pytest.approx(1.0, abs=1e-9)


def test_n_best_per_text_and_off_by_default(busy_tagger: SlotTaggerPredictor) -> None:  # noqa: F811
    ks = [0, 2, 1, 0, 3, 0, 4]
    batched = busy_tagger.parse(TEXTS, n_best=ks)
    assert [len(p.hypotheses) for p in batched] == [0, 2, 1, 0, 3, 0, 4]
    assert all(p.hypotheses == [] for p in busy_tagger.parse(TEXTS))
    for text, k, parse in zip(TEXTS, ks, batched, strict=True):
        (single,) = busy_tagger.parse([text], n_best=k)
        assert [h.tags for h in single.hypotheses] == [h.tags for h in parse.hypotheses]
        assert [h.slots for h in single.hypotheses] == [h.slots for h in parse.hypotheses]
        for a, b in zip(single.hypotheses, parse.hypotheses, strict=True):
            assert a.probability == pytest.approx(b.probability, abs=1e-6)


@pytest.mark.parametrize("n_best", [-1, [1, 2], [1, -1, 1]])
def test_bad_n_best_is_refused(
    busy_tagger: SlotTaggerPredictor,  # noqa: F811
    n_best: int | list[int],
) -> None:
    with pytest.raises(ValueError, match="n_best"):
        busy_tagger.parse(["book a table", "fly to st louis", "hello"], n_best=n_best)


def test_nbest_benchmark_runs(tmp_path: Path, tiny_tagger_dir: Path) -> None:
    out = tmp_path / "nbest.json"
    args = ["--artifact", str(tiny_tagger_dir), "--texts", str(TINY_SLOTS), "--quick"]
    assert nbest_benchmark.main([*args, "--k", "3", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["k"] == 3 and result["calls"] == 20
    assert 1 <= result["mean_hypotheses"] <= 3
    assert result["parse_ms"]["n"] == result["parse_n_best_ms"]["n"] == 20
