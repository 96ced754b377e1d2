"""Data-parallel training under ``torchrun`` (DDP; gloo on CPU, NCCL on CUDA).

Every rank builds the same model from the same seed, takes every ``world``-th batch of the
same shuffled epoch order, and DDP averages the gradients, so all ranks hold the same
weights and compute the same valid scores; whether to stop after an epoch is rank 0's
decision, broadcast (a rank's clock alone could otherwise end it an epoch early and leave the
others waiting in an all-reduce). On CUDA each rank trains on ``cuda:LOCAL_RANK``. Rank 0 alone
reports progress and writes the artifact. Without ``torchrun`` (``WORLD_SIZE`` unset) it is a
no-op.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import sys
from typing import NoReturn, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")


def rank_device(device: torch.device) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` for CUDA under ``torchrun`` (one GPU per
    rank, made the current one), else ``device``."""
    if device.type != "cuda" or "LOCAL_RANK" not in os.environ:
        return device
    local = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    torch.cuda.set_device(local)
    return local


def init_from_env(device: torch.device) -> tuple[int, int]:
    """``(rank, world_size)``; joins the process group when started by ``torchrun``.
    ``device``: this rank's (:func:`rank_device`)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        # A rank that aborts in native code (gloo, NCCL) then leaves its Python stack in
        # torchrun's log instead of a bare "terminate called".
        faulthandler.enable()
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def finish() -> bool:
    """Leave the process group, if this process joined one, once every rank got here; True if
    it had. Wrappers no longer referenced are collected first and the group is destroyed
    while the interpreter is fully alive: gloo work still held at interpreter finalization can
    abort a rank (SIGABRT, "terminate called without an active exception"), and torchrun then
    reports the whole run failed although the artifact was written."""
    if not dist.is_initialized():
        return False
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
    return True


def exit_rank(code: int) -> NoReturn:
    """End a torchrun rank after :func:`finish`: streams flushed, then ``os._exit``, so no
    native library's thread is torn down by interpreter finalization (the abort above was
    still seen, rarely, in CI after an orderly destroy). Files are closed by then: artifacts
    are written with context managers and renamed into place."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def is_main() -> bool:
    """True on rank 0 or when not distributed."""
    return not dist.is_initialized() or dist.get_rank() == 0


def wrap(model: nn.Module) -> nn.Module:
    """``model`` (already on its rank's device) in DDP when distributed; the forward pass
    must go through the wrapper."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return model
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def rank0_decides(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every rank (``flag`` itself when not distributed); ``device``:
    this rank's (NCCL broadcasts only CUDA tensors)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return flag
    decision = torch.tensor([int(flag)], device=device)
    dist.broadcast(decision, src=0)
    return bool(decision.item())


def shard(batches: list[T], rank: int, world: int) -> list[T]:
    """This rank's batches; every rank gets the same count (DDP needs equal steps: a rank
    without a batch would leave the others waiting in the gradient all-reduce)."""
    if world == 1:
        return batches
    if len(batches) < world:
        raise ValueError(
            f"{len(batches)} batches per epoch cannot be shared by {world} ranks; "
            "use a smaller batch size or fewer processes"
        )
    return batches[: len(batches) - len(batches) % world][rank::world]
