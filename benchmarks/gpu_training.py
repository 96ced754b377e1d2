"""Training and batched decoding on a GPU (issue 18): ATIS epoch time at batch 128, and
batched Viterbi throughput against pytorch-crf.

1. Trains the ATIS tagger with the defaults but ``batch_size`` 128 on ``--device`` for
   ``--epochs`` epochs (no early stop) and reports each epoch's wall time, training plus the
   valid evaluation, the first epoch apart (it pays CUDA's start-up and kernel choices).
2. Decodes the trained tagger's emissions on ATIS valid, tiled to ``--rows`` rows, in batches
   of each ``--viterbi-batch`` size, three ways that must return the same paths (all with the
   unconstrained scores, as ``benchmarks/decode.py``):
   ``torchcrf.CRF.decode`` on the device (its backtrack reads one tag per ``.item()``),
   ``models.crf.viterbi_decode`` (what slotfill runs: emissions copied to the host, NumPy),
   and :func:`device_viterbi`, the same recursion as tensor operations on the device with one
   copy of the paths at the end.

Runs on the CPU too (``--device cpu``), for the same figures beside a GPU run. The GPU
machine this was written for lacks the GloVe package, hence ``--vectors``.

    python -m benchmarks.gpu_training --device cuda --vectors none
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.common import (
    add_common_args,
    format_table,
    load_split,
    log,
    resolve_data_dir,
    subsample,
    write_results,
)
from models.crf import CRFParams, viterbi_decode
from models.predictor import SlotTaggerPredictor
from training.config import SlotTrainConfig
from training.loop import fit_tagger, resolve_device

NAME = "gpu_training"


def device_viterbi(emissions: Tensor, mask: Tensor, params: CRFParams) -> list[list[int]]:
    """Best paths of a batch with every step on ``emissions``' device: max-plus forward with
    backpointers, a backtrack by ``gather``, one copy of the paths to the host."""
    seq_len = emissions.shape[1]
    trans = params.transitions.to(emissions)
    score = params.start.to(emissions) + emissions[:, 0]
    pointers = []
    for t in range(1, seq_len):
        best, arg = (score[:, :, None] + trans[None]).max(dim=1)
        on = mask[:, t, None]
        score = torch.where(on, best + emissions[:, t], score)
        # Past a row's end its tag stays put, so the backtrack passes through.
        keep = torch.arange(score.shape[1], device=score.device).expand_as(arg)
        pointers.append(torch.where(on, arg, keep))
    last = (score + params.end.to(emissions)).argmax(dim=1)
    path = [last]
    for arg in reversed(pointers):
        last = arg.gather(1, last[:, None]).squeeze(1)
        path.append(last)
    path.reverse()
    tags = torch.stack(path, dim=1).cpu().tolist()
    lengths = mask.sum(dim=1).cpu().tolist()
    return [row[:n] for row, n in zip(tags, lengths, strict=True)]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epochs(args: argparse.Namespace, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """Fit the ATIS tagger for ``args.epochs`` epochs; the predictor and the epoch times."""
    data_dir = resolve_data_dir(args.data_dir)
    train = load_split(data_dir, "atis", "train")
    valid = load_split(data_dir, "atis", "valid")
    if args.quick:
        train = subsample(train, 300, 13)
    config = SlotTrainConfig(
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.epochs,
        device=device.type,
        seed=args.seed,
        threads=args.threads,
        pretrained_vectors=args.vectors,
    )
    marks: list[float] = []
    started = time.monotonic()
    fit = fit_tagger(
        train, valid, config, on_epoch=lambda _: marks.append(time.monotonic()), show_progress=False
    )
    epochs = [b - a for a, b in zip([started, *marks], marks, strict=False)]
    rest = epochs[1:] or epochs
    record = {
        "utterances": len(train),
        "batch_size": args.batch_size,
        "epoch_seconds": [round(s, 3) for s in epochs],
        "first_epoch_seconds": round(epochs[0], 3),
        "median_epoch_seconds_after_first": round(statistics.median(rest), 3),
        "valid_slot_f1_last_best": fit.metrics.get("slot_f1"),
        "valid_intent_accuracy_last_best": fit.metrics.get("intent_accuracy"),
        "best_epoch": fit.best_epoch,
    }
    log(f"epochs (s): {record['epoch_seconds']}; best valid {fit.metrics.get('slot_f1')}")
    return fit.predictor, record


def tiled_emissions(
    predictor: SlotTaggerPredictor, tokens: Sequence[Sequence[str]], rows: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Emissions and mask of ``tokens`` padded to one length, tiled to ``rows`` rows."""
    with torch.inference_mode():
        batch = predictor.encode(tokens).to(device)
        emissions, _ = predictor.model(batch)
    reps = -(-rows // len(tokens))
    return emissions.repeat(reps, 1, 1)[:rows].contiguous(), batch.mask.repeat(reps, 1)[:rows]


def time_decoder(
    decode: Callable[[Tensor, Tensor], list[list[int]]],
    emissions: Tensor,
    mask: Tensor,
    size: int,
    device: torch.device,
    repeats: int,
) -> tuple[float, list[list[int]]]:
    """Best wall time over ``repeats`` passes of decoding every batch of ``size``; the paths."""
    paths: list[list[int]] = []
    best = float("inf")
    for attempt in range(repeats + 1):  # the first pass warms up
        synchronize(device)
        start = time.perf_counter()
        out = []
        for i in range(0, emissions.shape[0], size):
            out.extend(decode(emissions[i : i + size], mask[i : i + size]))
        synchronize(device)
        if attempt:
            best = min(best, time.perf_counter() - start)
        paths = out
    return best, paths


def bench_viterbi(
    predictor: SlotTaggerPredictor, args: argparse.Namespace, device: torch.device
) -> tuple[list[dict[str, Any]], bool]:
    """Utterances per second of the three decoders at each batch size; whether all agree."""
    data = load_split(resolve_data_dir(args.data_dir), "atis", "valid")
    model = predictor.model.to(device).eval()
    with torch.inference_mode():
        params = model.crf_params(constrained=False)
    emissions, mask = tiled_emissions(predictor, data.tokens, args.rows, device)
    crf = model.crf

    def torchcrf_decode(e: Tensor, m: Tensor) -> list[list[int]]:
        with torch.inference_mode():
            paths: list[list[int]] = crf.decode(e, mask=m)
            return paths

    decoders: dict[str, Callable[[Tensor, Tensor], list[list[int]]]] = {
        "ours (host NumPy)": lambda e, m: viterbi_decode(e, m, params),
        "device tensors": lambda e, m: device_viterbi(e, m, params),
        "pytorch-crf": torchcrf_decode,
    }
    rows, agree = [], True
    for size in args.viterbi_batch:
        reference: list[list[int]] | None = None
        for name, decode in decoders.items():
            # pytorch-crf's backtrack syncs per token: time it on a slice, not all rows.
            n = min(args.rows, args.torchcrf_rows) if name == "pytorch-crf" else args.rows
            seconds, paths = time_decoder(
                decode, emissions[:n], mask[:n], size, device, args.repeats
            )
            same = reference is None or paths == reference[:n]
            agree &= same
            reference = reference if reference is not None else paths
            rows.append(
                {
                    "decoder": name,
                    "batch_size": size,
                    "rows": n,
                    "utterances_per_s": n / seconds,
                    "same_paths": same,
                }
            )
            log(f"batch {size:5d} {name:18s} {n / seconds:12,.0f} utt/s same={same}")
    return rows, agree


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_training",
        description="ATIS tagger epoch time at batch 128 and batched Viterbi throughput "
        "(ours, on-device tensors, pytorch-crf) on a device.",
    )
    add_common_args(p)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--epochs", type=int, default=5, help="epochs trained (default 5)")
    p.add_argument("--batch-size", type=int, default=128, help="training batch (default 128)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    p.add_argument(
        "--vectors",
        default="glove-6b-50d",
        choices=["glove-6b-50d", "none"],
        help="pretrained_vectors of the tagger (default glove-6b-50d, the training default)",
    )
    p.add_argument(
        "--viterbi-batch",
        type=int,
        nargs="+",
        default=[64, 1024, 8192],
        help="decoding batch sizes (default 64 1024 8192)",
    )
    p.add_argument("--rows", type=int, default=65_536, help="utterances decoded (valid, tiled)")
    p.add_argument(
        "--torchcrf-rows",
        type=int,
        default=4_096,
        help="utterances pytorch-crf decodes (it is timed on a prefix: default 4096)",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed passes, best kept")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Train, decode, print both tables; exit 1 if any decoder's paths differ."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.epochs, args.rows, args.torchcrf_rows, args.repeats = 2, 1_024, 256, 1
        args.viterbi_batch = [64]
    started = datetime.now(UTC)
    device = resolve_device(args.device)
    log(
        f"device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )
    predictor, training = train_epochs(args, device)
    viterbi, agree = bench_viterbi(predictor, args, device)
    print(
        format_table(
            [
                "device",
                "batch",
                "epochs",
                "first epoch s",
                "median epoch s (after first)",
                "slot F1",
            ],
            [
                [
                    str(device),
                    training["batch_size"],
                    len(training["epoch_seconds"]),
                    training["first_epoch_seconds"],
                    training["median_epoch_seconds_after_first"],
                    training["valid_slot_f1_last_best"],
                ]
            ],
        )
    )
    print()
    print(
        format_table(
            ["decoder", "batch", "rows", "utt/s", "same paths"],
            [
                [
                    r["decoder"],
                    r["batch_size"],
                    r["rows"],
                    round(r["utterances_per_s"]),
                    r["same_paths"],
                ]
                for r in viterbi
            ],
        )
    )
    payload = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch_version": torch.__version__,
        "training": training,
        "viterbi": viterbi,
        "viterbi_paths_agree": agree,
        "notes": [
            "epoch seconds: wall time of one epoch, training plus the valid evaluation",
            "viterbi: unconstrained CRF scores (as benchmarks/decode.py), emissions precomputed "
            "on the device; best of the timed passes after one warm-up pass",
        ],
    }
    path = write_results(NAME, args, started, payload)
    print(f"\nwrote {Path(path)}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
