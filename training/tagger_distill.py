"""A tagger's intent head distilled from taggers of other seeds (``intent_teacher_seeds``).

Averaging the intent and slot outputs of several seeds' taggers is more accurate than any one
of them (SNIPS 5-fold CV: +9 utterances of 13,784 at two seeds, +10 at three;
docs/results/intents.md, "Averaging seeds"), but serving K taggers costs K forward passes.
Distillation (Hinton et al., "Distilling the Knowledge in a Neural Network", 2015) keeps one:
the teachers, the same configuration trained with each seed of ``intent_teacher_seeds`` on
the same data, read every training utterance once; the student then learns the mean of their
intent probabilities at ``distill_temperature`` beside the gold intent, the teachers' term
weighted ``distill_weight``.

Training the teachers is the cost (one training each), so their raw intent logits on the
training utterances are kept in the ``distill_cache`` folder, keyed by everything they depend
on: the data, the teacher's configuration and seed, the network and training code, torch's
version. Another student seed or another weight then reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from models.calibration import softmax
from models.predictor import SlotTaggerPredictor
from training.config import SlotTrainConfig
from training.tagging import TaggingSet
from training.teacher_cache import resolve_folder

log = logging.getLogger(__name__)

BATCH = 256  # utterances a teacher reads at a time
# What a teacher's training depends on besides the data and its config: the network
# (models/) and the training loop. A change to either trains the teachers again.
_CODE = [Path(__file__).parents[1] / "models", Path(__file__).with_name("loop.py")]
# Settings that change where or how fast a teacher trains, not what it learns.
_NOT_THE_TEACHER = {"threads", "device", "distill_cache", "intent_teacher_seeds"}
_STUDENT_ONLY = ("distill_weight", "distill_temperature")

# (train, valid, config) -> the trained predictor; fit_tagger, passed in (no import cycle).
Fit = Callable[[TaggingSet, TaggingSet, SlotTrainConfig], SlotTaggerPredictor]


def teacher_config(config: SlotTrainConfig, seed: int) -> SlotTrainConfig:
    """The student's configuration with the teacher's seed and no teachers of its own (nor
    their weight and temperature: students that differ only in those share teachers)."""
    unset = {k: SlotTrainConfig.model_fields[k].default for k in _STUDENT_ONLY}
    return config.model_copy(update={**unset, "seed": seed, "intent_teacher_seeds": None})


def soft_targets(
    train: TaggingSet,
    valid: TaggingSet,
    config: SlotTrainConfig,
    intents: list[str],
    fit: Fit,
) -> Tensor:
    """The mean of the teachers' intent probabilities at ``distill_temperature`` on each
    training utterance, ``(len(train), len(intents))``; each teacher trained, or read from
    the cache."""
    folder = resolve_folder(config.distill_cache)
    probs = []
    for seed in config.intent_teacher_seeds or []:
        teacher = teacher_config(config, seed)
        key = cache_key(train, valid, teacher)
        logits = _cached(folder, key, intents)
        if logits is None:
            log.info("teacher seed %d: training on %d utterances", seed, len(train))
            predictor = fit(train, valid, teacher)
            if predictor.intents.labels != intents:
                raise ValueError("a teacher learned other intents than the student")
            logits = intent_logits(predictor, train)
            _keep(folder, key, intents, logits)
        else:
            log.info("teacher seed %d: its logits read from %s", seed, folder)
        probs.append(softmax(logits / config.distill_temperature))
    return torch.from_numpy(np.mean(probs, axis=0).astype(np.float32))


def distill_loss(student_logits: Tensor, targets: Tensor, temperature: float) -> Tensor:
    """``T^2 * KL(teachers || student)`` at temperature ``T``, the mean over the batch (the
    ``T^2`` keeps the gradient's scale as ``T`` changes, as Hinton et al. do)."""
    log_student = nn.functional.log_softmax(student_logits / temperature, dim=-1)
    kl = nn.functional.kl_div(log_student, targets, reduction="batchmean")
    return kl * temperature**2


def intent_logits(predictor: SlotTaggerPredictor, data: TaggingSet) -> np.ndarray:
    """The head's raw intent logits of every utterance of ``data`` (in eval mode)."""
    model = predictor.model
    model.eval()
    rows = []
    with torch.no_grad():
        for start in range(0, len(data), BATCH):
            end = start + BATCH
            batch = predictor.encode(data.tokens[start:end], data.requested[start:end])
            _, logits = model(batch.to(next(model.parameters()).device))
            rows.append(logits.float().cpu().numpy())
    return np.concatenate(rows).astype(np.float32)


def cache_key(train: TaggingSet, valid: TaggingSet, config: SlotTrainConfig) -> str:
    """SHA-256 of what a teacher's logits depend on (the settings of ``_NOT_THE_TEACHER``
    aside)."""
    digest = hashlib.sha256()
    settings = config.model_dump(exclude=_NOT_THE_TEACHER)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(torch.__version__.encode())
    for data in (train, valid):
        rows = [data.tokens, data.tags, data.intents, data.requested]
        digest.update(json.dumps(rows).encode())
    for path in _code_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _code_files() -> list[Path]:
    files: list[Path] = []
    for path in _CODE:
        files += sorted(path.glob("*.py")) if path.is_dir() else [path]
    return files


def _cached(folder: Path | None, key: str, intents: list[str]) -> np.ndarray | None:
    if folder is None:
        return None
    path = folder / f"tagger-{key}.npz"
    try:
        with np.load(path) as kept:
            if list(kept["intents"]) != intents:
                return None
            return np.asarray(kept["logits"], dtype=np.float32)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as err:  # damaged: train the teacher again
        log.warning("teacher cache %s: unreadable (%s); training the teacher", path, err)
        return None


def _keep(folder: Path | None, key: str, intents: list[str], logits: np.ndarray) -> None:
    """Written under a temporary name and renamed: a reader never sees half a file."""
    if folder is None:
        return
    path = folder / f"tagger-{key}.npz"
    part = path.with_name(f"{path.stem}.{os.getpid()}.part.npz")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(part, logits=logits, intents=np.array(intents, dtype=str))
        part.replace(path)
    except OSError as err:
        log.warning("teacher cache %s: cannot write it (%s); going on without it", path, err)
