"""Stratified k-fold cross-validation over a data folder's train + valid, pooled.

The valid splits are too small and too skewed to choose intent models on (ATIS valid has
16 of the 21 training intents, several with one or two examples). Cross-validation scores
every pooled example once per seed, on the same folds for every seed and configuration.
Besides each fold's scores, the out-of-fold predictions of all folds are scored together
per seed ("pooled", as scikit-learn's ``cross_val_predict``): a class with one or two
examples per fold gives a fold macro-F1 of noise, pooled it has all its examples.
Each fold trains with the ordinary loop (:func:`training.loop.fit_tagger` /
:func:`training.loop.fit_sentiment`, what ``slotfill train`` runs) and early-stops on a
stratified part of its own training folds, never on the held-out fold.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.artifact import Task
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from training.calibration import calibrate_tagger
from training.config import SentimentTrainConfig, SlotTrainConfig, TrainConfig
from training.data import DataError, TextDataset, read_tsv
from training.evaluate import evaluate_sentiment
from training.formats import read_data
from training.formats.answers import with_bare_answers
from training.intent_encoder import fit_intent_encoder
from training.lexical import check_lexical, fit_lexical
from training.loop import EpochCallback, epoch_text, fit_sentiment, fit_tagger
from training.pipeline import split_paths
from training.tagging import TaggingSet, tagging_set
from training.tagging_eval import evaluate_tagging

# Intents rarer than this in the pooled data are left out of the macro-F1: a class with one
# or two examples has a fold F1 of 0 or 1 and would swamp the average.
MACRO_MIN_EXAMPLES = 5
# Aggregated per fold and seed: median, min, max, standard deviation.
SLOT_KEYS = ("intent_accuracy", "intent_macro_f1", "slot_f1", "exact_match")
SENTIMENT_KEYS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class Fold:
    """Indices into the pooled data: trained on, early-stopped on, scored on."""

    train: list[int]
    stop: list[int]
    test: list[int]


def stratified_folds(labels: Sequence[str], k: int, seed: int = 0) -> list[list[int]]:
    """``k`` disjoint folds covering every index, each class spread evenly.

    The classes' shuffled members are dealt round-robin with one pointer running on from
    class to class: every class's count differs by at most one between folds, fold sizes
    too, and the classes with fewer examples than folds land in different folds.
    """
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, not {k}")
    if len(labels) < k:
        raise ValueError(f"{len(labels)} examples cannot fill {k} folds")
    rng = random.Random(seed)
    members: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        members[label].append(i)
    folds: list[list[int]] = [[] for _ in range(k)]
    pointer = 0
    for label in sorted(members):
        shuffled = members[label]
        rng.shuffle(shuffled)
        for i in shuffled:
            folds[pointer % k].append(i)
            pointer += 1
    return [sorted(f) for f in folds]


def stopping_split(
    indices: Sequence[int], labels: Sequence[str], fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """(train, stop): ``fraction`` of each class of ``indices`` (rounded down) for early
    stopping; a class under 1 / ``fraction`` examples stays whole in training, where its
    few examples are needed more."""
    rng = random.Random(seed)
    members: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        members[labels[i]].append(i)
    train: list[int] = []
    stop: list[int] = []
    for label in sorted(members):
        shuffled = members[label]
        rng.shuffle(shuffled)
        held = int(len(shuffled) * fraction)
        stop.extend(shuffled[:held])
        train.extend(shuffled[held:])
    return sorted(train), sorted(stop)


def make_folds(
    labels: Sequence[str], k: int, stop_fraction: float = 0.1, seed: int = 0
) -> list[Fold]:
    """The ``k`` folds of :func:`stratified_folds`, each with its early-stopping part."""
    tests = stratified_folds(labels, k, seed)
    out = []
    for n, test in enumerate(tests):
        held = set(test)
        rest = [i for i in range(len(labels)) if i not in held]
        train, stop = stopping_split(rest, labels, stop_fraction, seed + n + 1)
        out.append(Fold(train, stop, test))
    return out


def subset(data: TaggingSet, indices: Sequence[int], name: str) -> TaggingSet:
    """The examples ``indices`` of ``data``, in that order."""
    return TaggingSet(
        [data.tokens[i] for i in indices],
        [data.tags[i] for i in indices],
        [data.intents[i] for i in indices],
        [data.requested[i] for i in indices],
        name,
        [data.where[i] for i in indices],
    )


def text_subset(data: TextDataset, indices: Sequence[int], name: str) -> TextDataset:
    """The rows ``indices`` of ``data``, in that order."""
    return TextDataset([data.texts[i] for i in indices], [data.labels[i] for i in indices], name)


def intent_label(intents: Sequence[str], multi: bool) -> str:
    """One string per example, as ``slotfill evaluate`` compares intents: a multi-label
    model's set joined by ``+`` (sorted), a single label as it is; ``""`` for none."""
    return "+".join(sorted(intents)) if multi else "#".join(intents)


