"""Helpers shared by the benchmark scripts: data location, machine info, timing, output."""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from models import native
from models.predictor import SlotTaggerPredictor
from training.config import SlotTrainConfig
from training.data import SlotDataset, read_slot_folder
from training.tagging import TaggingSet, as_tagging
from training.tagging_eval import evaluate_tagging

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DATASETS = ("atis", "snips")
_ENV_KEYS = (
    "SLOTFILL_DATA_DIR",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)

T = TypeVar("T")


def default_data_dir() -> Path:
    """``$SLOTFILL_DATA_DIR``, else ``../shared/data`` relative to the repository root."""
    env = os.environ.get("SLOTFILL_DATA_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--out`` and ``--quick``, the same in every script."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder holding atis/ and snips/ (default: $SLOTFILL_DATA_DIR, else ../shared/data "
        "relative to the repository root)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON result file (default: benchmarks/results/<name>.json, "
        "or <name>.quick.json with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small smoke run (subsampled data, few epochs); numbers are not meaningful",
    )


def resolve_data_dir(arg: Path | None) -> Path:
    """The data folder from ``--data-dir`` or the default; fails early if it is missing."""
    path = arg if arg is not None else default_data_dir()
    if not path.is_dir():
        raise SystemExit(
            f"error: data folder {path} not found (set SLOTFILL_DATA_DIR or --data-dir)"
        )
    return path


def load_split(data_dir: Path, dataset: str, split: str) -> SlotDataset:
    """Read ``data_dir/dataset/split``; label repairs are counted on stderr."""
    data = read_slot_folder(data_dir / dataset / split)
    if data.repairs:
        log(f"{dataset}/{split}: {len(data.repairs)} I- tags read as B- (see training.data)")
    return data


def subsample(data: SlotDataset, n: int | None, seed: int) -> SlotDataset:
    """A deterministic random subset of ``n`` utterances in corpus order (all if ``n`` is None)."""
    if n is None or n >= len(data):
        return data
    keep = sorted(random.Random(seed).sample(range(len(data)), n))
    return SlotDataset(
        [data.tokens[i] for i in keep],
        [data.tags[i] for i in keep],
        [data.intents[i] for i in keep] if data.intents is not None else None,
        f"{data.source} (random {n} of {len(data)}, seed {seed})",
        [],
    )


def texts_of(data: SlotDataset) -> list[str]:
    """Raw text of every utterance: its tokens joined by single spaces."""
    return [" ".join(tokens) for tokens in data.tokens]


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the result tables."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def epoch_logger(label: str, metric: str) -> Callable[[dict[str, Any]], None]:
    """An ``on_epoch`` callback for ``fit_tagger``/``fit_sentiment``: one line an epoch on
    stderr (``label``, the loss, the valid ``metric``, the best epoch so far, seconds)."""

    def report(record: dict[str, Any]) -> None:
        log(
            f"  {label} epoch {record['epoch']}: loss {record['loss']:.3f}  "
            f"{metric} {record['valid'][metric]:.4f}  best {record['best_epoch']}  "
            f"{record['seconds']:.0f}s"
        )

    return report


def _git_revision() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def machine_info() -> dict[str, Any]:
    """CPU count, platform, library versions and thread settings of this run."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "numpy": np.__version__,
        "native_kernels": {
            "built": native.available(),
            "fma": native.uses_fma(),
            "f16c": native.uses_f16c(),
        },
        "git": _git_revision(),
        "env": {k: os.environ[k] for k in _ENV_KEYS if k in os.environ},
    }
    cpu_model = _cpu_model()
    if cpu_model:
        info["cpu_model"] = cpu_model
    return info


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def command_line(module: str) -> str:
    """The command that reproduces this run, as typed from the repository root."""
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


def result_path(name: str, args: argparse.Namespace) -> Path:
    """``--out``, else ``benchmarks/results/<name>[.quick].json``."""
    if args.out is not None:
        return Path(args.out)
    return RESULTS_DIR / f"{name}{'.quick' if args.quick else ''}.json"


def portable(value: Any) -> Any:
    """``value`` with this machine's absolute paths made quotable: relative to the repository
    where they are inside it, else ``<abs>/`` and their last two parts (committed results)."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable(v) for v in value]
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or "/" not in value:
        return value
    words = []
    for word in value.split(" "):
        if word.startswith("/"):
            path = Path(word)
            if path.is_relative_to(REPO_ROOT):
                word = str(path.relative_to(REPO_ROOT)) or "."
            else:
                word = "<abs>/" + "/".join(path.parts[-2:])
        words.append(word)
    return " ".join(words)


def write_results(
    name: str, args: argparse.Namespace, started: datetime, payload: dict[str, Any]
) -> Path:
    """Write the JSON result with machine info, the exact command and the arguments."""
    path = result_path(name, args)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "command": portable(command_line(f"benchmarks.{name}")),
        "python_executable": portable(sys.executable),
        "arguments": portable(vars(args)),
        "quick": bool(args.quick),
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        **payload,
    }
    path.write_text(json.dumps(portable(document), indent=2, default=str) + "\n")
    return path


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Fixed-width text table; floats get 4 significant decimals, None prints as ``-``."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    body = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in body)
    return "\n".join(lines)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/mean/max of per-call times, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "n": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def time_each(fn: Callable[[T], object], items: Sequence[T], warmup: int) -> list[float]:
    """Seconds of ``fn(item)`` for every item, after ``warmup`` untimed calls."""
    for item in items[: max(warmup, 0)]:
        fn(item)
    gc.collect()
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return times


