"""One training pipeline: read a data folder -> fit -> fingerprint the data -> save an artifact.

``slotfill train`` (and through it the service's training jobs, which run it as a child
process), ``slotfill bootstrap`` and the test fixtures all train through :func:`train_folder`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from models.artifact import Task, save_artifact
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.sanity import build as sanity_sample
from training import distributed
from training.calibration import calibrate
from training.config import SentimentTrainConfig, SlotTrainConfig, TrainConfig
from training.data import TextDataset, fingerprint, read_tsv
from training.formats import read_data
from training.formats.answers import with_bare_answers
from training.intent_encoder import encoder_config, fit_intent_encoder
from training.lexical import check_lexical, fit_lexical
from training.loop import EpochCallback, FitResult, fit_sentiment, fit_tagger
from training.slot_types import folder_slot_types, slot_names
from training.tagging import TaggingSet, tagging_set
from training.tagging_eval import evaluate_tagging


@dataclass(frozen=True)
class TrainedFolder:
    """The fitted model and its artifact (None on a ``torchrun`` rank other than 0)."""

    result: FitResult
    artifact: Path | None


def split_paths(task: Task, data: Path) -> tuple[Path, Path]:
    """The train and valid splits of a data folder: folders for ``slots``, TSV files for
    ``sentiment``."""
    if task == "slots":
        return data / "train", data / "valid"
    return data / "train.tsv", data / "valid.tsv"


def data_record(
    task: Task,
    data: Path,
    name: str | None = None,
    files: tuple[list[Path], list[Path]] | None = None,
) -> dict[str, Any]:
    """The manifest's ``data``: the SHA-256 of every file of both splits (``files``: the
    train and valid files a reader read, else :func:`split_paths`) and a name (by default
    the folder's)."""
    train, valid = files if files is not None else ([p] for p in split_paths(task, data))
    return {"train": fingerprint(*train), "valid": fingerprint(*valid), "name": name or data.name}


def train_folder(
    task: Task,
    data: Path,
    config: TrainConfig,
    out: Path,
    *,
    name: str | None = None,
    on_epoch: EpochCallback | None = None,
    show_progress: bool = False,
    on_warning: Callable[[str], None] | None = None,
    data_format: str | None = None,
) -> TrainedFolder:
    """Train on ``data``'s train split, early-stop on its valid split, save to ``out``.

    ``config`` is a :class:`SlotTrainConfig` for ``slots``, a :class:`SentimentTrainConfig`
    for ``sentiment``; ``name`` goes into the manifest (default: the folder's name);
    ``on_warning`` hears about each repaired tag before training starts.
    """
    train_path, valid_path = split_paths(task, data)
    files: tuple[list[Path], list[Path]] | None = None
    # A tagger's fine-tuned intent classifier: its fit, valid ECEs and config.
    intent_fit: tuple[FitResult, dict[str, float], SentimentTrainConfig] | None = None
    if task == "slots":
        if not isinstance(config, SlotTrainConfig):
            raise TypeError(f"training a tagger needs a SlotTrainConfig, not {type(config)}")
        # Any format (training.formats); BIO a#b labels are two intents only when asked for.
        splits = read_data(data, data_format, config.intent_mode == "multi_label")
        files = (splits.train_files, splits.valid_files)
        examples = with_bare_answers(splits.train) if config.bare_answers else splits.train
        train = tagging_set(examples, f"{data} (train)")
        valid = tagging_set(splits.valid, f"{data} (valid)")
        for warning in [*splits.notes, *train.problems, *valid.problems]:
            if on_warning is not None:
                on_warning(warning)
        slot_types, type_warnings = folder_slot_types(
            data, slot_names(train.tags), splits.train, splits.synonyms
        )
        for warning in type_warnings:
            if on_warning is not None:
                on_warning(warning)
        check_lexical(config, train)
        result = fit_tagger(train, valid, config, on_epoch, show_progress, splits.synonyms)
        lexical = fit_lexical(train, valid, config)
        if config.intent_encoder:
            fitted = fit_intent_encoder(train, valid, config, on_epoch, show_progress)
            intent_fit = (*fitted, encoder_config(config))
        held_out: TaggingSet | TextDataset = valid
        checks = [
            {
                "text": e.text,
                "intents": list(e.intents),
                "slots": [[s.start, s.end, s.slot] for s in e.spans],
                "requested_slots": list(e.requested_slots),
            }
            for e in splits.valid
        ]
    else:
        slot_types, lexical = None, None
        if not isinstance(config, SentimentTrainConfig):
            raise TypeError(f"training sentiment needs a SentimentTrainConfig, not {type(config)}")
        train_t, valid_t = read_tsv(train_path), read_tsv(valid_path)
        result = fit_sentiment(train_t, valid_t, config, on_epoch, show_progress)
        held_out = valid_t
        checks = [
            {"text": t, "label": y} for t, y in zip(valid_t.texts, valid_t.labels, strict=True)
        ]
    record = data_record(task, data, name, files)
    if not distributed.is_main():
        return TrainedFolder(result, None)  # every rank holds the same weights; rank 0 saves
    # Temperatures fitted on valid (models.calibration), before the sanity sample is scored.
    calibration = calibrate(result.predictor, held_out)
    if lexical is not None:  # blended with the calibrated head: after the calibration
        served = cast(SlotTaggerPredictor, result.predictor)
        served.attach_lexical(*lexical)
        if intent_fit is None:  # the valid scores of what the artifact serves
            result = replace(
                result, metrics=evaluate_tagging(served, cast(TaggingSet, held_out))[0]
            )
    if intent_fit is None:
        saved = save_fit(out, task, result, config, record, slot_types, checks, calibration)
        return TrainedFolder(result, saved)
    # The classifier is written first, beside ``out``, and moved into the tagger's artifact.
    classifier, classifier_calibration, classifier_config = intent_fit
    tagger, intents = result.predictor, classifier.predictor
    if not isinstance(tagger, SlotTaggerPredictor) or not isinstance(intents, SentimentPredictor):
        raise TypeError("an intent classifier is a text classifier attached to a tagger")
    tagger.attach_intent_classifier(intents, cast(SlotTrainConfig, config).intent_encoder_weight)
    # The valid scores of what the artifact serves: the blended intents, the tagger's slots.
    result = replace(result, metrics=evaluate_tagging(tagger, cast(TaggingSet, held_out))[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        part = save_fit(
            Path(tmp) / "intents",
            "sentiment",
            classifier,
            classifier_config,
            record,
            calibration=classifier_calibration,
        )
        saved = save_fit(
            out, task, result, config, record, slot_types, checks, calibration, part,
            tagger.intent_classifier_weight,
        )  # fmt: skip
    return TrainedFolder(result, saved)


def save_fit(
    out_dir: Path,
    task: str,
    result: FitResult,
    config: TrainConfig,
    data: dict[str, Any],
    slot_types: dict[str, dict[str, Any]] | None = None,
    checks: list[dict[str, Any]] | None = None,
    calibration: dict[str, float] | None = None,
    intent_classifier: Path | None = None,
    intent_classifier_weight: float = 1.0,
) -> Path:
    """Write a fitted model as an artifact; ``data`` becomes the manifest's ``data``,
    ``slot_types`` its slot value types (``training.slot_types``), a spread of ``checks``
    (valid examples, :class:`models.sanity.SanitySample`) what it checks itself on; the
    predictor's temperatures go in the manifest, ``calibration`` (the valid ECEs before and
    after them) in its ``metrics``."""
    p = result.predictor
    kind: Task
    if isinstance(p, SlotTaggerPredictor):
        kind, labels = "slots", {"tags": p.tags.to_list(), "intents": p.intents.to_list()}
        if len(p.requested):
            labels["requested_slots"] = p.requested.to_list()
    else:
        kind, labels = "sentiment", {"sentiment": p.labels.to_list()}
    return save_artifact(
        out_dir,
        task=kind,
        model=p.model,
        vocabs={"words": p.words, "chars": p.chars},
        labels=labels,
        training={
            "task": task,
            "config": config.model_dump(),
            "best_epoch": result.best_epoch,
            "seconds_to_best": result.seconds_to_best,
        }
        | ({"pretrained_encoder": result.pretrained} if result.pretrained else {})
        | ({"distilled_from": result.teacher} if result.teacher else {}),
        metrics={"valid": result.metrics} | ({"calibration": calibration} if calibration else {}),
        history=result.history,
        data=data,
        synonyms=p.synonyms if isinstance(p, SlotTaggerPredictor) else None,
        slot_types=slot_types,
        sanity=sanity_sample(p, checks) if checks else None,
        temperatures=p.temperatures,
        intent_classifier=intent_classifier,
        intent_classifier_weight=intent_classifier_weight,
        intent_slots=p.intent_slots if isinstance(p, SlotTaggerPredictor) else None,
        lexical=p.lexical if isinstance(p, SlotTaggerPredictor) else None,
        lexical_weight=p.lexical_weight if isinstance(p, SlotTaggerPredictor) else 0.0,
    )
