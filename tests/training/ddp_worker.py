"""One rank of the DDP tests (``test_ddp_ranks.py``), run by ``torchrun`` or alone.

``fit DATA OUT BATCH``: ``fit_tagger``, then the state dict to ``OUT/rank<R>.pt``.
``stop OUT STOP_RANK``: 3 epochs of a linear model, ``STOP_RANK``'s clock out of time after
the first; the epochs run to ``OUT/rank<R>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from training import distributed
from training.config import SlotTrainConfig
from training.data import read_slot_folder
from training.loop import _epoch_loop, fit_tagger


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def fit(data: Path, out: Path, batch_size: int) -> None:
    """No dropout: the ranks' and a single process's steps then differ only in float sums."""
    config = SlotTrainConfig(
        epochs=3,
        batch_size=batch_size,
        hidden_size=16,
        threads=1,
        dropout=0.0,
        word_dropout=0.0,
        pretrained_vectors="none",
        device="cpu",
        # Token votes average their loss over a batch's tokens: each rank's half holds other
        # token counts, so DDP's mean of the ranks' gradients weighs tokens unlike one
        # process's full batch. The comparison holds for the per-utterance losses.
        intent_token_votes=False,
    )
    result = fit_tagger(
        read_slot_folder(data / "train"), read_slot_folder(data / "valid"), config,
        show_progress=False,
    )  # fmt: skip
    torch.save(result.predictor.model.state_dict(), out / f"rank{_rank()}.pt")


def stop(out: Path, stop_rank: int) -> None:
    """A linear model through DDP; ``stop_rank`` alone has a ``max_minutes`` already spent."""
    distributed.init_from_env(torch.device("cpu"))
    rank = _rank()
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    net = distributed.wrap(model)
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    config = SlotTrainConfig(
        epochs=3, batch_size=4, patience=10, max_minutes=1e-9 if rank == stop_rank else None
    )

    def step_loss(chunk: list[int]) -> Tensor:
        return nn.functional.mse_loss(net(x[chunk]), y[chunk])

    epochs = iter(range(1, 100))
    run = _epoch_loop(
        model, [1] * 8, config, step_loss, lambda: {"score": next(epochs)}, "score", None, False
    )
    (out / f"rank{rank}.json").write_text(json.dumps({"epochs": len(run.history)}))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "fit":
        fit(Path(args[0]), Path(args[1]), int(args[2]))
    else:
        stop(Path(args[0]), int(args[1]))
    # As `slotfill train` ends under torchrun.
    if distributed.finish():
        distributed.exit_rank(0)