def class_scores(
    gold: Sequence[str], pred: Sequence[str], classes: Sequence[str]
) -> tuple[float, dict[str, float]]:
    """Macro-F1 over ``classes`` and the F1 of each (0 for a class neither predicted nor
    present: it cannot occur, since ``classes`` are taken from the pooled gold labels)."""
    f1: dict[str, float] = {}
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        n_gold, n_pred = sum(g == c for g in gold), sum(p == c for p in pred)
        f1[c] = 2 * tp / (n_gold + n_pred) if n_gold + n_pred else 0.0
    present = [c for c in classes if c in set(gold)]  # a fold may lack a 5-example class
    return (sum(f1[c] for c in present) / len(present) if present else 0.0), f1


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and sample standard deviation (0 for one value)."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def pooled_scores(
    gold: Sequence[str], pred: Sequence[str], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy and macro-F1 over ``classes`` of one seed's out-of-fold predictions, all
    folds together, and the errors as ``[gold, predicted, count]`` (most frequent first)."""
    errors = Counter((g, p) for g, p in zip(gold, pred, strict=True) if g != p)
    return {
        "accuracy": sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold),
        "macro_f1": class_scores(gold, pred, classes)[0] if classes else None,
        "errors": [[g, p, n] for (g, p), n in errors.most_common()],
    }


def per_class_recall(
    gold: Sequence[str], pred_by_seed: Sequence[Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """Out-of-fold recall of every gold class (each example is held out once per seed):
    its count, the median and range over seeds, and what it was most often taken for."""
    counts = Counter(gold)
    out: dict[str, dict[str, Any]] = {}
    for c in sorted(counts, key=lambda c: (-counts[c], c)):
        recalls, wrong = [], Counter[str]()
        for pred in pred_by_seed:
            right = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
            recalls.append(right / counts[c])
            wrong.update(p for g, p in zip(gold, pred, strict=True) if g == c and p != c)
        top = wrong.most_common(1)
        out[c] = {
            "n": counts[c],
            "recall": statistics.median(recalls),
            "recall_min": min(recalls),
            "recall_max": max(recalls),
            "confused_with": top[0][0] if top else None,
        }
    return out


Progress = Callable[[str], None]


@dataclass(frozen=True)
class Pooled:
    """What a task's cross-validation needs: labels to stratify on, and per fold a
    function training on (train, stop) and returning (scores, predicted labels of test)."""

    labels: list[str]
    macro_classes: list[str]  # the classes the macro-F1 averages
    run_fold: Callable[[Fold, TrainConfig, EpochCallback], tuple[dict[str, Any], list[str], int]]
    notes: list[str]


def _slot_pool(data: Path, config: SlotTrainConfig, data_format: str | None) -> Pooled:
    splits = read_data(data, data_format, config.intent_mode == "multi_label")
    examples = [*splits.train, *splits.valid]
    pooled = tagging_set(examples, f"{data} (train + valid)")
    multi = config.intent_mode == "multi_label" or (
        config.intent_mode == "auto" and pooled.multi_intent
    )
    check_lexical(config, pooled)
    labels = [intent_label(i, multi) for i in pooled.intents]
    eligible = sorted(c for c, n in Counter(labels).items() if n >= MACRO_MIN_EXAMPLES and c)

    def run_fold(
        fold: Fold, cfg: TrainConfig, on_epoch: EpochCallback
    ) -> tuple[dict[str, Any], list[str], int]:
        assert isinstance(cfg, SlotTrainConfig)
        if cfg.bare_answers:  # as `slotfill train` does, from the training folds alone
            train = tagging_set(with_bare_answers([examples[i] for i in fold.train]), "cv train")
        else:
            train = subset(pooled, fold.train, "cv train")
        stop = subset(pooled, fold.stop, "cv stop")
        test = subset(pooled, fold.test, "cv test")
        fit = fit_tagger(train, stop, cfg, on_epoch, show_progress=False, synonyms=splits.synonyms)
        assert isinstance(fit.predictor, SlotTaggerPredictor)
        lexical = fit_lexical(train, stop, cfg)
        if cfg.intent_encoder or lexical:  # blends of calibrated probabilities, as in train
            calibrate_tagger(fit.predictor, stop)
        if lexical:
            fit.predictor.attach_lexical(*lexical)
        if cfg.intent_encoder:  # the intents blended with a fine-tuned encoder's, as in train
            classifier = fit_intent_encoder(train, stop, cfg)[0].predictor
            assert isinstance(classifier, SentimentPredictor)
            fit.predictor.attach_intent_classifier(classifier, cfg.intent_encoder_weight)
        scores, predicted = evaluate_tagging(fit.predictor, test)
        pred = [intent_label(p, multi) for p in predicted["intents"]]
        if pooled.has_intents:
            gold = [labels[i] for i in fold.test]
            scores["intent_macro_f1"] = class_scores(gold, pred, eligible)[0]
        return scores, pred, fit.best_epoch

    notes = [*splits.notes, *pooled.problems]
    return Pooled(labels, eligible if pooled.has_intents else [], run_fold, notes)


def _sentiment_pool(data: Path) -> Pooled:
    train_path, valid_path = split_paths("sentiment", data)
    train_rows, valid_rows = read_tsv(train_path), read_tsv(valid_path)
    pooled = TextDataset(
        [*train_rows.texts, *valid_rows.texts], [*train_rows.labels, *valid_rows.labels], str(data)
    )

    def run_fold(
        fold: Fold, cfg: TrainConfig, on_epoch: EpochCallback
    ) -> tuple[dict[str, Any], list[str], int]:
        assert isinstance(cfg, SentimentTrainConfig)
        if cfg.distill_from:
            raise DataError(
                "distill_from: a teacher trained on this data has seen every held-out fold; "
                "distill_encoder trains one teacher per fold (README: Distilling the encoder)"
            )
        train = text_subset(pooled, fold.train, "cv train")
        stop = text_subset(pooled, fold.stop, "cv stop")
        test = text_subset(pooled, fold.test, "cv test")
        fit = fit_sentiment(train, stop, cfg, on_epoch, show_progress=False)
        assert isinstance(fit.predictor, SentimentPredictor)
        full, pred = evaluate_sentiment(fit.predictor, test)
        return {k: full[k] for k in ("accuracy", "macro_f1", "n")}, pred, fit.best_epoch

    return Pooled(list(pooled.labels), sorted(set(pooled.labels)), run_fold, [])


def _epoch_line(say: Progress, seed: int, fold: int, folds: int) -> EpochCallback:
    """One progress line per epoch of a fold's training: a fold trains for minutes (a
    distilled one for half an hour), and the fold's own line comes only at its end."""

    def report(record: dict[str, Any]) -> None:
        say(f"seed {seed} fold {fold}/{folds}: {epoch_text(record)}")

    return report


