"""Comparing two versions of a tagger on the valid split of a BIO data set: per-slot F1,
intent accuracy, and the utterances whose parse changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.serving.registry import load_checked
from models.engine import Engine
from models.text import tagger_tokens

MAX_UTTERANCES = 1000  # valid utterances one comparison parses
MAX_CHANGED = 200  # changed parses it lists


@dataclass
class Scores:
    slot_f1: dict[str, float] = field(default_factory=dict)  # per slot, and "overall"
    intent_accuracy: float | None = None


@dataclass
class Changed:
    text: str
    gold: str
    before: str
    after: str


@dataclass
class Comparison:
    versions: tuple[str, str]
    scores: tuple[Scores, Scores]
    utterances: int
    changed: list[Changed]
    slots: list[str]


def read_valid(folder: Path) -> list[tuple[list[str], list[str], str | None]]:
    """(tokens, tags, intent) of the valid split whose tokens are the server's tokens."""
    split = folder / "valid"
    words = (split / "seq.in").read_text(encoding="utf-8").splitlines()
    tags = (split / "seq.out").read_text(encoding="utf-8").splitlines()
    label_file = split / "label"
    labels: list[str | None] = (
        list(label_file.read_text(encoding="utf-8").splitlines())
        if label_file.is_file()
        else [None] * len(words)
    )
    examples = []
    for line, tag_line, label in zip(words, tags, labels, strict=False):
        tokens, bio = line.split(), tag_line.split()
        if tokens and len(tokens) == len(bio) and [t.text for t in tagger_tokens(line)] == tokens:
            examples.append((tokens, bio, label))
    return examples[:MAX_UTTERANCES]


def _labelled(tokens: list[str], tags: list[str], intent: str | None) -> str:
    chunks = [f"{t}/{g[2:]}" if g != "O" else t for t, g in zip(tokens, tags, strict=True)]
    return f"[{intent or '-'}] " + " ".join(chunks)


def compare(
    store: Path, name: str, a: str, b: str, data: Path, engine: Engine = "numpy"
) -> Comparison:
    """Parse the valid split of ``data`` with ``name@a`` and ``name@b``; raises
    ``ArtifactError``/``ValueError``/``OSError`` for a version that does not load.
    ``engine``: the server's (a NumPy-engine worker stays without torch)."""
    examples = read_valid(data)
    texts = [" ".join(tokens) for tokens, _, _ in examples]
    gold = [tags for _, tags, _ in examples]
    results = []
    for version in (a, b):
        loaded = load_checked(store, name, version, checksum=None, task="slots", engine=engine)
        predictor = loaded.tagger
        parses = predictor.parse(texts) if texts else []
        predicted = [p.tags for p in parses]
        intents = [p.intent_ranking[0][0] if p.intent_ranking else None for p in parses]
        scores = Scores()
        if texts:
            # Imported here: seqeval pulls in scikit-learn and SciPy (~1.5 s and ~100 MB per
            # serving worker at start-up), for this operator action alone.
            from seqeval.metrics import classification_report

            report: dict[str, Any] = classification_report(
                gold, predicted, output_dict=True, zero_division=0
            )
            scores.slot_f1 = {
                k.removesuffix(" avg"): float(v["f1-score"])
                for k, v in report.items()
                if isinstance(v, dict) and k not in ("macro avg", "weighted avg")
            }
            labelled = [(g, p) for (_, _, g), p in zip(examples, intents, strict=True) if g]
            if labelled:
                scores.intent_accuracy = sum(g == p for g, p in labelled) / len(labelled)
        results.append((scores, predicted, intents))
    (sa, pa, ia), (sb, pb, ib) = results
    changed = [
        Changed(
            texts[i],
            _labelled(examples[i][0], gold[i], examples[i][2]),
            _labelled(examples[i][0], pa[i], ia[i]),
            _labelled(examples[i][0], pb[i], ib[i]),
        )
        for i in range(len(texts))
        if pa[i] != pb[i] or ia[i] != ib[i]
    ]
    slots = sorted((set(sa.slot_f1) | set(sb.slot_f1)) - {"micro"})
    return Comparison((a, b), (sa, sb), len(texts), changed[:MAX_CHANGED], slots)
