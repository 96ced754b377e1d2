"""``torchrun --nproc_per_node 2`` (DDP, gloo on CPU) writes the same kind of artifact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.artifact import load_artifact

TINY = ["--epochs", "1", "--hidden-size", "16", "--threads", "1", "--progress", "none"]


@pytest.mark.slow
def test_torchrun_two_processes_matches_single_process_artifact(
    test_data_dir: Path, tmp_path: Path
) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    slotfill = shutil.which("slotfill", path=str(Path(sys.executable).parent))
    assert torchrun and slotfill, "torchrun and slotfill must be installed in this environment"
    data = test_data_dir / "tiny_slots"
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [slotfill, "train", "slots", "--data", str(data), "--out", str(single), *TINY],
        check=True,
        env=env,
        timeout=90,
    )
    proc = subprocess.run(
        [
            torchrun,
            "--standalone",  # rendezvous on a free local port
            "--nproc_per_node",
            "2",
            "--no-python",
            slotfill,
            "train",
            "slots",
            "--data",
            str(data),
            "--out",
            str(ddp),
            *TINY,
        ],
        env=env,
        timeout=90,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Rank 0's summary reaches the log although ranks leave by os._exit.
    assert f"saved {ddp}:" in proc.stdout

    a, b = load_artifact(single), load_artifact(ddp)
    assert a.task == b.task == "slots"
    # "temperatures" is written only when calibration found a temperature other than 1.0,
    # which two differently trained tiny models need not both do.
    optional = {"synonyms", "temperatures"}
    assert set(a.manifest.to_dict()) - optional == set(b.manifest.to_dict()) - optional
    for key in ("model_config", "vocabs", "labels", "format_version"):
        assert getattr(a.manifest, key) == getattr(b.manifest, key), key
    assert set(a.predictor.model.state_dict()) == set(b.predictor.model.state_dict())
    out = subprocess.run(
        [slotfill, "predict", str(ddp), "book a table for two at 7pm"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert json.loads(out.stdout.splitlines()[-1])["intent"]["name"]
