"""Our BiLSTM-CRF tagger next to two well-known peers, on the same train -> valid splits.

* ``crfsuite``: a feature-based linear-chain CRF (sklearn-crfsuite, L-BFGS with L1+L2), the
  approach of Snips NLU: word identity and lower case, prefixes/suffixes, shape, digit
  flags, and the same for the words at -2..+2, plus word bigrams.
* ``spacy``: spaCy's transition-based NER trained from scratch on ``spacy.blank("en")``
  (no pretrained pipeline, nothing downloaded), a fixed number of epochs.
* ``slotfill``: ours, ``training.loop.fit_tagger`` with the default ``SlotTrainConfig``, or an
  artifact trained before (``--slotfill-artifact``).

All three are scored by ``training.metrics.slot_metrics`` (seqeval, conlleval-compatible) on
the gold tokens. Latency is one utterance at a time from raw text on one thread, feature
extraction and tokenisation included; throughput runs batches of 64 (crfsuite: a loop).

    python -m benchmarks.peers --datasets atis snips
    python -m benchmarks.peers --quick
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks.common import (
    DATASETS,
    add_common_args,
    elapsed,
    epoch_logger,
    format_table,
    latency_summary,
    limited_threads,
    load_split,
    log,
    resolve_data_dir,
    subsample,
    texts_of,
    throughput,
    time_each,
    write_results,
)
from models import native
from models.engine import ENGINES, for_engine
from models.native import RECURRENT
from training.data import SlotDataset
from training.metrics import slot_metrics

NAME = "peers"
SYSTEMS = ("crfsuite", "spacy", "slotfill")
THROUGHPUT_BATCH = 64
QUICK = {
    "max_train": 300,
    "epochs": 2,
    "spacy_epochs": 2,
    "crf_max_iterations": 20,
    "latency_n": 100,
}

CRFFeatures = dict[str, str | bool | float]


# --------------------------------------------------------------------------- crfsuite
def word_shape(word: str) -> str:
    """Condensed shape: ``Xx`` classes with runs collapsed ("7:30pm" -> "d:dx")."""
    out: list[str] = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def _word_features(word: str, prefix: str) -> CRFFeatures:
    lower = word.lower()
    return {
        f"{prefix}w": word,
        f"{prefix}lower": lower,
        f"{prefix}shape": word_shape(word),
        f"{prefix}isdigit": word.isdigit(),
        f"{prefix}hasdigit": any(ch.isdigit() for ch in word),
        f"{prefix}istitle": word.istitle(),
    }


def crf_features(tokens: Sequence[str]) -> list[CRFFeatures]:
    """Features of every token of one utterance (sklearn-crfsuite's dict format)."""
    n = len(tokens)
    lowers = [t.lower() for t in tokens]
    feats: list[CRFFeatures] = []
    for i, word in enumerate(tokens):
        f: CRFFeatures = {"bias": 1.0, **_word_features(word, "")}
        lower = lowers[i]
        for k in (1, 2, 3, 4):
            f[f"pre{k}"] = lower[:k]
            f[f"suf{k}"] = lower[-k:]
        f["len"] = str(min(len(word), 10))
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < n:
                f.update(_word_features(tokens[j], f"{off:+d}:"))
                f[f"{off:+d}:suf3"] = lowers[j][-3:]
            else:
                f[f"{off:+d}:pad"] = True
        f["bos"] = i == 0
        f["eos"] = i == n - 1
        f["-1|0"] = f"{lowers[i - 1] if i > 0 else '<s>'}|{lower}"
        f["0|+1"] = f"{lower}|{lowers[i + 1] if i + 1 < n else '</s>'}"
        feats.append(f)
    return feats


def crfsuite_settings(c1: float = 0.1, c2: float = 0.1, iterations: int = 100) -> dict[str, Any]:
    """The feature CRF's training settings (L-BFGS, L1 + L2)."""
    return {
        "algorithm": "lbfgs",
        "c1": c1,
        "c2": c2,
        "max_iterations": iterations,
        "all_possible_transitions": True,
    }


def train_crfsuite(
    train: SlotDataset, settings: dict[str, Any], model_file: Path | None = None
) -> Any:
    """The feature CRF fitted on ``train`` (kept in ``model_file`` where given)."""
    import sklearn_crfsuite

    crf = sklearn_crfsuite.CRF(
        **settings, model_filename=None if model_file is None else str(model_file)
    )
    crf.fit([crf_features(t) for t in train.tokens], train.tags)
    return crf


def load_crfsuite(model_file: Path) -> Any:
    """A feature CRF saved by :func:`train_crfsuite`."""
    import sklearn_crfsuite

    return sklearn_crfsuite.CRF(model_filename=str(model_file))


def crfsuite_tags(crf: Any, text: str) -> object:
    """The feature CRF's tags of a raw text, features extracted (as Snips NLU tags)."""
    return crf.predict_single(crf_features(text.split()))


def run_crfsuite(
    train: SlotDataset, valid: SlotDataset, args: argparse.Namespace
) -> dict[str, Any]:
    """Train and score the crfsuite CRF; time it from raw text."""
    settings = crfsuite_settings(args.crf_c1, args.crf_c2, args.crf_max_iterations)
    start = time.perf_counter()
    crf = train_crfsuite(train, settings)
    train_seconds = elapsed(start)
    pred = [list(crf.predict_single(crf_features(t))) for t in valid.tokens]
    metrics = slot_metrics(valid.tags, pred, None, [])

    def one(text: str) -> object:
        return crfsuite_tags(crf, text)

    def many(texts: Sequence[str]) -> object:
        return [crf.predict_single(crf_features(t.split())) for t in texts]

    timing = _measure(one, many, texts_of(valid), args)
    return {
        "train_seconds": train_seconds,
        "settings": {
            **settings,
            "features": "word, lower, shape, digit flags, title, pre/suf 1-4, "
            "+-2 word features, bigrams -1|0 and 0|+1",
        },
        **_scores(metrics),
        **timing,
    }


# --------------------------------------------------------------------------- spaCy
def run_spacy(train: SlotDataset, valid: SlotDataset, args: argparse.Namespace) -> dict[str, Any]:
    """Train spaCy NER from scratch on the gold tokens and score it."""
    import spacy
    from spacy.tokens import Doc
    from spacy.training import Example
    from thinc.api import compounding, fix_random_seed

    fix_random_seed(args.seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    start = time.perf_counter()
    examples = [
        Example(Doc(nlp.vocab, words=toks), Doc(nlp.vocab, words=toks, ents=tags))
        for toks, tags in zip(train.tokens, train.tags, strict=True)
    ]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(args.seed)
    epoch_losses = []
    for epoch in range(1, args.spacy_epochs + 1):
        rng.shuffle(examples)
        losses: dict[str, float] = {}
        sizes, i = iter(compounding(4.0, 32.0, 1.001)), 0  # as spacy.util.minibatch
        while i < len(examples):
            size = int(next(sizes))
            batch = examples[i : i + size]
            i += size
            nlp.update(batch, drop=args.spacy_dropout, sgd=optimizer, losses=losses)
        epoch_losses.append(round(losses.get("ner", 0.0), 3))
        log(f"  spacy epoch {epoch}/{args.spacy_epochs}: ner loss {losses.get('ner', 0.0):.1f}")
    train_seconds = elapsed(start)

    docs = [Doc(nlp.vocab, words=toks) for toks in valid.tokens]
    pred = [
        [f"{t.ent_iob_}-{t.ent_type_}" if t.ent_iob_ in ("B", "I") else "O" for t in doc]
        for doc in nlp.pipe(docs, batch_size=256)  # Doc input: no re-tokenisation
    ]
    metrics = slot_metrics(valid.tags, pred, None, [])

    def many(texts: Sequence[str]) -> object:
        return list(nlp.pipe(texts, batch_size=THROUGHPUT_BATCH))

    timing = _measure(nlp, many, texts_of(valid), args)
    return {
        "train_seconds": train_seconds,
        "settings": {
            "pipeline": "spacy.blank('en') + ner (default model, randomly initialised)",
            "epochs": args.spacy_epochs,
            "dropout": args.spacy_dropout,
            "batch": "compounding(4, 32, 1.001) examples",
            "epoch_losses": epoch_losses,
            "spacy_version": version("spacy"),
            "thinc_version": version("thinc"),
        },
        **_scores(metrics),
        **timing,
    }


# --------------------------------------------------------------------------- ours
def run_slotfill(
    train: SlotDataset,
    valid: SlotDataset,
    args: argparse.Namespace,
    dataset: str,
    artifact_dir: Path | None,
) -> dict[str, Any]:
    """Train ours with the default config (or load ``artifact_dir``) and score it."""
    from models.artifact import load_artifact
    from models.predictor import SlotTaggerPredictor
    from training.config import SlotTrainConfig
    from training.evaluate import evaluate_tagger
    from training.loop import fit_tagger
    from training.pipeline import data_record, save_fit

    extra: dict[str, Any] = {}
    if artifact_dir is not None:
        artifact = load_artifact(artifact_dir)
        predictor = artifact.predictor
        if not isinstance(predictor, SlotTaggerPredictor):
            raise SystemExit(
                f"error: {artifact_dir} is a {artifact.task} artifact, not a slot tagger"
            )
        manifest = artifact.manifest
        history = manifest.history
        trained_on = manifest.data.get("name")
        if trained_on is not None and trained_on != dataset:
            log(f"  warning: {artifact_dir} was trained on {trained_on!r}, not {dataset!r}")
        train_seconds = float(history[-1]["seconds"]) if history else None
        extra = {
            "artifact": str(artifact_dir),
            "train_seconds_source": "artifact manifest (last epoch's elapsed seconds)",
            "trained_on": trained_on,
            "best_epoch": manifest.training.get("best_epoch"),
            "seconds_to_best": manifest.training.get("seconds_to_best"),
        }
        config_dump = manifest.training.get("config")
    else:
        overrides: dict[str, Any] = {"device": "cpu"}
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        if args.train_threads is not None:
            overrides["threads"] = args.train_threads
        config = SlotTrainConfig(**overrides)
        start = time.perf_counter()
        report = epoch_logger("slotfill", "slot_f1")
        result = fit_tagger(train, valid, config, show_progress=False, on_epoch=report)
        train_seconds = elapsed(start)
        fitted = result.predictor
        assert isinstance(fitted, SlotTaggerPredictor)
        predictor = fitted
        config_dump = config.model_dump()
        extra = {
            "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            "seconds_to_best": result.seconds_to_best,
            "train_threads": config.threads or "torch default",
        }
        if args.save_slotfill is not None:
            data_dir = resolve_data_dir(args.data_dir) / dataset
            out = save_fit(
                args.save_slotfill / dataset,
                "slots",
                result,
                config,
                data_record("slots", data_dir, dataset) | {"subsample": train.source},
            )
            extra["saved_artifact"] = str(out)
            log(f"  saved {out}")
    metrics, _ = evaluate_tagger(predictor, valid)
    # Timed as the server runs it (SLOTFILL_ENGINE; NumPy by default), not as it was trained.
    served = for_engine(predictor, args.slotfill_engine)
    native.select("native", args.slotfill_recurrent)  # as a server selects them at start-up

    def one(text: str) -> object:
        return served.parse([text])

    def many(texts: Sequence[str]) -> object:
        return served.parse(list(texts))

    timing = _measure(one, many, texts_of(valid), args)
    return {
        "train_seconds": train_seconds,
        "settings": {
            "config": config_dump,
            "device": "cpu",
            "engine": args.slotfill_engine,
            "recurrent_weights": args.slotfill_recurrent,
            "native_kernels": native.active(),
        },
        **extra,
        **_scores(metrics),
        **timing,
    }


# --------------------------------------------------------------------------- shared
def _scores(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        k: metrics.get(k)
        for k in ("slot_f1", "slot_precision", "slot_recall", "intent_accuracy", "exact_match", "n")
    }


def _measure(one: Any, many: Any, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Latency of ``one(text)`` and throughput of ``many(batch)``, on ``--threads`` threads."""
    sample = texts[: args.latency_n] if args.latency_n else texts
    with limited_threads(args.threads):
        latency = latency_summary(time_each(one, sample, warmup=args.warmup))
        rate = throughput(many, texts, THROUGHPUT_BATCH, args.repeats)
    return {"latency": latency, "throughput": rate, "threads": args.threads}


def parse_artifacts(values: list[str], datasets: Sequence[str]) -> dict[str, Path]:
    """``DATASET=DIR`` pairs; a bare ``DIR`` is accepted when one data set is benchmarked."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name in DATASETS:
            out[name] = Path(path)
        elif len(datasets) == 1:
            out[datasets[0]] = Path(value)
        else:
            raise SystemExit(
                f"error: --slotfill-artifact {value!r}: with several data sets give DATASET=DIR"
            )
    return out


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description="Slot F1, training time, latency and throughput of a crfsuite CRF, spaCy NER "
        "trained from scratch and our BiLSTM-CRF on the same train -> valid splits.",
    )
    add_common_args(p)
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    p.add_argument(
        "--max-train",
        type=int,
        default=None,
        metavar="N",
        help=f"train on a random N utterances (default: all; --quick: {QUICK['max_train']})",
    )
    p.add_argument("--seed", type=int, default=13, help="subsampling and spaCy seed")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for the latency and throughput measurements (default 1)",
    )
    p.add_argument(
        "--latency-n",
        type=int,
        default=None,
        metavar="N",
        help=f"time the first N valid utterances (default: all; --quick: {QUICK['latency_n']})",
    )
    p.add_argument("--warmup", type=int, default=20, help="untimed calls before timing latency")
    p.add_argument("--repeats", type=int, default=3, help="throughput passes; the best is kept")
    g = p.add_argument_group("crfsuite")
    g.add_argument("--crf-c1", type=float, default=0.1, help="L1 coefficient")
    g.add_argument("--crf-c2", type=float, default=0.1, help="L2 coefficient")
    g.add_argument(
        "--crf-max-iterations",
        type=int,
        default=None,
        help=f"L-BFGS iterations (default 100; --quick: {QUICK['crf_max_iterations']})",
    )
    g = p.add_argument_group("spaCy")
    g.add_argument(
        "--spacy-epochs",
        type=int,
        default=None,
        help=f"training epochs (default 12; --quick: {QUICK['spacy_epochs']})",
    )
    g.add_argument("--spacy-dropout", type=float, default=0.1)
    g = p.add_argument_group("slotfill (ours)")
    g.add_argument(
        "--slotfill-artifact",
        action="append",
        default=[],
        metavar="[DATASET=]DIR",
        help="score this trained artifact instead of training (repeatable: atis=DIR snips=DIR)",
    )
    g.add_argument(
        "--slotfill-engine",
        choices=ENGINES,
        default="numpy",
        help="what runs our networks when timed, as SLOTFILL_ENGINE serves them (default numpy, "
        "the server's default; the scores do not depend on it)",
    )
    g.add_argument(
        "--slotfill-recurrent",
        choices=RECURRENT,
        default="float16",
        help="precision of our recurrent weights when timed, as SLOTFILL_RECURRENT_WEIGHTS "
        "serves them (default float16, the server's default)",
    )
    g.add_argument(
        "--save-slotfill",
        type=Path,
        default=None,
        metavar="DIR",
        help="save each trained tagger as an artifact in DIR/<dataset>",
    )
    g.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"most epochs (default: SlotTrainConfig's; --quick: {QUICK['epochs']})",
    )
    g.add_argument(
        "--train-threads",
        type=int,
        default=None,
        help="torch threads while training ours (default: torch's default)",
    )
    return p


