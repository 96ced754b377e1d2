"""models.calibration: scaled CRF span confidences against brute force, what a temperature
changes in a parse (confidences) and what it does not (tags, ranking order), and the
manifest field (absent in older artifacts: 1.0; invalid: a clear error)."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.artifact import load_artifact
from models.calibration import Temperatures, scale_crf_arrays, scale_logits
from models.crf import FORBIDDEN, CRFArrays, CRFParams, bio_constraints, forward_backward_arrays
from models.errors import ArtifactError
from models.predictor import SlotTaggerPredictor, span_confidences
from models.text import tagger_tokens
from models.vocab import LabelSet

TAGS = ["I-b", "O", "B-a", "I-a", "B-b"]
TEXTS = ["book a table for two at 7pm tomorrow", "hello there", "my order never came"]


def _valid(path: tuple[int, ...]) -> bool:
    prev = "O"
    for tag in (TAGS[i] for i in path):
        if tag.startswith("I-") and prev not in (f"B-{tag[2:]}", f"I-{tag[2:]}"):
            return False
        prev = tag
    return True


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_scaled_span_confidences_equal_brute_force(seed: int, temperature: float) -> None:
    """Every span of the best path: its confidence is the mass of the valid BIO paths that
    hold exactly that span, each path scored by its CRF score divided by the temperature."""
    gen = torch.Generator().manual_seed(seed)
    n, k = 4, len(TAGS)
    em = torch.randn(n, k, generator=gen) * 2
    start, trans, end = (torch.randn(*s, generator=gen) for s in ((k,), (k, k), (k,)))
    params = CRFParams.constrained(start, trans, end, bio_constraints(TAGS))
    arrays = scale_crf_arrays(CRFArrays.of(params), temperature)
    scaled = scale_logits(em.double().numpy(), temperature)[None]
    alpha, beta, log_z = forward_backward_arrays(scaled, np.ones((1, n), bool), arrays)
    e, s0, tr, e1 = (x.double().tolist() for x in (em, start, trans, end))  # float64 sums
    scores = {}
    for path in itertools.product(range(k), repeat=n):
        if _valid(path):
            s = s0[path[0]] + e1[path[-1]] + sum(e[t][path[t]] for t in range(n))
            s += sum(tr[path[t - 1]][path[t]] for t in range(1, n))
            scores[path] = s / temperature
    z = math.log(sum(math.exp(s) for s in scores.values()))
    best = max(scores, key=scores.__getitem__)
    for span, confidence in span_confidences(
        LabelSet(TAGS), list(best), scaled[0], alpha[0], beta[0], float(log_z[0]), arrays
    ):
        brute = sum(
            math.exp(s - z)
            for p, s in scores.items()
            if p[span.first : span.last + 1] == best[span.first : span.last + 1]
            and (span.last + 1 >= n or TAGS[p[span.last + 1]] != f"I-{span.slot}")
        )
        assert confidence == pytest.approx(brute, abs=1e-9)
    assert float(log_z[0]) == pytest.approx(z, abs=1e-9)


def test_scaling_keeps_forbidden_transitions_forbidden() -> None:
    params = CRFParams.constrained(
        torch.zeros(len(TAGS)), torch.ones(len(TAGS), len(TAGS)), torch.zeros(len(TAGS)),
        bio_constraints(TAGS),
    )  # fmt: skip
    arrays = scale_crf_arrays(CRFArrays.of(params), 20.0)
    assert (arrays.start[[0]] == FORBIDDEN).all()  # I-b cannot start
    assert arrays.transitions[1, 0] == FORBIDDEN  # nor follow O
    assert arrays.transitions[4, 0] == pytest.approx(1 / 20)  # I-b after B-b
    assert scale_crf_arrays(CRFArrays.of(params), 1.0) is not None


def test_temperatures_from_the_manifest() -> None:
    assert Temperatures.from_dict(None) == Temperatures(1.0, 1.0, 1.0)
    assert Temperatures.from_dict({"intent": 2}).intent == 2.0
    assert Temperatures(intent=1.0, spans=1.3).to_dict() == {"spans": 1.3}
    for bad in ({"intent": 0.0}, {"spans": -1.0}, {"labels": "hot"}, {"x": 1.0}):
        with pytest.raises(ValueError):
            Temperatures.from_dict(bad)


def _with_temperatures(src: Path, dst: Path, temperatures: object) -> Path:
    path = Path(shutil.copytree(src, dst))
    manifest = json.loads((path / "manifest.json").read_text())
    if temperatures is None:
        manifest.pop("temperatures", None)
    else:
        manifest["temperatures"] = temperatures
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_a_manifest_without_temperatures_serves_unscaled(
    tiny_tagger_dir: Path, tmp_path: Path
) -> None:
    artifact = load_artifact(_with_temperatures(tiny_tagger_dir, tmp_path / "old", None))
    assert artifact.predictor.temperatures == Temperatures()
    assert "temperatures" not in artifact.manifest.to_dict()


def test_invalid_temperatures_fail_to_load(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    path = _with_temperatures(tiny_tagger_dir, tmp_path / "bad", {"spans": 0})
    with pytest.raises(ArtifactError, match="temperatures"):
        load_artifact(path)


def test_temperatures_move_confidences_not_answers(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    plain = load_artifact(_with_temperatures(tiny_tagger_dir, tmp_path / "p", {})).predictor
    hot = load_artifact(
        _with_temperatures(tiny_tagger_dir, tmp_path / "h", {"intent": 3.0, "spans": 3.0})
    ).predictor
    assert isinstance(plain, SlotTaggerPredictor) and isinstance(hot, SlotTaggerPredictor)
    for a, b in zip(plain.parse(TEXTS, n_best=3), hot.parse(TEXTS, n_best=3), strict=True):
        assert a.tags == b.tags
        assert [n for n, _ in a.intent_ranking] == [n for n, _ in b.intent_ranking]
        # A hotter softmax is flatter: the best intent is less sure.
        assert b.intent_ranking[0][1] < a.intent_ranking[0][1]
        assert [(s.slot, s.start, s.end) for s in a.slots] == [
            (s.slot, s.start, s.end) for s in b.slots
        ]
        for sa, sb in zip(a.slots, b.slots, strict=True):
            assert sb.confidence != pytest.approx(sa.confidence, abs=1e-9)
        assert [h.tags for h in a.hypotheses] == [h.tags for h in b.hypotheses]
    # The same as scaling the logits by hand.
    batch = plain.encode([[t.text for t in tagger_tokens(TEXTS[0])]])
    with torch.inference_mode():
        _, logits = plain.model(batch)
    expected = torch.softmax(logits / 3.0, dim=-1).max().item()
    assert hot.parse([TEXTS[0]])[0].intent_ranking[0][1] == pytest.approx(expected, rel=1e-6)