def throughput(
    fn: Callable[[Sequence[T]], object], items: Sequence[T], batch_size: int, repeats: int
) -> dict[str, float]:
    """Items per second of ``fn`` over ``items`` in batches (best of ``repeats`` passes)."""
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    fn(batches[0])  # warm-up
    best = float("inf")
    for _ in range(max(repeats, 1)):
        gc.collect()
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - start)
    return {
        "batch_size": batch_size,
        "items": len(items),
        "seconds_best_pass": best,
        "per_second": len(items) / best if best > 0 else float("inf"),
        "repeats": max(repeats, 1),
    }


@contextmanager
def limited_threads(n: int) -> Iterator[None]:
    """Run torch and the BLAS/OpenMP pools (numpy, thinc) on ``n`` threads, then restore."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(previous)


def elapsed(start: float) -> float:
    """Seconds since ``start`` (a :func:`time.perf_counter` value)."""
    return time.perf_counter() - start


def serving_rule(
    reference: SlotTaggerPredictor, candidate: SlotTaggerPredictor, split: SlotDataset
) -> tuple[float, dict[str, Any], dict[str, Any], bool]:
    """The rule a faster model (int8, another engine) must hold to serve: the same tags on
    >= 99.5% of ``split``'s utterances, slot F1 and intent accuracy within 0.002 of
    ``reference``'s. Returns the share of same tags, both scores and whether it holds."""
    data = as_tagging(split)
    (rs, rp), (cs, cp) = (evaluate_tagging(p, data) for p in (reference, candidate))
    same = sum(a == b for a, b in zip(rp["tags"], cp["tags"], strict=True)) / len(data)
    f1, acc = cs["slot_f1"] - rs["slot_f1"], cs["intent_accuracy"] - rs["intent_accuracy"]
    return same, rs, cs, same >= 0.995 and abs(f1) <= 0.002 and abs(acc) <= 0.002


@dataclass(frozen=True)
class FoldTagger:
    """One fold of ``slotfill cv slots``'s assignment with the tagger trained on its
    training part and calibrated on its stop part (the probes' common first step)."""

    number: int  # 1-based, as --only-folds
    pooled: TaggingSet  # train + valid of the data folder
    labels: list[str]  # each pooled example's intent label (``#``-joined)
    train: TaggingSet
    stop: TaggingSet
    test: list[int]  # indices into ``pooled``
    tagger: SlotTaggerPredictor


def fold_splits(
    data: Path, folds: int, only: Sequence[int] | None
) -> Iterator[tuple[int, TaggingSet, list[str], TaggingSet, TaggingSet, list[int]]]:
    """Each fold (or each in ``only``) of ``data``'s pooled train + valid splits, as
    ``slotfill cv slots`` deals them: its number, the pool, every pooled example's intent
    label, the fold's training and stop parts, and its held-out indices into the pool."""
    from training.cv import make_folds, subset
    from training.formats import read_data
    from training.tagging import tagging_set

    splits = read_data(data, None, False)
    pooled = tagging_set([*splits.train, *splits.valid], f"{data} (train + valid)")
    labels = ["#".join(i) for i in pooled.intents]
    for n, fold in enumerate(make_folds(labels, folds), start=1):
        if only and n not in only:
            continue
        train = subset(pooled, fold.train, "cv train")
        stop = subset(pooled, fold.stop, "cv stop")
        yield n, pooled, labels, train, stop, list(fold.test)


def fold_taggers(
    data: Path, config: SlotTrainConfig, folds: int, only: Sequence[int] | None
) -> Iterator[FoldTagger]:
    """Train ``config``'s tagger on each fold (or on the folds in ``only``) of ``data``'s
    pooled train + valid splits, as ``slotfill cv slots`` deals them, and calibrate it."""
    from training.calibration import calibrate_tagger
    from training.loop import fit_tagger

    for n, pooled, labels, train, stop, test in fold_splits(data, folds, only):
        tagger = fit_tagger(train, stop, config, show_progress=False).predictor
        assert isinstance(tagger, SlotTaggerPredictor)
        calibrate_tagger(tagger, stop)
        yield FoldTagger(n, pooled, labels, train, stop, test, tagger)
