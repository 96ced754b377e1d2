"""NLU++ banking intents: the floor a tagger's multi-label intent head has to beat.

A one-vs-rest logistic regression on tf-idf word 1-2-grams (scikit-learn), trained on some
folds and scored on others with micro-F1 and exact match (set equality). ``--write DIR``
also writes those folds as ``DIR/train.json`` and ``DIR/valid.json``, the folder
``slotfill train slots --data DIR`` reads, so both are scored on the same split.

    python -m benchmarks.nlupp_baseline --train-folds 0-9 --valid-folds 10-19 --write /tmp/nlupp
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import add_common_args, format_table, resolve_data_dir, write_results
from training.formats.spanjson import read_json_examples
from training.multilabel import above, exact_match, micro_f1, tune_threshold


def fold_range(text: str) -> list[int]:
    """``0-9`` or ``0,3,5`` -> fold numbers."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(x) for x in text.split(",")]


def load_folds(folder: Path, folds: Sequence[int]) -> list[Any]:
    """The raw NLU++ examples of ``folds``, in fold order."""
    return [
        item
        for k in folds
        for item in json.loads((folder / f"fold{k}.json").read_text(encoding="utf-8"))
    ]


def baseline(
    train: list[list[str]], train_texts: list[str], valid_texts: list[str], labels: list[str]
) -> np.ndarray:
    """Valid probabilities ``(n_valid, n_labels)`` of the tf-idf + one-vs-rest model."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vectorizer.fit_transform(train_texts)
    y_train = MultiLabelBinarizer(classes=labels).fit_transform(train)
    model = OneVsRestClassifier(LogisticRegression(C=10.0, max_iter=2000))
    model.fit(x_train, y_train)
    return np.asarray(model.predict_proba(vectorizer.transform(valid_texts)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--train-folds", default="0-9", help="folds to train on (default 0-9)")
    parser.add_argument("--valid-folds", default="10-19", help="folds to score (default 10-19)")
    parser.add_argument("--write", type=Path, metavar="DIR", help="write train.json/valid.json")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    folder = resolve_data_dir(args.data_dir) / "nlupp_banking"
    raw = {
        "train": load_folds(folder, fold_range(args.train_folds)),
        "valid": load_folds(folder, fold_range(args.valid_folds)),
    }
    with tempfile.TemporaryDirectory() as scratch:
        out = args.write if args.write is not None else Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        for name, items in raw.items():
            (out / f"{name}.json").write_text(json.dumps(items), encoding="utf-8")
        # read back through the trainer's reader: the same checks, the same examples
        examples = {name: read_json_examples(out / f"{name}.json", "nlupp") for name in raw}
    if args.write is not None:
        print(f"wrote {args.write}/train.json and valid.json", file=sys.stderr)
    train, valid = examples["train"], examples["valid"]
    labels = sorted({i for e in train for i in e.intents})
    probs = baseline([list(e.intents) for e in train], [e.text for e in train],
                     [e.text for e in valid], labels)  # fmt: skip
    gold = [list(e.intents) for e in valid]
    rows = []
    payload: dict[str, Any] = {"train": len(train), "valid": len(valid), "labels": len(labels)}
    for name, threshold in (("0.5", 0.5), ("tuned on valid", tune_threshold(probs, labels, gold))):
        pred = above(probs, labels, threshold)
        scores = {
            "threshold": threshold,
            "intent_f1": round(micro_f1(gold, pred), 4),
            "intent_exact_match": round(exact_match(gold, pred), 4),
        }
        payload[name] = scores
        rows.append([name, threshold, scores["intent_f1"], scores["intent_exact_match"]])
    print(format_table(["threshold", "value", "intent micro-F1", "exact match"], rows))
    path = write_results("nlupp_baseline", args, started, payload)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
