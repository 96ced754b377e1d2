"""Two ``torchrun`` ranks (gloo on CPU) train as one: the same weights on both, the same as
one process taking the same steps, and they stop at the epoch rank 0 decides."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training import distributed

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def _torchrun(*args: str) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun must be installed in this environment"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", str(WORKER), *args]
    proc = subprocess.run(cmd, env=_env(), timeout=180, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_ranks_hold_identical_weights_matching_one_process(
    test_data_dir: Path, tmp_path: Path
) -> None:
    # tiny_slots has 60 training utterances: 2 ranks x 30 and one process x 60 both take one
    # full-batch step per epoch (DDP averages the two halves' mean gradients).
    data = test_data_dir / "tiny_slots"
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    ddp.mkdir()
    single.mkdir()
    _torchrun("fit", str(data), str(ddp), "30")
    subprocess.run(
        [sys.executable, str(WORKER), "fit", str(data), str(single), "60"],
        env=_env(),
        timeout=180,
        check=True,
    )
    rank0, rank1 = (torch.load(ddp / f"rank{r}.pt") for r in (0, 1))
    alone = torch.load(single / "rank0.pt")
    assert set(rank0) == set(rank1) == set(alone)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    moved = 0
    for key, value in rank0.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, alone[key], rtol=0, atol=1e-5, msg=key)
            moved += int(not torch.equal(value, torch.zeros_like(value)))
    assert moved > 5  # the comparison is of trained weights, not of empty tensors


@pytest.mark.slow
@pytest.mark.parametrize(("stop_rank", "epochs"), [(1, 3), (0, 1)])
def test_rank_0_decides_when_time_is_up(tmp_path: Path, stop_rank: int, epochs: int) -> None:
    # Rank 1 alone out of time: both go on (it would otherwise leave rank 0 waiting in an
    # all-reduce); rank 0 out of time: both stop after the first epoch.
    _torchrun("stop", str(tmp_path), str(stop_rank))
    runs = [json.loads((tmp_path / f"rank{r}.json").read_text())["epochs"] for r in (0, 1)]
    assert runs == [epochs, epochs]


def test_each_cuda_rank_takes_the_gpu_of_its_local_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here: torch.cuda.set_device is the one call that needs one; what it is given is
    # what the test checks.
    chosen: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.rank_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert chosen == [torch.device("cuda", 1)]
    assert distributed.rank_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert distributed.rank_device(torch.device("cuda")) == torch.device("cuda")
    assert chosen == [torch.device("cuda", 1)]


def test_every_rank_gets_as_many_batches_or_training_does_not_start() -> None:
    batches = [[i] for i in range(5)]
    assert distributed.shard(batches, 0, 2) == [[0], [2]]
    assert distributed.shard(batches, 1, 2) == [[1], [3]]  # the fifth is dropped on both
    assert distributed.shard(batches, 0, 1) == batches
    with pytest.raises(ValueError, match="1 batches per epoch cannot be shared by 2 ranks"):
        distributed.shard(batches[:1], 1, 2)