def cross_validate(
    task: Task,
    data: Path,
    config: TrainConfig,
    *,
    folds: int = 5,
    seeds: Sequence[int] = (13,),
    fold_seed: int = 0,
    stop_fraction: float = 0.1,
    data_format: str | None = None,
    progress: Progress | None = None,
    only_folds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Cross-validate ``config`` on ``data`` (train + valid pooled) for every seed.

    Folds depend on ``fold_seed`` only, so seeds and configurations are compared on the
    same folds; ``only_folds`` (numbered from 1) runs some of them, for a cheap first look
    (the recall per class then covers their examples only). Returns ``runs`` (one per seed
    and fold), ``summary`` (each score's :func:`spread` over folds x seeds), ``per_class``
    (:func:`per_class_recall`), ``pooled`` (per seed, :func:`pooled_scores` of the
    out-of-fold predictions, and the accuracy's and macro-F1's :func:`spread` over seeds)
    and, for a tagger with intents, ``macro_f1_classes`` (the intents the macro-F1 averages).
    """
    say = progress or (lambda _: None)
    if not 0 < stop_fraction < 0.5:
        raise DataError(f"the early-stopping fraction must be in (0, 0.5), not {stop_fraction}")
    keys: tuple[str, ...]
    if task == "slots":
        if not isinstance(config, SlotTrainConfig):
            raise TypeError(f"cross-validating a tagger needs a SlotTrainConfig, not {config}")
        pool = _slot_pool(data, config, data_format)
        keys = SLOT_KEYS
    else:
        if not isinstance(config, SentimentTrainConfig):
            raise TypeError(f"cross-validating sentiment needs a SentimentTrainConfig: {config}")
        pool = _sentiment_pool(data)
        keys = SENTIMENT_KEYS
    for note in pool.notes:
        say(f"warning: {note}")
    if not 2 <= folds <= len(pool.labels):
        raise DataError(f"{data}: {len(pool.labels)} examples cannot make {folds} folds")
    plan = make_folds(pool.labels, folds, stop_fraction, fold_seed)
    chosen = sorted(set(only_folds or range(1, folds + 1)))
    if not all(1 <= n <= folds for n in chosen):
        raise DataError(f"folds are numbered 1 to {folds}, not {only_folds}")
    scored = sorted(i for n in chosen for i in plan[n - 1].test)
    runs: list[dict[str, Any]] = []
    pred_by_seed: list[list[str]] = []
    for seed in seeds:
        cfg = type(config)(**{**config.model_dump(), "seed": seed})
        out_of_fold = [""] * len(pool.labels)
        for n in chosen:
            fold = plan[n - 1]
            started = time.process_time()
            scores, pred, best_epoch = pool.run_fold(fold, cfg, _epoch_line(say, seed, n, folds))
            for i, p in zip(fold.test, pred, strict=True):
                out_of_fold[i] = p
            row = {
                "seed": seed,
                "fold": n,
                "train": len(fold.train),
                "stop": len(fold.stop),
                "test": len(fold.test),
                "best_epoch": best_epoch,
                "cpu_seconds": round(time.process_time() - started, 1),
                **{k: v for k, v in scores.items() if isinstance(v, int | float)},
            }
            runs.append(row)
            shown = "  ".join(f"{k}={row[k]:.4f}" for k in keys if row.get(k) is not None)
            say(
                f"seed {seed} fold {n}/{folds}: train {row['train']}, stop {row['stop']}, "
                f"test {row['test']}: {shown}  best epoch {best_epoch}, "
                f"{row['cpu_seconds']} CPU s"
            )
        pred_by_seed.append(out_of_fold)
    summary = {
        k: spread([r[k] for r in runs]) for k in keys if all(r.get(k) is not None for r in runs)
    }
    gold = [pool.labels[i] for i in scored]
    per_seed = [
        {"seed": seed, **pooled_scores(gold, [oof[i] for i in scored], pool.macro_classes)}
        for seed, oof in zip(seeds, pred_by_seed, strict=True)
    ]
    pooled: dict[str, Any] = {"per_seed": per_seed}
    for key in ("accuracy", "macro_f1"):
        values = [s[key] for s in per_seed if s[key] is not None]
        if values:
            pooled[key] = spread(values)
    result: dict[str, Any] = {
        "task": task,
        "data": str(data),
        "examples": len(pool.labels),
        "folds": folds,
        "fold_seed": fold_seed,
        "seeds": list(seeds),
        "config": config.model_dump(exclude={"seed"}),
        "summary": summary,
        "pooled": pooled,
        "only_folds": chosen if len(chosen) < folds else None,
        "per_class": per_class_recall(
            [pool.labels[i] for i in scored], [[oof[i] for i in scored] for oof in pred_by_seed]
        ),
        "runs": runs,
    }
    if task == "slots":
        counts = Counter(pool.labels)
        result["macro_f1_classes"] = sorted(
            c for c, m in counts.items() if m >= MACRO_MIN_EXAMPLES and c
        )
    return result


def format_report(result: dict[str, Any]) -> str:
    """A human table: each score's median and spread, then each class's recall."""
    subset = result["only_folds"]
    only = f"; folds {' '.join(map(str, subset))} only" if subset else ""
    lines = [
        f"{result['folds']}-fold cross-validation of {result['data']} "
        f"({result['examples']} examples, seeds {' '.join(map(str, result['seeds']))}, "
        f"fold seed {result['fold_seed']}{only})",
        f"{'score':<16}  median     min     max     std",
    ]
    for key, s in result["summary"].items():
        lines.append(
            f"{key:<16}  {s['median']:.4f}  {s['min']:.4f}  {s['max']:.4f}  {s['std']:.4f}"
        )
    if "macro_f1_classes" in result:
        lines.append(
            f"(intent_macro_f1: over the {len(result['macro_f1_classes'])} intents with >= "
            f"{MACRO_MIN_EXAMPLES} examples)"
        )
    lines.append("")
    lines.append("out-of-fold predictions of all folds pooled, per seed:")
    for s in result["pooled"]["per_seed"]:
        macro = "" if s["macro_f1"] is None else f"  macro_f1={s['macro_f1']:.4f}"
        lines.append(f"seed {s['seed']}: accuracy={s['accuracy']:.4f}{macro}")
    for key in ("accuracy", "macro_f1"):
        if key in result["pooled"] and len(result["pooled"]["per_seed"]) > 1:
            m = result["pooled"][key]
            lines.append(
                f"pooled {key}: median {m['median']:.4f} (min {m['min']:.4f}, max {m['max']:.4f})"
            )
    per = result["per_class"]
    width = max([len("class"), *(len(c or "(none)") for c in per)])
    lines.append("")
    lines.append(f"{'class':<{width}}      n  recall  (min-max over seeds)  most often taken for")
    for c, r in per.items():
        lines.append(
            f"{c or '(none)':<{width}}  {r['n']:5d}  {r['recall']:6.3f}  "
            f"({r['recall_min']:.3f}-{r['recall_max']:.3f})          {r['confused_with'] or '-'}"
        )
    return "\n".join(lines)
