"""How far a fine-tuned pretrained encoder gets on the intents of ``slotfill cv slots``'s folds.

A probe for issue 19's SNIPS target (intent accuracy >= 0.990 over 5 folds): the BiLSTM
tagger's errors are ``SearchCreativeWork`` against ``SearchScreeningEvent``, which word
evidence from the training set alone does not separate. This fine-tunes the sentiment
trainer's encoder classifier (``--pretrained-encoder``) on the utterances' intents: a BIO
folder's ``seq.in``/``label`` become a ``text<TAB>label`` folder, and ``slotfill cv
sentiment``'s code scores it. The folds are the tagger's: both deal each class round-robin over
the same pooled order (train, then valid) with the same fold seed. Intents only, no slots::

    .venv/bin/python -m benchmarks.intent_encoder_probe --data ../shared/data/snips \\
        --encoder ENCODER_DIR --seeds 13 --only-folds 2 --out probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from models.artifact import file_sha256
from training.config import SentimentTrainConfig
from training.cv import cross_validate


def write_intent_tsv(bio: Path, out: Path) -> int:
    """``bio``'s train and valid splits as ``out/{train,valid}.tsv`` (text, intent); rows."""
    rows = 0
    for split in ("train", "valid"):
        texts = (bio / split / "seq.in").read_text(encoding="utf-8").splitlines()
        labels = (bio / split / "label").read_text(encoding="utf-8").splitlines()
        pairs = zip(texts, labels, strict=True)  # a count mismatch is an error
        lines = ["text\tlabel", *(f"{t.strip()}\t{x.strip()}" for t, x in pairs)]
        (out / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        rows += len(texts)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="BIO folder: train/, valid/")
    parser.add_argument("--encoder", type=Path, required=True, help="pretrained encoder folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[13])
    parser.add_argument("--only-folds", type=int, nargs="+", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="JSON result")
    args = parser.parse_args()
    config = SentimentTrainConfig(
        pretrained_encoder=str(args.encoder), threads=args.threads, device="cpu"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = write_intent_tsv(args.data, Path(tmp))
        print(f"{rows} utterances pooled from {args.data}", file=sys.stderr, flush=True)
        result = cross_validate(
            "sentiment",
            Path(tmp),
            config,
            folds=args.folds,
            seeds=args.seeds,
            only_folds=args.only_folds,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    weights = args.encoder / "model.safetensors"
    result["data"] = f"{args.data.name} (seq.in and label as text<TAB>label)"  # not the tmp dir
    result["probe"] = {"data": args.data.name, "encoder_weights_sha256": file_sha256(weights)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"]))


if __name__ == "__main__":
    main()
