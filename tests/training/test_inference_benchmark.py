"""benchmarks.inference: each precision of the recurrent weights is a row, its tagger and
sentiment model checked against torch, and the sklearn-crfsuite anchor is timed in the same
loop with a verdict per row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import inference


def test_the_anchor_and_both_precisions_are_reported(
    tiny_tagger_dir: Path,
    tiny_sentiment_dir: Path,
    test_data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model = tmp_path / "anchor" / "crf.crfsuite"
    argv = [
        "--quick", "--artifact", str(tiny_tagger_dir), "--sentiment", str(tiny_sentiment_dir),
        "--split", str(test_data_dir / "tiny_slots" / "valid"), "--engines", "numpy",
        "--recurrent", "float32", "float16", "--anchor-crfsuite", str(model),
        "--sentiment-split", str(test_data_dir / "tiny_sentiment" / "valid.tsv"),
        "--warmup", "2", "--out", str(tmp_path / "inference.json"),
    ]  # fmt: skip
    assert inference.main(argv) == 0
    assert model.exists()  # trained on tiny_slots/train and kept for the next run
    printed = capsys.readouterr().out
    assert "sklearn-crfsuite" in printed and "<= 1.5x" in printed
    results = json.loads((tmp_path / "inference.json").read_text())["results"]
    assert set(results) == {"numpy+float32", "numpy+float16", "sklearn-crfsuite"}
    anchor = results["sklearn-crfsuite"]["latency_batch1_cpu"]["p50_ms"]
    for row in ("numpy+float32", "numpy+float16"):
        got = results[row]
        assert got["p50_over_anchor_p50"] == pytest.approx(
            got["latency_batch1_cpu"]["p50_ms"] / anchor
        )
        assert got["verdicts"]["anchor_ratio"] in {"PASS", "FAIL"}
        assert got["against_torch"]["verdict"] in {"PASS", "FAIL"}
        feeling = got["against_torch"]["sentiment"]
        assert 0.0 <= feeling["same_labels"] <= 1.0 and feeling["verdict"] in {"PASS", "FAIL"}
    # A second run loads the kept model instead of training.
    mtime = model.stat().st_mtime_ns
    assert inference.main(argv) == 0
    assert model.stat().st_mtime_ns == mtime
