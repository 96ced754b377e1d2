"""Clock times as people say them: "8 10 p.m.", "quarter to 7", "half past 3 at night".

A slot typed ``time`` holds a clock time with no date, so its words are read here before
Duckling sees them: Duckling reads "3:35 night" as 15:35 and "3" as a plain number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.values.words import replace_number_words, tokens

_FILLER = {"at", "around", "about", "approximately", "approx", "roughly", "ish", "o", "clock",
           "in", "the", "of", "sharp", "exactly", "hrs", "h", "oclock", "o'clock"}  # fmt: skip
_DAYPARTS = {
    "am": "am", "a": "am", "pm": "pm", "p": "pm", "morning": "morning", "afternoon": "afternoon",
    "evening": "evening", "night": "night", "tonight": "night", "noon": "afternoon",
}  # fmt: skip
_FRACTIONS = {"half": 30, "quarter": 15}
_PAST = {"past", "after"}
_TO = {"to", "before", "till", "til"}


@dataclass(frozen=True)
class Clock:
    """A parsed clock time; ``explicit`` when a.m./p.m. or a part of the day says which half."""

    hour: int
    minute: int
    explicit: bool


def _apply_daypart(hour: int, part: str | None) -> int | None:
    if part is None:
        return hour if hour <= 24 else None
    if hour > 12:  # already on a 24-hour clock: "16 55 afternoon"
        return hour if hour < 24 and part not in ("am", "morning") else None
    if part in ("am", "morning"):
        return 0 if hour == 12 else hour
    if part in ("pm", "afternoon", "evening"):
        return hour if hour == 12 else hour + 12
    # night: "9 at night" is 21:00, "3 at night" 03:00, "12 at night" midnight
    if hour == 12:
        return 0
    return hour + 12 if hour >= 6 else hour


def _split(text: str) -> tuple[list[str], str | None] | None:
    """Words without filler, and the part of the day they name (at most one)."""
    text = re.sub(r"(\d)[:.h](\d\d)\b", r"\1 \2", text.lower())
    text = re.sub(r"\b([ap])\.?\s?m\b\.?", r" \1m ", text)
    words = [w for w in replace_number_words(tokens(text)) if w not in _FILLER]
    words = [w[:-3] if w.endswith("ish") and w[:-3].isdigit() else w for w in words]
    parts = [w for w in words if w in _DAYPARTS]
    if len(set(map(_DAYPARTS.get, parts))) > 1:
        return None
    core = [w for w in words if w not in _DAYPARTS]
    if words in (["noon"], ["midday"]) or core == ["midday"]:
        return ["12", "00"], "afternoon"
    if core == ["midnight"]:
        return ["0", "00"], None
    return core, _DAYPARTS[parts[0]] if parts else None


def parse_clock(text: str) -> Clock | None:
    """The clock time in ``text``, or None when it is not only a clock time.

    Without a.m./p.m. or a part of the day the hour is read as written on a 24-hour clock
    ("7" -> 07:00) and ``explicit`` is False, so a caller that knows the date can pick the
    next occurrence instead.
    """
    split = _split(text)
    if split is None:
        return None
    core, part = split
    if len(core) == 1 and core[0].isdigit() and len(core[0]) in (3, 4):
        core = [core[0][:-2], core[0][-2:]]  # "1430", "930"
    hour: int | None
    minute = 0
    if len(core) in (1, 2) and all(w.isdigit() for w in core):
        hour = int(core[0])
        if len(core) == 2:
            if len(core[1]) != 2 and int(core[1]) < 10:
                return None  # "7 5" is not a time
            minute = int(core[1])
    elif len(core) >= 3 and (core[-2] in _PAST or core[-2] in _TO) and core[-1].isdigit():
        amount = core[:-2]
        if amount in (["a", "quarter"], ["quarter"], ["half"]):
            offset = _FRACTIONS[amount[-1]]
        elif amount and amount[0].isdigit() and amount[1:] in ([], ["minutes"], ["minute"]):
            offset = int(amount[0])
        else:
            return None
        if offset >= 60:
            return None
        hour = _apply_daypart(int(core[-1]), part)
        if hour is None:
            return None
        total = hour * 60 + (offset if core[-2] in _PAST else -offset)
        total %= 24 * 60
        return Clock(total // 60, total % 60, part is not None)
    else:
        return None
    if minute >= 60:
        return None
    hour = _apply_daypart(hour, part)
    if hour is None or (hour == 24 and minute):
        return None
    return Clock(hour % 24, minute, part is not None or hour == 0 or hour > 12)
