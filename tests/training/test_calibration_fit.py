"""Calibration: ECE on hand-computed cases, temperature fits that recover a known temperature,
the temperatures a trained artifact carries and serves with, and ``evaluate --plots``."""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from models.artifact import load_artifact
from models.calibration import Temperatures
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from slotfill.cli import main
from training.calibration import (
    binary_nll,
    expected_calibration_error,
    fit_intent_temperature,
    fit_scale,
    fit_span_temperature,
    intent_targets,
    reliability,
    span_outcomes,
    tagger_calibration,
    tagger_outputs,
)
from training.formats import read_split
from training.tagging import TaggingSet, tagging_set

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_ece_of_a_hand_computed_case() -> None:
    # Bins of width 1/15: 0.9 and 0.92 share bin 13 (one right: |0.5 - 0.91| = 0.41),
    # 0.61 is alone in bin 9 (right: 0.39), 0.2 alone in its bin (wrong: 0.2).
    conf, right = [0.9, 0.92, 0.61, 0.2], [1, 0, 1, 0]
    assert expected_calibration_error(conf, right) == pytest.approx((2 * 0.41 + 0.39 + 0.2) / 4)


def test_ece_is_zero_when_each_bins_accuracy_is_its_confidence() -> None:
    conf = [0.75, 0.75, 0.75, 0.75, 0.5, 0.5, 1.0, 1.0, 1.0]
    right = [1, 1, 1, 0, 1, 0, 1, 1, 1]
    assert expected_calibration_error(conf, right) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error([], []) == 0.0


def test_bins_are_closed_on_the_right() -> None:
    r = reliability([0.0, 1 / 15, 0.0667, 1.0], [1, 1, 1, 1])
    assert r.counts[0] == 2 and r.counts[1] == 1 and r.counts[14] == 1
    assert len(r.edges) == 16 and r.counts.sum() == 4
    with pytest.raises(ValueError, match="as many"):
        reliability([0.5], [1, 0])


