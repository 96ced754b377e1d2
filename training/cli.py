"""``slotfill train|evaluate|predict``: the offline command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from models.errors import ArtifactError
from training.config import SentimentTrainConfig, SlotTrainConfig, TrainConfig
from training.data import DataError, read_tsv
from training.formats import FORMATS, read_split

if TYPE_CHECKING:
    from models.values import Normalized, Reference

FORMAT_HELP = (
    "data format (default: detected from the files): bio, nlupp, dstc8, jsonl or rasa "
    "(README: Data formats)"
)

# Flags every train command takes, mapped onto TrainConfig fields of the same name.
_CONFIG_FLAGS: dict[str, tuple[type, str]] = {
    "epochs": (int, "most epochs (early stopping usually ends sooner)"),
    "patience": (int, "epochs without a better valid score before stopping"),
    "batch_size": (int, "utterances per step"),
    "lr": (float, "AdamW learning rate"),
    "dropout": (float, "dropout on embeddings and encoder outputs"),
    "word_dropout": (float, "probability of replacing a training token's embedding by <unk>'s"),
    "clip_norm": (float, "gradient-norm clipping threshold"),
    "seed": (int, "random seed"),
    "threads": (int, "CPU threads of torch and of NumPy's BLAS (default: all cores)"),
    "hidden_size": (int, "recurrent units per direction"),
    "num_layers": (int, "stacked recurrent layers"),
    "max_minutes": (float, "stop after this many minutes of training"),
}

# Flags with their own help text (a choice or a folder), also onto TrainConfig fields.
_CHOICE_FLAGS = (
    "device",
    "cell",
    "pretrained_encoder",
    "intent_encoder",
    "distill_from",
    "distill_encoder",
)

PRETRAINED_ENCODER_HELP = (
    "fine-tune this pretrained uncased BERT-family encoder folder (config.json, vocab.txt, "
    "model.safetensors; e.g. all-MiniLM-L6-v2) instead of training the LSTM"
)
DISTILL_HELP = (
    "also learn the probabilities of this trained sentiment artifact (same labels; e.g. one "
    "trained with --pretrained-encoder) on the training texts and changed copies of them: "
    "knowledge distillation (distill_copies, distill_weight, distill_temperature); several "
    "folders: their probabilities averaged (an ensemble teacher)"
)
DISTILL_ENCODER_HELP = (
    "fine-tune this pretrained encoder folder (as --pretrained-encoder) on the same training "
    "data first and distill it into the LSTM, as --distill-from does with a trained one "
    "(cross-validation: one teacher per fold)"
)
INTENT_ENCODER_HELP = (
    "also fine-tune this pretrained uncased BERT-family encoder folder for the intents and "
    "blend its intent probabilities with the tagger head's (intent_encoder_weight; "
    "single-label intents; the BiLSTM-CRF keeps the slots)"
)


def _hyperparameter_list(config: type[TrainConfig]) -> str:
    """Every key ``--config`` accepts, with its default: the flags above cover only some."""
    lines = ["hyper-parameters (keys of the --config JSON object; default in brackets):"]
    for name, field in config.model_fields.items():
        # A subclass that only changes a default keeps the base class's description.
        base = TrainConfig.model_fields.get(name)
        description = field.description or (base.description if base else None)
        about = f": {description}" if description else ""
        lines.append(f"  {name} [{json.dumps(field.default)}]{about}")
    return "\n".join(lines)


def add_train_parser(sub: Any) -> None:
    """Register ``train slots`` and ``train sentiment``."""
    train = sub.add_parser("train", help="train a model from labelled data")
    tasks = train.add_subparsers(dest="task", required=True, metavar="{slots,sentiment}")
    for task, data_help in (
        (
            "slots",
            "data folder: train/ and valid/ with seq.in, seq.out and label; train.json and "
            "valid.json (NLU++ or DSTC8 spans); train.jsonl and valid.jsonl; or Rasa *.yml "
            "(README: Data formats)",
        ),
        ("sentiment", "folder holding train.tsv and valid.tsv (header: text<TAB>label)"),
    ):
        model_kind = (
            "BiLSTM-CRF slot tagger with joint intent"
            if task == "slots"
            else "LSTM sentiment classifier"
        )
        p = tasks.add_parser(
            task,
            help=f"train a {model_kind}",
            description="Train on DIR/train, early-stop on DIR/valid, write an artifact to OUT. "
            f"DIR: {data_help}.",
            epilog=_hyperparameter_list(
                SlotTrainConfig if task == "slots" else SentimentTrainConfig
            ),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--data", required=True, type=Path, metavar="DIR", help=data_help)
        p.add_argument(
            "--out",
            required=True,
            type=Path,
            metavar="DIR",
            help="artifact directory to create (must not exist or be empty)",
        )
        p.add_argument(
            "--device", choices=["auto", "cpu", "cuda"], help="where to train (default: auto)"
        )
        if task == "slots":
            p.add_argument("--format", choices=FORMATS, dest="data_format", help=FORMAT_HELP)
            p.add_argument("--intent-encoder", metavar="DIR", help=INTENT_ENCODER_HELP)
        else:
            p.add_argument("--pretrained-encoder", metavar="DIR", help=PRETRAINED_ENCODER_HELP)
            p.add_argument("--distill-from", metavar="DIR", nargs="+", help=DISTILL_HELP)
            p.add_argument("--distill-encoder", metavar="DIR", help=DISTILL_ENCODER_HELP)
        p.add_argument(
            "--cell", choices=["lstm", "gru", "irnn"], help="recurrent cell (default: lstm)"
        )
        for name, (kind, helptext) in _CONFIG_FLAGS.items():
            p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=helptext)
        p.add_argument(
            "--config", type=Path, help="JSON file of hyper-parameters (flags override it)"
        )
        p.add_argument(
            "--progress",
            choices=["bar", "json", "none"],
            default="bar",
            help="bar: a progress bar; json: one JSON line per epoch (for job runners; "
            'the epochs of a --distill-encoder teacher carry "model": "teacher")',
        )
        p.set_defaults(func=_train)


def add_cv_parser(sub: Any) -> None:
    """Register ``cv slots`` and ``cv sentiment``."""
    cv = sub.add_parser(
        "cv", help="cross-validate hyper-parameters on train + valid (stratified k-fold)"
    )
    tasks = cv.add_subparsers(dest="task", required=True, metavar="{slots,sentiment}")
    for task, data_help, scores in (
        (
            "slots",
            "data folder, any format `slotfill train slots` reads",
            "intent accuracy, intent macro-F1 over the intents with >= 5 examples, slot F1 "
            "(seqeval, as `slotfill evaluate`) and exact match; then each intent's "
            "out-of-fold recall with its count and what it was most often taken for",
        ),
        (
            "sentiment",
            "folder holding train.tsv and valid.tsv",
            "accuracy and macro-F1; then each label's out-of-fold recall",
        ),
    ):
        p = tasks.add_parser(
            task,
            help=f"cross-validate a {task} model",
            description=textwrap.fill(
                f"Pool DIR's train and valid splits, cut them into K stratified folds "
                "(by intent or label; a class with fewer examples than folds is spread one per "
                "fold) and, for each seed, train on K-1 folds and score the one held out. Each "
                "training early-stops on a stratified part of its own training folds "
                "(--stop-fraction, from the classes with enough examples), never on the held-out "
                "fold. The folds depend on --fold-seed only: seeds and hyper-parameters are "
                "compared on the same folds. Reports, per epoch and per fold on stderr (a "
                "distilled fold's teacher too) and then as a table "
                f"(median, min, max and std over folds x seeds): {scores}. The last line of "
                "stdout is the whole result as JSON (summary, per_class, runs).",
                width=88,
            ),
            epilog=_hyperparameter_list(
                SlotTrainConfig if task == "slots" else SentimentTrainConfig
            ),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--data", required=True, type=Path, metavar="DIR", help=data_help)
        p.add_argument("--folds", type=int, default=5, metavar="K", help="folds (default: 5)")
        p.add_argument(
            "--seeds",
            type=int,
            nargs="+",
            metavar="SEED",
            help="training seeds, each run on every fold (default: the config's seed, 13)",
        )
        p.add_argument(
            "--fold-seed", type=int, default=0, help="seed of the fold assignment (default: 0)"
        )
        p.add_argument(
            "--only-folds",
            type=int,
            nargs="+",
            metavar="N",
            help="run only these folds (1 to K) of the same assignment: a cheap first look",
        )
        p.add_argument(
            "--stop-fraction",
            type=float,
            default=0.1,
            help="part of each class of the training folds held out for early stopping "
            "(default: 0.1; classes under 1/FRACTION examples give none)",
        )
        if task == "slots":
            p.add_argument("--format", choices=FORMATS, dest="data_format", help=FORMAT_HELP)
            p.add_argument("--intent-encoder", metavar="DIR", help=INTENT_ENCODER_HELP)
        else:
            p.add_argument("--pretrained-encoder", metavar="DIR", help=PRETRAINED_ENCODER_HELP)
            p.add_argument("--distill-encoder", metavar="DIR", help=DISTILL_ENCODER_HELP)
        p.add_argument(
            "--device", choices=["auto", "cpu", "cuda"], help="where to train (default: auto)"
        )
        p.add_argument(
            "--cell", choices=["lstm", "gru", "irnn"], help="recurrent cell (default: lstm)"
        )
        for name, (kind, helptext) in _CONFIG_FLAGS.items():
            if name != "seed":  # --seeds
                p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=helptext)
        p.add_argument(
            "--config", type=Path, help="JSON file of hyper-parameters (flags override it)"
        )
        p.set_defaults(func=_cv)


def _cv(args: argparse.Namespace) -> int:
    from training.cv import cross_validate, format_report  # imports torch

    config = build_config(args)
    result = cross_validate(
        args.task,
        args.data,
        config,
        folds=args.folds,
        seeds=args.seeds or [config.seed],
        fold_seed=args.fold_seed,
        stop_fraction=args.stop_fraction,
        data_format=getattr(args, "data_format", None),
        progress=lambda line: print(line, file=sys.stderr, flush=True),
        only_folds=args.only_folds,
    )
    print(format_report(result))
    print(json.dumps(result))
    return 0


def add_eval_parsers(sub: Any) -> None:
    """Register ``evaluate`` and ``predict``."""
    ev = sub.add_parser(
        "evaluate",
        help="score a model on a labelled split",
        description="Score MODEL_DIR on SPLIT. A tagger: a folder with seq.in, seq.out and "
        "optional label, a data folder (its valid split, any format), or a .json, .jsonl or "
        ".yml file. A sentiment model: a .tsv file. With --json the last line adds, for a "
        "multi-label tagger, intent_f1 (micro) and intent_exact_match, and for data with "
        "requested slots, slot_f1_requested (slot F1 of those utterances); for data with "
        "gold slot values (NLU++, JSON lines, Rasa canonical values), value_accuracy (on the "
        "gold spans, overall and per type) and slot_value_f1 (span, label and value right). "
        "Calibration (15-bin expected calibration error, README: Calibration): a tagger's "
        "intent_ece and span_ece with the artifact's temperatures, *_uncalibrated without "
        "them, *_crossfit with temperatures fitted on one half of SPLIT and measured on the "
        "other; a sentiment model's ece, ece_uncalibrated and ece_crossfit.",
    )
    ev.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    ev.add_argument("split", type=Path, metavar="SPLIT")
    ev.add_argument(
        "--json", action="store_true", help="end stdout with one JSON line of the scores"
    )
    ev.add_argument("--format", choices=FORMATS, dest="data_format", help=FORMAT_HELP)
    add_clock_args(ev)
    ev.add_argument(
        "--errors",
        type=Path,
        metavar="FILE",
        help="also write each utterance the model gets wrong to FILE, one JSON object a line: "
        "taggers: line, text, gold_intent, pred_intent, intent_correct, and the slot chunks "
        "missed and spurious; sentiment: row, text, gold, pred",
    )
    ev.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="also write PNG figures to DIR: reliability diagrams (intents and slot spans, or "
        "sentiment labels) before and after calibration, and a confusion matrix",
    )
    ev.set_defaults(func=_evaluate)
    pr = sub.add_parser("predict", help="tag texts with a model, one JSON object per text")
    pr.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    pr.add_argument("texts", nargs="+", metavar="TEXT")
    pr.add_argument(
        "--requested",
        action="append",
        default=[],
        metavar="SLOT",
        help="a slot the dialogue just asked for (repeatable); applies to every TEXT",
    )
    add_clock_args(pr)
    pr.set_defaults(func=_predict)


def add_clock_args(parser: argparse.ArgumentParser) -> None:
    """``--reference-time`` and ``--timezone``: the clock slot values are resolved against."""
    parser.add_argument(
        "--reference-time",
        metavar="T",
        help="resolve relative dates and times against T, ISO 8601 with a UTC offset "
        "(e.g. 2022-03-15T09:00:00+00:00; default: now)",
    )
    parser.add_argument(
        "--timezone",
        default="UTC",
        metavar="ZONE",
        help="IANA time zone of the user (default: UTC)",
    )


def clock(args: argparse.Namespace) -> Reference:
    """The reference of ``--reference-time``/``--timezone``; a bad one is a one-line error."""
    from datetime import datetime

    from models.values import make_reference

    try:
        when = datetime.fromisoformat(args.reference_time) if args.reference_time else None
        return make_reference(when, args.timezone)
    except ValueError as err:
        raise DataError(f"--reference-time/--timezone: {err}") from None


def build_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults <- --config file <- flags; validated, unknown keys rejected."""
    values: dict[str, Any] = {}
    if args.config is not None:
        try:
            loaded = json.loads(args.config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:  # missing, unreadable, not UTF-8 or not JSON
            raise DataError(f"{args.config}: cannot read hyper-parameters: {err}") from err
        if not isinstance(loaded, dict):
            raise DataError(f"{args.config}: expected a JSON object of hyper-parameters")
        values.update(loaded)
    for name in [*_CONFIG_FLAGS, *_CHOICE_FLAGS]:
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    cls = SlotTrainConfig if args.task == "slots" else SentimentTrainConfig
    return cls(**values)


def _print_epoch(mode: str) -> Any:
    def report(record: dict[str, Any]) -> None:
        if mode == "json":
            print(json.dumps({"event": "epoch", **record}), flush=True)
        elif mode == "bar":
            from training.loop import epoch_text  # torch: see _train

            print(epoch_text(record), file=sys.stderr, flush=True)

    return report


def busy_cores(
    threads: int | None, running: int, load: float | None = None, cores: int | None = None
) -> str | None:
    """A warning when training would run ``running`` threads (torch's default: one per core,
    or ``OMP_NUM_THREADS``, which torchrun sets to 1 a rank) on a machine that is already busy:
    torch's threads spin-wait on each other when one of them has no core (a 3-epoch ATIS run,
    one core kept busy by another process: 88 s on 2 threads, 37 s on 1; quiet: 29-32 s
    against 33-35 s). The default stays as it is, faster on a quiet machine; the thread count
    is not chosen from the load, since it changes the float sums and so the weights a seed
    gives."""
    cores = cores or os.cpu_count() or 1
    load = os.getloadavg()[0] if load is None else load
    if threads is not None or running < 2 or cores < 2 or load < 0.75:
        return None
    spare = max(1, min(running, cores - round(load)))
    return (
        f"load average {load:.1f} on {cores} cores: torch's {running} threads wait on each other "
        f"when another process holds a core, which can make training several times slower; "
        f"--threads {spare} avoids it"
    )


def _train(args: argparse.Namespace) -> int:
    # Imports torch: not at module level (the server's `slotfill serve` master process builds
    # this parser too and must stay light).
    import torch

    from training import distributed
    from training.pipeline import train_folder

    config = build_config(args)
    if (busy := busy_cores(config.threads, torch.get_num_threads())) is not None:
        print(f"warning: {busy}", file=sys.stderr)
    trained = train_folder(
        args.task,
        args.data,
        config,
        args.out,
        on_epoch=_print_epoch(args.progress),
        show_progress=args.progress == "bar",
        on_warning=lambda warning: print(f"warning: {warning}", file=sys.stderr),
        data_format=getattr(args, "data_format", None),
    )
    # Under torchrun; not after an error, which another rank may not share.
    ranked = distributed.finish()
    path, result = trained.artifact, trained.result
    if path is None:  # under torchrun every rank holds the same weights; rank 0 wrote them
        return distributed.exit_rank(0) if ranked else 0
    summary = {
        "event": "done",
        "artifact": str(path),
        "best_epoch": result.best_epoch,
        "seconds_to_best": round(result.seconds_to_best, 2),
        "valid": result.metrics,
    }
    print(
        json.dumps(summary)
        if args.progress == "json"
        else f"saved {path}: {json.dumps(summary['valid'])}"
    )
    if ranked:
        distributed.exit_rank(0)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from models.artifact import load_artifact
    from models.predictor import SentimentPredictor, SlotTaggerPredictor
    from training.calibration import sentiment_calibration, tagger_calibration
    from training.error_report import sentiment_errors, tagger_errors
    from training.evaluate import evaluate_sentiment, evaluate_tagger, sentiment_inputs
    from training.metrics import format_slot_report, per_slot_report
    from training.tagging import tagging_set
    from training.value_eval import value_scores

    artifact = load_artifact(args.model_dir)
    predictor = artifact.predictor
    if isinstance(predictor, SlotTaggerPredictor):
        if args.split.suffix == ".tsv":
            raise DataError(
                f"{args.split}: a slot tagger is evaluated on a folder or a .json, .jsonl or "
                ".yml file, not a .tsv file"
            )
        multi = predictor.model.config.multi_label
        _, examples, notes = read_split(args.split, args.data_format, multi)
        data = tagging_set(examples, str(args.split))
        for warning in [*notes, *data.problems]:
            print(f"warning: {warning}", file=sys.stderr)
        scores, predicted = evaluate_tagger(predictor, data)
        values = value_scores(predictor, artifact.manifest.slot_types, examples, clock(args))
        scores.update(values or {})
        calibration = tagger_calibration(predictor, data)
        scores.update(calibration.scores)
        print(format_slot_report(per_slot_report(data.tags, predicted.tags)))
        gold = ["#".join(sorted(i)) for i in data.intents] if data.has_intents else None
        if args.plots is not None:
            from training.plots import tagger_plots

            plots = tagger_plots(args.plots, calibration, gold, predicted.intents)
        errors = tagger_errors(data.tokens, data.tags, predicted.tags, gold, predicted.intents)
    else:
        assert isinstance(predictor, SentimentPredictor)
        if args.split.suffix != ".tsv":
            raise DataError(f"{args.split}: a sentiment model is evaluated on a .tsv file")
        rows = read_tsv(args.split)
        full, labels_predicted = evaluate_sentiment(predictor, rows)
        ece, outcomes = sentiment_calibration(
            predictor, sentiment_inputs(rows.texts, predictor), rows.labels
        )
        if args.plots is not None:
            from training.plots import sentiment_plots

            plots = sentiment_plots(args.plots, outcomes, rows.labels, labels_predicted)
        errors = sentiment_errors(rows.texts, rows.labels, labels_predicted)
        labels = list(full["confusion"])
        print("confusion (rows gold, columns predicted)")
        print(" " * 10 + "".join(f"{label[:9]:>10}" for label in labels))
        for gold in labels:
            print(f"{gold[:9]:>10}" + "".join(f"{full['confusion'][gold][p]:>10}" for p in labels))
        scores = {k: full[k] for k in ("accuracy", "macro_f1", "n")} | ece
    for key, value in scores.items():
        print(f"{key:>16}: {value}")
    if args.errors is not None:
        try:
            args.errors.parent.mkdir(parents=True, exist_ok=True)
            args.errors.write_text(
                "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors),
                encoding="utf-8",
            )
        except OSError as err:
            message = f"{args.errors}: cannot write the errors file ({err.strerror})"
            raise DataError(message) from err
        print(f"{len(errors)} of {scores['n']} utterances wrong: {args.errors}", file=sys.stderr)
    if args.plots is not None:
        print(f"wrote {', '.join(str(p) for p in plots)}", file=sys.stderr)
    if args.json:
        print(json.dumps(scores))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from models.artifact import load_artifact
    from models.predictor import SlotTaggerPredictor
    from models.values.slots import SlotValueResolver

    artifact = load_artifact(args.model_dir)
    predictor = artifact.predictor
    values = SlotValueResolver.from_manifest({"slot_types": artifact.manifest.slot_types})
    reference = clock(args)
    for text in args.texts:
        if not text.strip():
            print(json.dumps({"text": text, "error": "empty text"}))
            continue
        if isinstance(predictor, SlotTaggerPredictor):
            try:
                parse = predictor.parse([text], requested=[args.requested])[0]
            except ValueError as err:  # an unknown requested slot
                raise DataError(f"--requested: {err}") from err
            top = parse.intent_ranking[0] if parse.intent_ranking else None
            resolved = values.resolve_all([(s.slot, s.value) for s in parse.slots], reference)
            out: dict[str, Any] = {
                "text": text,
                "intent": {"name": top[0], "confidence": top[1]} if top else None,
                "intents": [{"name": n, "confidence": c} for n, c in parse.intents],
                "slots": [
                    vars(s) | {"normalized": _to_json(value)}
                    for s, value in zip(parse.slots, resolved, strict=True)
                ],
            }
        else:
            res = predictor.classify([text])[0]
            out = {
                "text": text,
                "sentiment": {
                    "label": res.label,
                    "confidence": res.confidence,
                    "scores": res.scores,
                },
            }
        print(json.dumps(out, ensure_ascii=False))
    return 0


def _to_json(value: Normalized | None) -> dict[str, Any] | None:
    return value.to_json() if value is not None else None


def run(args: argparse.Namespace) -> int:
    """Run a parsed offline command; data and config errors become one-line messages."""
    try:
        return int(args.func(args))
    except (DataError, ArtifactError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValidationError as err:
        print(f"error: invalid hyper-parameters:\n{err}", file=sys.stderr)
        return 2
