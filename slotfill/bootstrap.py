"""``slotfill bootstrap``: the demo models a fresh ``make run`` serves, trained if missing.

The tagger and the sentiment model are independent, and neither training keeps two cores
busy (small batches: most of a step is Python), so with two models to train and at least
two cores each trains in its own process on its share of the cores, side by side. Each
prints a line an epoch, prefixed with its model's name.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from models.artifact import Task


@dataclass(frozen=True)
class DemoJob:
    """One demo model to train: its name in the store, task, data folder and output."""

    name: str
    task: Task
    data: Path
    out: Path


def bootstrap(force: bool = False) -> int:
    """Train the models that ``SLOTFILL_DEFAULT_MODEL`` and ``SLOTFILL_SENTIMENT_MODEL`` name
    from the demo data into the model store, unless they exist (``force``: train anyway)."""
    from app.config import get_settings
    from models.store import latest_version, new_version, version_dir

    settings = get_settings()
    store, demo = settings.model_store, settings.demo_data_dir
    wanted: list[tuple[str, Task]] = [(settings.default_model, "slots")]
    if settings.sentiment_model:
        wanted.append((settings.sentiment_model, "sentiment"))
    jobs: list[DemoJob] = []
    for name, task in wanted:
        if latest_version(store, name) and not force:
            print(f"{name}: {latest_version(store, name)} already in {store}")
            continue
        data = demo if task == "slots" else demo / "sentiment"
        jobs.append(DemoJob(name, task, data, version_dir(store, name, new_version())))
    if not jobs:
        return 0
    cores = os.cpu_count() or 1
    for job in jobs:
        print(f"{job.name}: training the demo {job.task} model from {job.data} ...", flush=True)
    if len(jobs) == 1 or cores == 1:  # one after the other, on every core
        lines = [train_demo(job, cores) for job in jobs]
    else:
        # spawn: a fresh interpreter, not a fork of one whose torch may hold thread pools.
        with ProcessPoolExecutor(len(jobs), mp_context=get_context("spawn")) as pool:
            lines = list(pool.map(train_demo, jobs, [cores // len(jobs)] * len(jobs)))
    for line in lines:
        print(line)
    return 0


def train_demo(job: DemoJob, threads: int) -> str:
    """Train ``job`` on ``threads`` threads; its line for the summary."""
    from training.config import SentimentTrainConfig, SlotTrainConfig, TrainConfig
    from training.pipeline import train_folder

    config: TrainConfig
    if job.task == "slots":
        config = SlotTrainConfig(epochs=15, patience=4, threads=threads)
    else:
        # The demo set is small: the GloVe vectors give words it lacks ("love",
        # "ridiculous") their mood. Hand-made check set (tests/data/
        # demo_expectations.jsonl), same data, seed 13: accuracy 0.931 without (10 epochs),
        # 0.956 with (12).
        config = SentimentTrainConfig(
            epochs=12, patience=3, pretrained_vectors="glove-6b-50d", threads=threads
        )

    def report(record: dict[str, Any]) -> None:
        valid = record["valid"]
        metric = "slot_f1" if job.task == "slots" else "macro_f1"
        print(
            f"{job.name}: epoch {record['epoch']}/{config.epochs} loss {record['loss']:.4f} "
            f"valid {metric} {valid[metric]:.4f} ({record['seconds']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    trained = train_folder(job.task, job.data, config, job.out, name="demo", on_epoch=report)
    scores = {k: round(v, 4) for k, v in trained.result.metrics.items() if isinstance(v, float)}
    return f"{job.name}: saved {job.out.name}, valid {scores}"
