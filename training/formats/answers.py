"""Bare answers: what a user types after the bot asked for one slot ("Sacramento" after
"where to?", "the 3rd" after "which day do you pick it up?").

Written dialogue data mostly names the slot in words ("to Sacramento"), so a tagger trained
on it hardly needs the requested slot, and reads a bare value by its type alone: a city is
as likely ``from_location`` as ``to_location``. Each utterance that answers exactly one
requested slot gives one bare answer: the labelled text of that slot, with the same
context. Training on them (config ``bare_answers``) makes the context the only evidence
for the slot; ``benchmarks/dialogue_context.py`` scores models on the valid split's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from training.formats.example import Example, SlotSpan


def bare_answer(example: Example) -> Example | None:
    """``example`` cut down to its span of the one slot it was asked for, if it has one."""
    if len(example.requested_slots) != 1:
        return None
    asked = example.requested_slots[0]
    for span in example.spans:
        text = example.text[span.start : span.end]
        if span.slot != asked or not text.strip():
            continue
        # Surrounding whitespace would put the label on a space: the span's own text only.
        text = text.strip()
        where = f"{example.where} (bare answer)" if example.where else "bare answer"
        spans = (SlotSpan(0, len(text), asked, span.value),)
        return replace(example, text=text, spans=spans, where=where, tokens=None)
    return None


def bare_answers(examples: Iterable[Example]) -> list[Example]:
    """The bare answer of every example that has one, in order."""
    return [b for b in map(bare_answer, examples) if b is not None]


def with_bare_answers(examples: list[Example]) -> list[Example]:
    """``examples`` followed by their bare answers, leaving out any whose text and context
    an example already has (a bare answer the data holds already)."""
    seen = {(e.text.casefold(), e.requested_slots) for e in examples}
    extra = []
    for answer in bare_answers(examples):
        key = (answer.text.casefold(), answer.requested_slots)
        if key not in seen:
            seen.add(key)
            extra.append(answer)
    return [*examples, *extra]