def apply_quick(args: argparse.Namespace) -> None:
    """Fill unset options with the --quick values, or the full-run defaults."""
    full = {
        "max_train": None,
        "epochs": None,
        "spacy_epochs": 12,
        "crf_max_iterations": 100,
        "latency_n": None,
    }
    for key, value in (QUICK if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick:
        args.repeats = min(args.repeats, 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and write the table and JSON."""
    args = build_parser().parse_args(argv)
    apply_quick(args)
    started = datetime.now(UTC)
    data_dir = resolve_data_dir(args.data_dir)
    artifacts = parse_artifacts(args.slotfill_artifact, args.datasets)
    results: list[dict[str, Any]] = []
    for dataset in args.datasets:
        train = subsample(load_split(data_dir, dataset, "train"), args.max_train, args.seed)
        valid = load_split(data_dir, dataset, "valid")
        for system in args.systems:
            log(f"{dataset}: {system} ({len(train)} train, {len(valid)} valid)")
            if system == "crfsuite":
                row = run_crfsuite(train, valid, args)
            elif system == "spacy":
                row = run_spacy(train, valid, args)
            else:
                row = run_slotfill(train, valid, args, dataset, artifacts.get(dataset))
            row = {
                "dataset": dataset,
                "system": system,
                # A reused artifact was trained elsewhere: its training size is not known here.
                "train_utterances": None if "artifact" in row else len(train),
                "valid_utterances": len(valid),
                **row,
            }
            results.append(row)
            log(
                f"  slot_f1 {row['slot_f1']:.4f}  train {row['train_seconds'] or 0:.1f}s  "
                f"p50 {row['latency']['p50_ms']:.2f} ms"
            )
    headers = [
        "dataset",
        "system",
        "train_n",
        "train_s",
        "slot_f1",
        "prec",
        "recall",
        "intent_acc",
        "p50_ms",
        "p99_ms",
        f"utt/s@{THROUGHPUT_BATCH}",
    ]
    rows = [
        [
            r["dataset"],
            r["system"],
            r["train_utterances"],
            r["train_seconds"],
            r["slot_f1"],
            r["slot_precision"],
            r["slot_recall"],
            r["intent_accuracy"],
            r["latency"]["p50_ms"],
            r["latency"]["p99_ms"],
            round(r["throughput"]["per_second"], 1),
        ]
        for r in results
    ]
    print(format_table(headers, rows))
    notes = [
        "slot F1: training.metrics.slot_metrics (seqeval default mode, conlleval-compatible) "
        "on the gold valid tokens, for all systems",
        "slotfill early-stops on the same valid split it is scored on (best epoch kept); crfsuite "
        "and spaCy train a fixed budget and never see valid: ours is optimistic by that selection",
        "train_s: crfsuite feature extraction + fit; spaCy Example building + initialize + epochs; "
        "slotfill fit_tagger wall time incl. per-epoch valid evaluation (torch default threads "
        "unless --train-threads)",
        f"latency: batch 1 from raw text (' '.join(tokens)), on {args.threads} thread(s), "
        "tokenisation/feature extraction included: crfsuite "
        "predict_single(features(text.split())), spaCy nlp(text), slotfill "
        "predictor.parse([text]) (Viterbi + span confidences)",
        f"throughput: batches of {THROUGHPUT_BATCH}: slotfill parse(batch), spaCy nlp.pipe("
        f"batch_size={THROUGHPUT_BATCH}), crfsuite a loop of predict_single",
    ]
    path = write_results(NAME, args, started, {"results": results, "notes": notes})
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
