"""A bag-of-n-grams intent model beside the tagger's head (issue 19).

A logistic regression of TF-IDF word uni- and bigrams and character 2-5-grams within words.
scikit-learn fits it (``training.lexical``); serving reads it here without scikit-learn, building
the features as its ``TfidfVectorizer`` does (lower-cased, tokens split on whitespace, sublinear
tf, idf, each block L2-normalised), so the logits are its ``decision_function``'s
(``tests/models/test_lexical.py``). On SNIPS it is about as accurate as the recurrent head and
wrong on different utterances, so a small share of it in the served blend corrects some of
the head's errors (README, "Intent model options").

Two files in the artifact: :data:`META` (labels, the n-grams in column order, the temperature)
and :data:`ARRAYS` (idf, coefficients, intercepts), bound to the manifest by their SHA-256.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.calibration import softmax

META = "lexical_intents.json"
ARRAYS = "lexical_intents.safetensors"
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)
_CACHED_WORDS = 100_000


def word_ngrams(text: str) -> list[str]:
    """scikit-learn's word analyzer with ``token_pattern=r"\\S+"``, n-grams 1-2."""
    return _word_grams(text.lower().split())


def _word_grams(tokens: list[str]) -> list[str]:
    return [*tokens, *(f"{a} {b}" for a, b in itertools.pairwise(tokens))]


def char_ngrams(text: str) -> list[str]:
    """scikit-learn's ``char_wb`` analyzer, n-grams 2-5: each word padded with one space on
    either side; a word shorter than ``n`` counted once, whole."""
    out: list[str] = []
    for word in text.lower().split():  # as scikit-learn's runs of whitespace, then split
        w = f" {word} "
        for n in range(CHAR_NGRAMS[0], CHAR_NGRAMS[1] + 1):
            if len(w) <= n:
                out.append(w)
                break
            out.extend(w[i : i + n] for i in range(len(w) - n + 1))
    return out


@dataclass
class LexicalIntents:
    """The fitted model: ``coef`` is ``(features, intents)``, the word block's columns first."""

    labels: list[str]
    word_index: dict[str, int]
    char_index: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    temperature: float = 1.0
    # word -> its character n-grams' columns: words recur, their n-grams need not be rebuilt
    _columns: dict[str, list[int]] = field(default_factory=dict, repr=False, compare=False)

    def _char_columns(self, word: str) -> list[int]:
        columns = self._columns.get(word)
        if columns is None:
            offset, index = len(self.word_index), self.char_index
            columns = [j + offset for g in char_ngrams(word) if (j := index.get(g)) is not None]
            if len(self._columns) >= _CACHED_WORDS:
                self._columns.clear()
            self._columns[word] = columns
        return columns

    def _features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's nonzero columns and TF-IDF values, each block L2-normalised."""
        words = text.lower().split()
        index = self.word_index
        grams = _word_grams(words)
        blocks = [Counter(j for g in grams if (j := index.get(g)) is not None), Counter()]
        for word in words:
            blocks[1].update(self._char_columns(word))
        cols: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for counts in blocks:
            if counts:
                c = np.fromiter(counts, dtype=np.int64, count=len(counts))
                v = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                v = (np.log(v) + 1.0) * self.idf[c]
                cols.append(c)
                values.append(v / math.sqrt(float(v @ v)))
        if not cols:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(cols), np.concatenate(values)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), len(labels))`` raw scores (scikit-learn's ``decision_function``)."""
        out = np.tile(self.intercept.astype(np.float64), (len(texts), 1))
        for b, text in enumerate(texts):
            cols, values = self._features(text)
            if len(cols):
                out[b] += values @ self.coef[cols]
        return out

    def probs(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities (the temperature fitted on valid)."""
        return softmax(self.logits(texts) / self.temperature)

    def save(self, folder: Path) -> list[str]:
        """Write :data:`META` and :data:`ARRAYS` into ``folder``; their names."""
        from safetensors.numpy import save_file

        def in_order(index: dict[str, int]) -> list[str]:
            return sorted(index, key=index.__getitem__)

        meta = {
            "labels": self.labels,
            "word_ngrams": in_order(self.word_index),
            "char_ngrams": in_order(self.char_index),
            "temperature": self.temperature,
        }
        (folder / META).write_text(json.dumps(meta, ensure_ascii=False) + "\n", encoding="utf-8")
        arrays = {
            "idf": self.idf.astype(np.float64),
            "coef": self.coef.astype(np.float64),
            "intercept": self.intercept.astype(np.float64),
        }
        save_file(arrays, str(folder / ARRAYS))
        return [META, ARRAYS]

    @classmethod
    def load(cls, folder: Path) -> LexicalIntents:
        """Read what :meth:`save` wrote; ``ValueError`` when the two files disagree."""
        from safetensors.numpy import load_file

        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        arrays = load_file(str(folder / ARRAYS))
        words, chars = meta["word_ngrams"], meta["char_ngrams"]
        labels = [str(x) for x in meta["labels"]]
        width = len(words) + len(chars)
        coef, idf, intercept = arrays["coef"], arrays["idf"], arrays["intercept"]
        if (
            coef.shape != (width, len(labels))
            or idf.shape != (width,)
            or len(intercept) != len(labels)
        ):
            raise ValueError(f"{folder / ARRAYS}: shapes do not match {folder / META}")
        return cls(
            labels=labels,
            word_index={g: i for i, g in enumerate(words)},
            char_index={g: i for i, g in enumerate(chars)},
            idf=idf,
            coef=coef,
            intercept=intercept,
            temperature=float(meta["temperature"]),
        )
