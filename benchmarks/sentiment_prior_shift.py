"""Would a sentiment model score better if its decisions leaned further towards rare labels?

Logit adjustment (``logit_adjustment``) trains so that the argmax moves towards the rare
labels by ``tau * log(prior)``. Before paying for training runs, this shifts a trained
model's valid logits the same way post hoc (``logits - tau * log(prior)``, prior from the
training split) and prints accuracy and macro-F1 per tau: if positive taus lower macro-F1,
the model already leans far enough towards the rare labels. For analysis only: tau is read
off valid here, so its best score is an optimistic one.

    python -m benchmarks.sentiment_prior_shift ARTIFACT ../shared/data/airline_sentiment
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch

from models.artifact import load_artifact
from models.features import encode_tokens
from models.predictor import SentimentPredictor
from training.data import read_tsv
from training.evaluate import sentiment_inputs
from training.metrics import classification_metrics

TAUS = (-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def valid_logits(predictor: SentimentPredictor, texts: Sequence[str]) -> torch.Tensor:
    """``(len(texts), labels)`` logits of the model, read with the server's tokenizer."""
    tokens = sentiment_inputs(texts, predictor)
    parts = []
    with torch.inference_mode():
        for i in range(0, len(tokens), 256):
            batch = encode_tokens(tokens[i : i + 256], predictor.words, predictor.chars)
            parts.append(predictor.model(batch))
    return torch.cat(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path, help="a sentiment artifact directory")
    parser.add_argument("data", type=Path, help="folder holding train.tsv and valid.tsv")
    args = parser.parse_args(argv)
    predictor = load_artifact(args.artifact).predictor
    if not isinstance(predictor, SentimentPredictor):
        parser.error(f"{args.artifact}: not a sentiment model")
    train, valid = read_tsv(args.data / "train.tsv"), read_tsv(args.data / "valid.tsv")
    logits = valid_logits(predictor, valid.texts)
    counts = Counter(train.labels)
    prior = torch.tensor([float(counts[label]) for label in predictor.labels.labels])
    log_prior = torch.log(prior / prior.sum())
    print("   tau  accuracy  macro-F1")
    for tau in TAUS:
        pred = (logits - tau * log_prior).argmax(dim=1).tolist()
        scores = classification_metrics(valid.labels, [predictor.labels.labels[i] for i in pred])
        print(f"{tau:6.2f}  {scores['accuracy']:8.4f}  {scores['macro_f1']:8.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
