"""The one example type every reader produces, and the checks all readers share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.text import Token
from training.data import DataError

FORMATS: tuple[str, ...] = ("bio", "nlupp", "dstc8", "rasa", "jsonl")


@dataclass(frozen=True, slots=True)
class SlotSpan:
    """Slot ``slot`` on ``text[start:end]``; ``value``: its canonical value (any JSON value:
    a Rasa synonym's string, an NLU++ date object), ``None`` when the text is the value."""

    start: int
    end: int
    slot: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Example:
    """One utterance: text, character spans, intents (0, 1 or several) and the slots the
    system has just asked for (the dialogue context).

    ``where`` names the file and example for messages. ``tokens``: only for BIO corpora,
    whose whitespace tokens are kept as given (their tags are per token, not per character).
    """

    text: str
    spans: tuple[SlotSpan, ...] = ()
    intents: tuple[str, ...] = ()
    requested_slots: tuple[str, ...] = ()
    where: str = ""
    tokens: tuple[Token, ...] | None = None


@dataclass
class DataSplits:
    """A data folder read by one reader: its train and valid examples and what else it held.

    ``synonyms`` maps a lower-cased surface text to its canonical value (Rasa ``synonym:``
    items); ``lookups`` holds Rasa ``lookup:`` tables by name; ``notes`` says what the reader
    did beyond reading (a valid split it made, BIO repairs), for the user to see.
    """

    format: str
    train: list[Example]
    valid: list[Example]
    train_files: list[Path]
    valid_files: list[Path]
    synonyms: dict[str, str] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def example_name(path: Path | str, index: int, text: str) -> str:
    """``file: example N ("text...")``, the prefix of every message about one example."""
    short = text if len(text) <= 40 else text[:37] + "..."
    return f"{path}: example {index + 1} ({short!r})"


def checked_span(where: str, text: str, start: Any, end: Any, slot: Any, value: Any) -> SlotSpan:
    """A :class:`SlotSpan` after checking it lies inside ``text``; else :class:`DataError`."""
    if not isinstance(slot, str) or not slot.strip():
        raise DataError(f"{where}: slot name {slot!r} is not a non-empty string")
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool):
        raise DataError(f"{where}: span of {slot!r} has non-integer bounds {start!r}, {end!r}")
    if not 0 <= start < end <= len(text):
        raise DataError(
            f"{where}: span [{start}, {end}) of {slot!r} is outside the text "
            f"of {len(text)} characters"
        )
    return SlotSpan(start, end, slot, value)


def string_list(where: str, what: str, raw: Any) -> tuple[str, ...]:
    """A list of non-empty strings (``None``: empty); else :class:`DataError`."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise DataError(f"{where}: {what} must be a list of non-empty strings, got {raw!r}")
    return tuple(raw)
