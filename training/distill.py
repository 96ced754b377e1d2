"""Knowledge distillation of a sentiment classifier (issue 19).

A fine-tuned pretrained encoder reads airline tweets better than the LSTM (valid macro-F1
0.81 against 0.78) but costs 7-8 ms of CPU a parse against 0.9 ms. Distillation keeps the
LSTM at serving time and teaches it the encoder's judgement: the student learns the
teacher's probabilities beside the gold labels, on the training texts, on copies of them
changed by the rules of Tang et al., "Distilling Task-Specific Knowledge from BERT into
Simple Neural Networks" (2019) (each word dropped with probability ``DROP_P``, or, for a
``NGRAM_P`` share of the copies, an n-gram of 1-5 words cut out of the text), and on
unlabelled texts (``distill_texts``) whose words the training set lacks. The teacher labels
each of them, which the gold labels cannot.

The teacher is a trained sentiment artifact with the same labels (``distill_from``, run on
the NumPy engine), several of them (their probabilities averaged: an ensemble teacher, as
Hinton et al. distil an ensemble), or an encoder fine-tuned in the same run
(``distill_encoder``); each reads every text once, before the student's first epoch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from models.artifact import WEIGHTS, file_sha256, load_artifact
from models.calibration import softmax
from models.errors import ArtifactError
from models.predictor import SentimentPredictor
from training.data import DataError, read_tsv
from training.evaluate import sentiment_inputs
from training.teacher_cache import LogitCache, teacher_key

DROP_P = 0.1  # each word of a copy dropped with this probability
NGRAM_P = 0.25  # share of copies that are one n-gram of the text instead
MAX_NGRAM = 5
TEACHER_BATCH = 64
MAX_LOADED = 8  # teachers kept loaded per process (with their logits)


def augment(texts: Sequence[str], copies: int, seed: int) -> list[str]:
    """``copies`` changed copies of each text (text by text, in order); a copy that came
    out empty or equal to its text is drawn again, up to a few times, then kept as is."""
    rng = random.Random(seed)
    out: list[str] = []
    for text in texts:
        words = text.split()
        for _ in range(copies):
            copy = text
            for _attempt in range(4):
                copy = _changed(words, rng)
                if copy and copy != text:
                    break
            out.append(copy or text)
    return out


@dataclass(frozen=True)
class TransferTexts:
    """Unlabelled texts for the teacher to label, and the manifest's record of their files."""

    texts: list[str]
    record: list[dict[str, str]]


def read_transfer_texts(paths: Sequence[str | Path]) -> TransferTexts:
    """Each file's texts in order: a ``text<TAB>label`` file's texts (its labels are not
    read) or a plain file's, one text a line, blank lines skipped; with each file's SHA-256
    for the manifest."""
    texts: list[str] = []
    record: list[dict[str, str]] = []
    for path in map(Path, paths):
        texts += _file_texts(path)
        record.append({"path": str(path), "sha256": file_sha256(path)})
    return TransferTexts(texts, record)


def _file_texts(path: Path) -> list[str]:
    if path.suffix == ".tsv":
        return list(read_tsv(path).texts)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the texts to distil on: {err}") from None
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise DataError(f"{path}: no texts to distil on")
    return texts


def _changed(words: list[str], rng: random.Random) -> str:
    if len(words) > 1 and rng.random() < NGRAM_P:
        n = rng.randint(1, min(MAX_NGRAM, len(words) - 1))
        start = rng.randrange(len(words) - n + 1)
        return " ".join(words[start : start + n])
    return " ".join(w for w in words if rng.random() >= DROP_P)


