"""Recurrent cell comparison: lstm / gru / irnn with otherwise default hyper-parameters.

For every data set and cell, ``training.loop.fit_tagger`` trains on ``train`` and early-stops
on ``valid``; the table shows the best valid slot F1 with its intent accuracy, the best
epoch, seconds to reach it and the total training time. With several seeds a median row
follows each (data set, cell); ``--jobs 2 --threads 1`` trains two runs at a time, one core
each, which is how the default taggers' seed medians in the README are measured:

    python -m benchmarks.cells --datasets atis snips --cells lstm gru irnn
    python -m benchmarks.cells --cells lstm --seeds 13 1 2 --threads 1 --jobs 2
    python -m benchmarks.cells --cells lstm --seeds 13 1 2 --set intent_weight=2  # a variant
    python -m benchmarks.cells --quick
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DATASETS,
    add_common_args,
    elapsed,
    epoch_logger,
    format_table,
    load_split,
    log,
    resolve_data_dir,
    subsample,
    write_results,
)
from training.config import SlotTrainConfig
from training.data import SlotDataset
from training.loop import fit_tagger, resolve_device

NAME = "cells"
CELLS = ("lstm", "gru", "irnn")
QUICK = {"max_train": 300, "epochs": 2}
# Hyper-parameters with a flag of their own here (as do cell and seed), not for --set.
OWN_FLAGS = ("max_minutes", "epochs", "threads", "device")


def run_one(
    train: SlotDataset, valid: SlotDataset, config: SlotTrainConfig, label: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train one tagger; its summary row and per-epoch history."""

    start = time.perf_counter()
    report = epoch_logger(label, "slot_f1")
    result = fit_tagger(train, valid, config, on_epoch=report, show_progress=False)
    total = elapsed(start)
    history = [
        {
            "epoch": h["epoch"],
            "loss": h["loss"],
            "seconds": h["seconds"],
            "slot_f1": h["valid"]["slot_f1"],
            "intent_accuracy": h["valid"]["intent_accuracy"],
        }
        for h in result.history
    ]
    last_seconds = float(result.history[-1]["seconds"]) if result.history else 0.0
    if len(result.history) >= config.epochs:
        stopped_by = "epochs"
    elif config.max_minutes is not None and last_seconds > config.max_minutes * 60:
        stopped_by = "max_minutes"
    else:
        stopped_by = "patience"
    summary = {
        "slot_f1": result.metrics["slot_f1"],
        "slot_precision": result.metrics["slot_precision"],
        "slot_recall": result.metrics["slot_recall"],
        "intent_accuracy": result.metrics["intent_accuracy"],
        "exact_match": result.metrics["exact_match"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "seconds_to_best": result.seconds_to_best,
        "total_seconds": total,
        "stopped_by": stopped_by,
    }
    return summary, history


@functools.cache  # once per process and data set, however many runs train on it
def splits(data_dir: Path, dataset: str, max_train: int | None) -> tuple[SlotDataset, SlotDataset]:
    """The (subsampled) train split and the valid split of ``dataset``."""
    train = subsample(load_split(data_dir, dataset, "train"), max_train, 13)
    return train, load_split(data_dir, dataset, "valid")


def train_job(
    data_dir: Path, dataset: str, max_train: int | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """One result row: train with ``overrides``, summarise (runs in a worker process with
    ``--jobs``)."""
    train, valid = splits(data_dir, dataset, max_train)
    config = SlotTrainConfig(**overrides)
    label = f"{dataset}/{config.cell}/seed{config.seed}"
    log(f"{label}: {len(train)} train, {len(valid)} valid")
    summary, history = run_one(train, valid, config, label)
    return {
        "dataset": dataset,
        "cell": config.cell,
        "seed": config.seed,
        "train_utterances": len(train),
        "valid_utterances": len(valid),
        "device": str(resolve_device(config.device)),
        "config": config.model_dump(),
        **summary,
        "history": history,
    }


def aggregate(group: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median (the table's row), mean and standard deviation over a group's seeds."""
    agg: dict[str, Any] = {
        "dataset": group[0]["dataset"],
        "cell": group[0]["cell"],
        "seed": "median",
    }
    for key in ("slot_f1", "intent_accuracy", "seconds_to_best", "total_seconds"):
        values = [float(r[key]) for r in group]
        agg[key] = statistics.median(values)
        agg[f"{key}_mean"] = statistics.fmean(values)
        agg[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    agg["seeds"] = [r["seed"] for r in group]
    return agg


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a JSON value (a bare word is a string): one hyper-parameter."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.cells",
        description="Best valid slot F1, intent accuracy, best epoch, seconds to best and total "
        "training seconds of the tagger with each recurrent cell.",
    )
    add_common_args(p)
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="SlotTrainConfig.max_minutes: stop a run after this much training time",
    )
    p.add_argument(
        "--max-train",
        type=int,
        default=None,
        metavar="N",
        help=f"train on a random N utterances (default: all; --quick: {QUICK['max_train']})",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"most epochs (default: SlotTrainConfig's; --quick: {QUICK['epochs']})",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[13],
        help="training seeds; with several, a median row follows each cell (default: 13)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument(
        "--set",
        type=parse_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other SlotTrainConfig hyper-parameter for every run, e.g. "
        "--set intent_weight=2 --set pretrained_vectors=none (repeatable)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at a time, each in its own process (default: 1); "
        "use with --threads so that jobs x threads <= cores",
    )
    p.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=None, help="default: config's (auto)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Train every (data set, cell, seed) and write the table and JSON."""
    args = build_parser().parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    started = datetime.now(UTC)
    if args.jobs < 1:
        build_parser().error("--jobs must be at least 1")
    settings = dict(args.set)
    flagged = sorted(settings.keys() & {"cell", "seed", *OWN_FLAGS})
    if flagged:
        key = flagged[0]
        flag = {"cell": "--cells", "seed": "--seeds"}.get(key, "--" + key.replace("_", "-"))
        build_parser().error(f"--set {key}: use {flag} instead")
    try:
        SlotTrainConfig(**settings)
    except ValueError as exc:  # pydantic's ValidationError names the bad key or value
        build_parser().error(f"--set: {exc}")
    data_dir = resolve_data_dir(args.data_dir)
    jobs: list[tuple[Path, str, int | None, dict[str, Any]]] = []
    for dataset in args.datasets:
        for cell in args.cells:
            for seed in args.seeds:
                overrides: dict[str, Any] = {**settings, "cell": cell, "seed": seed}
                for key in OWN_FLAGS:
                    if getattr(args, key) is not None:
                        overrides[key] = getattr(args, key)
                jobs.append((data_dir, dataset, args.max_train, overrides))
    if args.jobs == 1:
        results = [train_job(*job) for job in jobs]
    else:
        # spawn: a forked child would inherit the parent's torch thread pool state
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            results = list(pool.map(train_job, *zip(*jobs, strict=True)))
    columns = (
        ("dataset", "dataset"),
        ("cell", "cell"),
        ("seed", "seed"),
        ("slot_f1", "slot_f1"),
        ("intent_acc", "intent_accuracy"),
        ("best_ep", "best_epoch"),
        ("epochs", "epochs_run"),
        ("s_to_best", "seconds_to_best"),
        ("total_s", "total_seconds"),
        ("stopped", "stopped_by"),
    )
    headers = [h for h, _ in columns]
    rows: list[list[Any]] = [[r.get(key) for _, key in columns] for r in results]
    aggregates = []
    if len(args.seeds) > 1:
        for dataset in args.datasets:
            for cell in args.cells:
                group = [r for r in results if r["dataset"] == dataset and r["cell"] == cell]
                aggregates.append(aggregate(group))
                rows.append([aggregates[-1].get(key) for _, key in columns])
    print(format_table(headers, rows))
    notes = [
        "slot_f1 / intent_acc: valid metrics of the best epoch (the split also used for early "
        "stopping), scored by training.metrics.slot_metrics",
        "s_to_best / total_s: fit_tagger wall time including per-epoch valid evaluation; "
        "total_s also includes vocabulary building and restoring the best weights",
    ]
    payload = {"results": results, "aggregates": aggregates, "notes": notes}
    path = write_results(NAME, args, started, payload)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
