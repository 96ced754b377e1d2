"""Slot-value substitution: a training example's slot values replaced by others of the same type.

Most of SNIPS's remaining intent errors are a title the tagger has never met in words that
both intents use ("find the good wife"); a tagger that has memorised which titles came with
which intent reads an unseen one by chance. Swapping a span's words for another training
span of the same slot type, afresh each time an example is drawn, keeps the context and the
slot type (what the intent and the slots' fit read) and varies the value.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from models.predictor import Span, bio_spans


def _opens_with_b(tags: Sequence[str], span: Span) -> bool:
    """False for a stray ``I-`` span: its ``B-`` may be no label of the tagger's."""
    return tags[span.first] == f"B-{span.slot}"


class ValueSwapper:
    """Draws substitutes from the training examples' own slot values, per type."""

    def __init__(
        self, tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], rate: float, seed: int
    ) -> None:
        self.rate = rate
        self.rng = random.Random(seed)
        values: dict[str, set[tuple[str, ...]]] = {}
        for words, row in zip(tokens, tags, strict=True):
            for span in bio_spans(row):
                if _opens_with_b(row, span):
                    values.setdefault(span.slot, set()).add(
                        tuple(words[span.first : span.last + 1])
                    )
        # Sorted: the draws depend on the seed, not on set order (hash randomisation).
        self.values = {kind: sorted(v) for kind, v in values.items()}

    def __call__(self, words: Sequence[str], tags: Sequence[str]) -> tuple[list[str], list[str]]:
        """``words`` and ``tags`` with each span swapped with probability ``rate``."""
        out_words: list[str] = []
        out_tags: list[str] = []
        at = 0
        for span in bio_spans(tags):
            start, end, kind = span.first, span.last + 1, span.slot
            out_words += words[at:start]
            out_tags += tags[at:start]
            pool = self.values.get(kind, [])
            if _opens_with_b(tags, span) and len(pool) > 1 and self.rng.random() < self.rate:
                value = self.rng.choice(pool)
                out_words += value
                out_tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(value) - 1)
            else:  # as it was, a stray I- included
                out_words += words[start:end]
                out_tags += tags[start:end]
            at = end
        out_words += words[at:]
        out_tags += tags[at:]
        return out_words, out_tags