@dataclass(frozen=True)
class Teacher:
    """A trained classifier whose probabilities a student learns."""

    predictor: SentimentPredictor
    source: dict[str, str]  # the manifest's record: folder and weights' SHA-256
    # Its logits' key in a cache on disk (training/teacher_cache.py); None: not cached (a
    # teacher fine-tuned in the run has no artifact to key it by).
    cache_key: str | None = None
    # Raw logits per text already read: seeds and variants trained in one process
    # (benchmarks.distill) share the teacher's work, most of a distillation's cost.
    seen: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path, labels: Sequence[str]) -> Teacher:
        """Load the sentiment artifact at ``path`` (once per process and weights); its
        labels must be ``labels``."""
        try:
            sha = file_sha256(Path(path) / WEIGHTS)
            teacher = _LOADED.get((str(path), sha))
            if teacher is None:
                source = {"path": str(path), "weights_sha256": sha}
                teacher = cls(_sentiment_predictor(path), source, teacher_key(Path(path), sha))
        except (ArtifactError, OSError) as err:
            raise DataError(f"teacher {path}: {err}") from None
        have = list(teacher.predictor.labels.labels)
        if have != list(labels):
            raise DataError(
                f"teacher {path}: its labels {have} are not the training data's {list(labels)}"
            )
        if len(_LOADED) >= MAX_LOADED:  # a process meets one ensemble's teachers at most
            _LOADED.clear()
        _LOADED[(str(path), sha)] = teacher
        return teacher

    def probabilities(
        self,
        texts: Sequence[str],
        temperature: float,
        progress: str | None = None,
        cache: Path | None = None,
    ) -> np.ndarray:
        """``(len(texts), labels)`` float32: softmax of the raw logits over ``temperature``
        (the artifact's calibration is not applied: the temperature is the distillation's).
        ``progress``: a progress bar's caption (a large text file takes the teacher minutes).
        ``cache``: a folder of logits kept by earlier runs (:mod:`training.teacher_cache`);
        the texts found there are not read again, and the others are kept there."""
        p = self.predictor
        new = list(dict.fromkeys(t for t in texts if t not in self.seen))
        kept = None
        if cache is not None and self.cache_key is not None and new:
            kept = LogitCache(cache, self.cache_key, len(p.labels))
            self.seen.update(kept.get(new))
            new = [t for t in new if t not in self.seen]
        starts = range(0, len(new), TEACHER_BATCH)
        bar = tqdm(starts, desc=progress, unit="batch", leave=False, disable=progress is None)
        for i in bar:
            chunk = new[i : i + TEACHER_BATCH]
            logits = p.logits(p.encode(sentiment_inputs(chunk, p)))
            self.seen.update(zip(chunk, logits, strict=True))
            if kept is not None:
                kept.put(zip(chunk, logits, strict=True))
        if kept is not None:
            kept.close()
        if not texts:
            return np.zeros((0, len(p.labels)), dtype=np.float32)
        scaled = np.stack([self.seen[t] for t in texts]).astype(np.float64) / temperature
        return softmax(scaled).astype(np.float32)


_LOADED: dict[tuple[str, str], Teacher] = {}


def ensemble_probabilities(
    teachers: Sequence[Teacher],
    texts: Sequence[str],
    temperature: float,
    progress: bool = False,
    cache: Path | None = None,
) -> np.ndarray:
    """The mean of the teachers' probabilities at ``temperature`` ``(len(texts), labels)``;
    ``cache`` as :meth:`Teacher.probabilities`."""
    total = np.zeros((len(texts), len(teachers[0].predictor.labels)), dtype=np.float32)
    for i, teacher in enumerate(teachers, start=1):
        caption = f"teacher {i}/{len(teachers)} labels" if progress else None
        total += teacher.probabilities(texts, temperature, caption, cache)
    return total / np.float32(len(teachers))


def _sentiment_predictor(path: Path) -> SentimentPredictor:
    predictor = load_artifact(path, engine="numpy").predictor
    if not isinstance(predictor, SentimentPredictor):
        raise DataError(f"teacher {path}: expected a sentiment artifact, not a tagger")
    return predictor


def soft_cross_entropy(logits: Tensor, target: Tensor, temperature: float) -> Tensor:
    """Per-row cross-entropy of ``logits / temperature`` against target distributions,
    times ``temperature ** 2`` (Hinton et al. 2015: keeps the gradients' scale)."""
    log_p = nn.functional.log_softmax(logits / temperature, dim=-1)
    return -(target * log_p).sum(dim=-1) * temperature**2


def distilled_loss(
    logits: Tensor,
    hard_loss: Tensor,
    soft_target: Tensor,
    is_original: Tensor,
    weight: float,
    temperature: float,
) -> Tensor:
    """The batch loss: on an original text ``(1 - weight) * hard + weight * soft``, on a
    copy (no gold label) the soft term alone; ``hard_loss`` is the per-row gold loss (any
    value on copies), averaged over the batch."""
    soft = soft_cross_entropy(logits, soft_target, temperature)
    mixed = torch.where(is_original, (1 - weight) * hard_loss + weight * soft, soft)
    return mixed.mean()


def teacher_record(
    teachers: Sequence[Teacher],
    copies: int,
    weight: float,
    temperature: float,
    transfer: TransferTexts | None,
) -> dict[str, Any]:
    """What the manifest's ``training.distilled_from`` records: each teacher's folder and
    weights' SHA-256, and how it was distilled."""
    record = {
        "teachers": [t.source for t in teachers],
        "copies": copies,
        "weight": weight,
        "temperature": temperature,
    }
    return record | ({"texts": transfer.record} if transfer else {})
