"""Text -> the word pieces of an uncased BERT-family encoder (models.transformer).

Hugging Face ``tokenizers`` does the work, set up as BERT's own tokenizer: its normaliser
(control characters removed, accents stripped, lower case, CJK characters spaced), its
pre-tokeniser (whitespace and punctuation) and greedy longest-match WordPiece over the
artifact's vocabulary, so a fine-tuned model reads text as its pretrained encoder did.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.features import TokenArrays
from models.vocab import UNK, Vocab


class WordPieces:
    """Callable: texts -> word-piece strings per text, at most ``max_pieces`` each (uncased
    encoders only: training.pretrained_encoder refuses cased ones)."""

    def __init__(self, words: Vocab, max_pieces: int) -> None:
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        tokenizer = Tokenizer(
            models.WordPiece(vocab=dict(words.stoi), unk_token=UNK, max_input_chars_per_word=100)
        )
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer = tokenizer
        self.max_pieces = max_pieces

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [e.tokens[: self.max_pieces] for e in encoded]


def piece_arrays(sentences: Sequence[Sequence[str]], words: Vocab) -> TokenArrays:
    """Word pieces -> padded ids by exact look-up (not :func:`models.features.encode_arrays`,
    whose vocabulary keys fold digits and strip the ``##`` of a continuation piece); no
    character or shape ids, which a transformer does not read."""
    if not sentences or any(len(s) == 0 for s in sentences):
        raise ValueError("expected a non-empty batch of non-empty token sequences")
    seq_len = max(len(s) for s in sentences)
    token_ids = np.zeros((len(sentences), seq_len), dtype=np.int64)
    unk = words.stoi[UNK]
    for row, pieces in zip(token_ids, sentences, strict=True):
        row[: len(pieces)] = [words.stoi.get(p, unk) for p in pieces]
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    nothing = np.zeros((len(sentences), seq_len, 1), dtype=np.int64)
    return TokenArrays(token_ids, nothing, nothing[:, :, 0], mask)
