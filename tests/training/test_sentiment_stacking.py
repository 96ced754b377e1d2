"""benchmarks.sentiment_stacking: the out-of-fold stacking probe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.sentiment_stacking import SOURCES, main, stack_rows


def test_a_source_that_knows_the_label_is_read_and_one_that_does_not_is_not() -> None:
    rng = np.random.default_rng(0)
    y_train = ["neg", "pos", "neu"] * 40
    y_valid = ["pos", "neu", "neg"] * 20

    def one_hot(labels: list[str]) -> np.ndarray:
        return np.array([[float(y == c) for c in ("neg", "neu", "pos")] for y in labels])

    noise = lambda n: rng.normal(size=(n, 3))  # noqa: E731
    features = {
        "network": (noise(120), noise(60)),
        "vader": (one_hot(y_train), one_hot(y_valid)),
        "tfidf": (noise(120), noise(60)),
    }
    rows = {
        (r["features"], r["C"], r["class_weight"]): r
        for r in stack_rows(features, y_train, y_valid)
    }
    assert len(rows) == len(SOURCES) * 3 * 2
    assert rows[("network+vader", 1.0, "none")]["macro_f1"] == 1.0
    assert rows[("network", 1.0, "none")]["macro_f1"] < 0.6  # noise alone: chance level


def test_a_quick_run_writes_the_table_and_its_verdict(test_data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "stacking.json"
    data = test_data_dir / "tiny_sentiment"
    assert main(["--data", str(data), "--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["fold_models_valid_macro_f1"]) == 2
    assert len(result["stacked"]) == len(SOURCES) * 6
    assert result["verdict"] in {"PASS", "FAIL"}
    assert result["best_stacked_macro_f1"] == max(r["macro_f1"] for r in result["stacked"])
    assert result["config"]["epochs"] == 2