@pytest.mark.parametrize("true_t", [0.5, 2.0])
def test_softmax_temperature_fit_recovers_a_known_temperature(true_t: float) -> None:
    """Labels drawn from softmax(z / T): the fit finds T from z and the labels alone."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=(20000, 5))
    z = logits / true_t
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = [str((p.cumsum() > rng.random()).argmax()) for p in probs]
    targets = intent_targets([str(i) for i in range(5)], [(y,) for y in labels], False)
    fitted = fit_intent_temperature(logits, targets)
    assert fitted == pytest.approx(true_t, rel=0.05)


def test_sigmoid_temperature_fit_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 2.0, size=(8000, 4))
    hot = rng.random(logits.shape) < 1.0 / (1.0 + np.exp(-logits / 1.5))
    rows = [tuple(str(j) for j in np.flatnonzero(row)) for row in hot]
    targets = intent_targets([str(j) for j in range(4)], rows, True)
    assert fit_intent_temperature(logits, targets) == pytest.approx(1.5, rel=0.05)


def test_fit_without_an_inner_minimum_keeps_the_scores() -> None:
    """Every valid answer right: the likelihood rises as T -> 0; scaling to the bound would
    make every later answer certain, so the fit says 1.0."""
    assert fit_scale(lambda t: t) == 1.0
    assert fit_scale(lambda t: (math.log(t) - math.log(3.0)) ** 2) == pytest.approx(3.0)


def test_binary_nll_is_finite_at_certainty() -> None:
    assert math.isfinite(binary_nll(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


@pytest.fixture(scope="module")
def tagger_and_valid(
    tiny_tagger_dir: Path, test_data_dir: Path
) -> tuple[SlotTaggerPredictor, TaggingSet]:
    predictor = load_artifact(tiny_tagger_dir).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    _, examples, _ = read_split(test_data_dir / "tiny_slots" / "valid", None, False)
    return predictor, tagging_set(examples, "tiny valid")


def test_span_temperature_minimises_the_span_nll(
    tagger_and_valid: tuple[SlotTaggerPredictor, TaggingSet],
) -> None:
    predictor, valid = tagger_and_valid
    outputs = tagger_outputs(predictor, valid)
    gold = valid.tags
    t = fit_span_temperature(predictor, outputs, gold)

    def nll(temp: float) -> float:
        return binary_nll(*span_outcomes(predictor, outputs, gold, temp))

    assert t != 1.0
    assert nll(t) <= min(nll(t * 1.05), nll(t / 1.05), nll(1.0))
    # The predicted spans are the same at any temperature; only their confidences move.
    low, high = (
        span_outcomes(predictor, outputs, gold, 0.5),
        span_outcomes(predictor, outputs, gold, 2),
    )
    assert np.array_equal(low[1], high[1]) and not np.allclose(low[0], high[0])


def test_a_trained_artifact_carries_its_fitted_temperatures(tiny_tagger_dir: Path) -> None:
    artifact = load_artifact(tiny_tagger_dir)
    manifest = json.loads((tiny_tagger_dir / "manifest.json").read_text())
    calibration = manifest["metrics"]["calibration"]
    assert artifact.predictor.temperatures == Temperatures.from_dict(manifest["temperatures"])
    assert calibration["span_temperature"] == artifact.predictor.temperatures.spans
    # Fitted on valid, the valid span ECE is no worse than unscaled.
    assert calibration["span_ece"] <= calibration["span_ece_uncalibrated"]


def test_calibration_report_uses_the_artifacts_temperatures(
    tagger_and_valid: tuple[SlotTaggerPredictor, TaggingSet],
) -> None:
    predictor, valid = tagger_and_valid
    scores = tagger_calibration(predictor, valid).scores
    plain = tagger_calibration(predictor, valid, Temperatures()).scores
    assert scores["span_ece_uncalibrated"] == plain["span_ece"] == plain["span_ece_uncalibrated"]
    assert scores["span_temperature"] == predictor.temperatures.spans
    for key in ("intent_ece", "intent_ece_crossfit", "span_ece", "span_ece_crossfit"):
        assert 0.0 <= scores[key] <= 1.0


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header, after checking its signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND", path
    return width, height


@pytest.mark.parametrize(
    ("kind", "split", "names"),
    [
        (
            "tagger",
            "tiny_slots/valid",
            ["intent_confusion.png", "intent_reliability.png", "span_reliability.png"],
        ),
        (
            "sentiment",
            "tiny_sentiment/valid.tsv",
            ["sentiment_confusion.png", "sentiment_reliability.png"],
        ),
    ],
)
def test_evaluate_writes_plots_and_ece(
    kind: str,
    split: str,
    names: list[str],
    tiny_tagger_dir: Path,
    tiny_sentiment_dir: Path,
    test_data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tiny_tagger_dir if kind == "tagger" else tiny_sentiment_dir
    plots = tmp_path / "plots"
    assert (
        main(["evaluate", str(model), str(test_data_dir / split), "--json", "--plots", str(plots)])
        == 0
    )
    scores = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert sorted(p.name for p in plots.iterdir()) == names
    for name in names:
        width, height = png_size(plots / name)
        assert width > 200 and height > 200
    keys = ["intent_ece", "span_ece"] if kind == "tagger" else ["ece"]
    for key in keys:
        for variant in (key, f"{key}_uncalibrated", f"{key}_crossfit"):
            assert 0.0 <= scores[variant] <= 1.0, variant


def test_sentiment_temperature_is_served(tiny_sentiment_dir: Path, tmp_path: Path) -> None:
    """The manifest's label temperature scales what ``classify`` answers; labels stay."""
    path = Path(shutil.copytree(tiny_sentiment_dir, tmp_path / "a"))
    manifest = json.loads((path / "manifest.json").read_text())
    texts = ["great crew", "my bag never showed up", "ok"]
    manifest["temperatures"] = {"labels": 1.0}
    (path / "manifest.json").write_text(json.dumps(manifest))
    plain = load_artifact(path).predictor
    manifest["temperatures"] = {"labels": 4.0}
    (path / "manifest.json").write_text(json.dumps(manifest))
    hot = load_artifact(path).predictor
    assert isinstance(plain, SentimentPredictor) and isinstance(hot, SentimentPredictor)
    for a, b in zip(plain.classify(texts), hot.classify(texts), strict=True):
        assert a.label == b.label
        assert b.confidence < a.confidence or a.confidence == pytest.approx(1 / len(a.scores))
