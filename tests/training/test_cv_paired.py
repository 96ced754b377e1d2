"""``benchmarks.cv_paired``: cross-validation runs paired by seed and fold, over split files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.cv_paired import compare, runs_of


def cv_file(path: Path, runs: list[tuple[int, int, int, float]]) -> Path:
    """A cv result (its last stdout line) with (seed, fold, right of 100, slot F1) runs."""
    rows = [
        {"seed": s, "fold": f, "n": 100, "intent_accuracy": r / 100, "slot_f1": f1}
        for s, f, r, f1 in runs
    ]
    path.write_text("table lines first\n" + json.dumps({"runs": rows}) + "\n")
    return path


def test_pairs_only_the_folds_both_sides_ran(tmp_path: Path) -> None:
    cand = runs_of(
        [
            cv_file(tmp_path / "c1.json", [(13, 1, 99, 0.95), (13, 2, 97, 0.94)]),
            cv_file(tmp_path / "c2.json", [(1, 1, 98, 0.90)]),
        ]
    )
    base = runs_of([cv_file(tmp_path / "b.json", [(13, 1, 98, 0.96), (13, 2, 95, 0.93)])])
    result: dict[str, Any] = compare(cand, base)
    assert list(result["per_seed"]) == ["13"]  # seed 1 has no baseline
    seed = result["per_seed"]["13"]
    assert (seed["candidate"]["right"], seed["baseline"]["right"], seed["right_gain"]) == (
        196,
        193,
        3,
    )
    assert seed["slot_f1_higher_folds"] == 1
    assert result["median_right"] == {"candidate": 196, "baseline": 193}


def test_a_fold_twice_is_refused(tmp_path: Path) -> None:
    one = cv_file(tmp_path / "a.json", [(13, 1, 99, 0.95)])
    again = cv_file(tmp_path / "b.json", [(13, 1, 98, 0.95)])
    command = [sys.executable, "-m", "benchmarks.cv_paired", "--candidate", str(one), str(again)]
    done = subprocess.run(
        [*command, "--baseline", str(one)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "seed 13 fold 1 appears twice" in done.stderr
