"""Examples of any format -> what the tagger trains and is scored on: the server's tokens,
BIO tags, intent sets and requested slots, one row per example."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from training.data import DataError, SlotDataset
from training.formats.align import align
from training.formats.example import Example


@dataclass
class TaggingSet:
    """Aligned examples. ``intents[i]``: the example's intents (any number);
    ``requested[i]``: the slots asked for before it; ``problems``: spans left out, each
    naming its example; ``cuts``: tokens cut by a span boundary."""

    tokens: list[list[str]]
    tags: list[list[str]]
    intents: list[tuple[str, ...]]
    requested: list[tuple[str, ...]]
    source: str
    where: list[str] = field(default_factory=list)  # names each example in messages
    problems: list[str] = field(default_factory=list)
    cuts: int = 0

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def has_intents(self) -> bool:
        """True when some example has an intent."""
        return any(self.intents)

    @property
    def multi_intent(self) -> bool:
        """True when some example has more than one intent."""
        return any(len(i) > 1 for i in self.intents)

    @property
    def has_context(self) -> bool:
        """True when some example has requested slots."""
        return any(self.requested)

    def single_intents(self) -> list[str] | None:
        """One intent per example for a single-label model (``None`` without intents);
        an example without an intent among others with one is an error of the data."""
        if not self.has_intents:
            return None
        for where, row in zip(self.where, self.intents, strict=True):
            if not row:
                raise DataError(
                    f"{where}: no intent, but other examples have one; single-label "
                    "training needs one per example (or set intent_mode: multi_label)"
                )
        return ["#".join(i) for i in self.intents]


def tagging_set(examples: Sequence[Example], source: str) -> TaggingSet:
    """Align every example onto tokens; an example with no token at all is an error of the
    data (the server refuses such a text too), reported by ``where``."""
    out = TaggingSet([], [], [], [], source)
    for ex in examples:
        aligned = align(ex)
        if not aligned.tokens:
            raise DataError(f"{ex.where}: the text has no token")
        out.tokens.append(aligned.words)
        out.tags.append(aligned.tags)
        out.intents.append(ex.intents)
        out.requested.append(ex.requested_slots)
        out.where.append(ex.where)
        out.problems.extend(f"{ex.where}: {p}; left out" for p in aligned.problems)
        out.cuts += aligned.cuts
    return out


def as_tagging(data: SlotDataset | TaggingSet) -> TaggingSet:
    """A BIO corpus read by :func:`training.data.read_slot_folder` as a :class:`TaggingSet`:
    its own tokens and tags, its label as one intent, no context."""
    if isinstance(data, TaggingSet):
        return data
    n = len(data)
    return TaggingSet(
        [list(t) for t in data.tokens],
        [list(t) for t in data.tags],
        [(i,) for i in data.intents] if data.intents is not None else [() for _ in range(n)],
        [() for _ in range(n)],
        data.source,
        [f"{data.source}/seq.in:{k + 1}" for k in range(n)],
    )
