"""Token lists -> padded index arrays (:class:`TokenArrays`), the input of both networks, and
the same as tensors (:class:`TokenBatch`) for torch. Imports no torch until tensors are asked
for: a NumPy-engine worker never imports it (models.engine)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import Tensor

from models.text import char_normalize, normalize, shape
from models.vocab import Vocab

MAX_WORD_CHARS = 20
_Ids = tuple[int, int, tuple[int, ...]]  # a token's word id, shape id and character ids
# Bigram (a, b) of word ids hashes to (a * BIGRAM_PRIME + b) mod buckets (the wide terms of
# models.slot_tagger and models.sentiment; the NumPy engine computes the same integers).
BIGRAM_PRIME = 1_000_003


@dataclass(frozen=True)
class TokenBatch:
    """Padded network input for a batch of token sequences.

    ``token_ids``/``shape_ids``/``mask``: ``(batch, seq_len)``; ``char_ids``:
    ``(batch, seq_len, max_chars)``. ``mask`` is true on real tokens. ``requested``:
    ``(batch, num_requested)``, 1.0 where the dialogue asked for that slot just before the
    utterance (a tagger with a context input reads it; ``None``: no slot was asked for).
    """

    token_ids: Tensor
    char_ids: Tensor
    shape_ids: Tensor
    mask: Tensor
    requested: Tensor | None = None

    def to(self, device: torch.device | str) -> TokenBatch:
        """Copy to ``device``."""
        return TokenBatch(
            self.token_ids.to(device),
            self.char_ids.to(device),
            self.shape_ids.to(device),
            self.mask.to(device),
            None if self.requested is None else self.requested.to(device),
        )

    def with_requested(self, rows: Sequence[Sequence[int]], size: int) -> TokenBatch:
        """This batch with the requested slots of each sentence (indices below ``size``)."""
        import torch

        return replace(self, requested=torch.from_numpy(requested_rows(rows, size)))


def requested_rows(rows: Sequence[Sequence[int]], size: int) -> np.ndarray:
    """Multi-hot float32 ``(len(rows), size)``: 1.0 at each row's indices."""
    requested = np.zeros((len(rows), size), dtype=np.float32)
    for b, row in enumerate(rows):
        requested[b, list(row)] = 1.0
    return requested


@dataclass(frozen=True)
class TokenArrays:
    """:class:`TokenBatch` as NumPy arrays (int64 ids, bool mask, float32 ``requested``)."""

    token_ids: np.ndarray
    char_ids: np.ndarray
    shape_ids: np.ndarray
    mask: np.ndarray
    requested: np.ndarray | None = None

    def tensors(self) -> TokenBatch:
        """The same batch as CPU tensors sharing this memory."""
        import torch

        return TokenBatch(
            torch.from_numpy(self.token_ids),
            torch.from_numpy(self.char_ids),
            torch.from_numpy(self.shape_ids),
            torch.from_numpy(self.mask),
            None if self.requested is None else torch.from_numpy(self.requested),
        )

    def with_requested(self, rows: Sequence[Sequence[int]], size: int) -> TokenArrays:
        """This batch with the requested slots of each sentence (indices below ``size``)."""
        return replace(self, requested=requested_rows(rows, size))


def encode_tokens(sentences: Sequence[Sequence[str]], words: Vocab, chars: Vocab) -> TokenBatch:
    """Encode raw token strings; every sentence must have at least one token."""
    return encode_arrays(sentences, words, chars).tensors()


def encode_arrays(sentences: Sequence[Sequence[str]], words: Vocab, chars: Vocab) -> TokenArrays:
    """:func:`encode_tokens` as NumPy arrays."""
    if not sentences or any(len(s) == 0 for s in sentences):
        raise ValueError("expected a non-empty batch of non-empty token sequences")
    seq_len = max(len(s) for s in sentences)
    # Flat lists first, converted once: far cheaper than nested lists or per-item writes.
    tok_flat: list[int] = []
    shape_flat: list[int] = []
    char_flat: list[int] = []
    pad_chars = [0] * MAX_WORD_CHARS
    known = _known_tokens(words, chars)
    for sent in sentences:
        pad = seq_len - len(sent)
        entries = [known.get(t) or _encode_token(t, words, chars, known) for t in sent]
        tok_flat += [e[0] for e in entries]
        tok_flat += [0] * pad
        shape_flat += [e[1] for e in entries]
        shape_flat += [0] * pad
        for e in entries:
            char_flat += e[2]
        char_flat += pad_chars * pad
    batch = len(sentences)
    token_ids = np.array(tok_flat, dtype=np.int64).reshape(batch, seq_len)
    shape_ids = np.array(shape_flat, dtype=np.int64).reshape(batch, seq_len)
    char_ids = np.array(char_flat, dtype=np.int64).reshape(batch, seq_len, MAX_WORD_CHARS)
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    return TokenArrays(token_ids, char_ids, shape_ids, mask)


# Per (word vocabulary, character vocabulary): token string -> (word id, shape id, character
# ids padded to MAX_WORD_CHARS). Chat traffic repeats its tokens, and a token's ids cost a
# dozen Python calls (a look-up per character); filled up to _KNOWN_TOKENS, never evicted.
_KNOWN_TOKENS = 1 << 14
_known: weakref.WeakKeyDictionary[Vocab, weakref.WeakKeyDictionary[Vocab, dict[str, _Ids]]]
_known = weakref.WeakKeyDictionary()


def _known_tokens(words: Vocab, chars: Vocab) -> dict[str, _Ids]:
    by_chars = _known.get(words)
    if by_chars is None:
        by_chars = _known.setdefault(words, weakref.WeakKeyDictionary())
    known = by_chars.get(chars)
    if known is None:
        known = by_chars.setdefault(chars, {})
    return known


def _encode_token(token: str, words: Vocab, chars: Vocab, known: dict[str, _Ids]) -> _Ids:
    ids = [chars.index(c) for c in char_normalize(token)[:MAX_WORD_CHARS]]
    padded = (*ids, *[0] * (MAX_WORD_CHARS - len(ids)))
    entry = (words.index(normalize(token)), shape(token), padded)
    if len(known) < _KNOWN_TOKENS:
        known[token] = entry
    return entry
