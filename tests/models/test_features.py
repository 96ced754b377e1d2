"""encode_arrays: the ids of each token, also when they come from its per-vocabulary cache."""

from __future__ import annotations

import numpy as np

from models.features import MAX_WORD_CHARS, encode_arrays
from models.text import char_normalize, normalize, shape
from models.vocab import Vocab

SENTENCES = [
    ["Book", "a", "flight", "to", "Boston", "at", "7pm"],
    ["book", "Book", "supercalifragilisticexpialidociously", "Ünïcode", "!"],
    ["a"],
]


def _expected(sentences: list[list[str]], words: Vocab, chars: Vocab) -> list[np.ndarray]:
    """The ids computed token by token, without any cache."""
    t = max(len(s) for s in sentences)
    tokens = np.zeros((len(sentences), t), dtype=np.int64)
    shapes = np.zeros_like(tokens)
    char_ids = np.zeros((len(sentences), t, MAX_WORD_CHARS), dtype=np.int64)
    for b, sent in enumerate(sentences):
        for i, tok in enumerate(sent):
            tokens[b, i], shapes[b, i] = words.index(normalize(tok)), shape(tok)
            for j, c in enumerate(char_normalize(tok)[:MAX_WORD_CHARS]):
                char_ids[b, i, j] = chars.index(c)
    return [tokens, char_ids, shapes]


def test_cached_tokens_encode_as_computed_ones_per_vocabulary_pair() -> None:
    words = Vocab(["book", "a", "flight", "to", "boston"])
    chars, other_chars = Vocab(list("abcdefghijklmnopqrstuvwxyz")), Vocab(list("zyxkoob"))
    for _ in range(2):  # the second time every token is known
        for char_vocab in (chars, other_chars):
            got = encode_arrays(SENTENCES, words, char_vocab)
            for array, want in zip(
                [got.token_ids, got.char_ids, got.shape_ids],
                _expected(SENTENCES, words, char_vocab),
                strict=True,
            ):
                np.testing.assert_array_equal(array, want)
            assert got.mask.sum() == sum(len(s) for s in SENTENCES)
    alone = encode_arrays([SENTENCES[1]], Vocab(["book"]), chars)  # another word vocabulary
    np.testing.assert_array_equal(alone.token_ids, [[2, 2, 1, 1, 1]])
