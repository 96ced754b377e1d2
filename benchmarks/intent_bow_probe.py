"""How far a plain bag-of-n-grams logistic regression gets on ``slotfill cv``'s folds.

A probe for issue 19's rare intents: if a linear model of word unigrams and bigrams cannot tell
``atis_flight_no`` or ``atis_meal`` from ``atis_flight`` either, the keywords themselves are
ambiguous in the labels, and a lexical path to the intent head cannot be expected to fix them.
Same folds (fold seed 0), trained on each fold's training + early-stopping part, scored per
fold and pooled as ``slotfill cv`` scores intents::

    .venv/bin/python -m benchmarks.intent_bow_probe ../shared/data/atis
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from training.cv import MACRO_MIN_EXAMPLES, class_scores, make_folds, pooled_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a folder with train/ and valid/ (seq.in, label)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--c", type=float, default=10.0, help="inverse regularisation strength")
    args = parser.parse_args()
    texts: list[str] = []
    labels: list[str] = []
    for split in ("train", "valid"):
        texts += (args.data / split / "seq.in").read_text().splitlines()
        labels += (args.data / split / "label").read_text().splitlines()
    eligible = sorted(c for c, n in Counter(labels).items() if n >= MACRO_MIN_EXAMPLES)
    out_of_fold = [""] * len(labels)
    per_fold = []
    for fold in make_folds(labels, args.folds):
        train = fold.train + fold.stop
        vectorizer = CountVectorizer(ngram_range=(1, 2), token_pattern=r"\S+", binary=True)
        x = vectorizer.fit_transform([texts[i] for i in train])
        model = LogisticRegression(C=args.c, max_iter=2000).fit(x, [labels[i] for i in train])
        pred = [str(p) for p in model.predict(vectorizer.transform([texts[i] for i in fold.test]))]
        for i, p in zip(fold.test, pred, strict=True):
            out_of_fold[i] = p
        per_fold.append(class_scores([labels[i] for i in fold.test], pred, eligible)[0])
    pooled = pooled_scores(labels, out_of_fold, eligible)
    print(json.dumps({"fold_macro_f1": per_fold, **pooled}))


if __name__ == "__main__":
    main()
