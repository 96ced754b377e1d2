"""English number words ("twenty five", "a dozen", "seventh") as integers."""

from __future__ import annotations

import re

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
ORDINAL_UNITS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
SCALES = {"hundred": 100, "thousand": 1000}
NUMBER_WORDS = frozenset(UNITS) | frozenset(TENS) | frozenset(SCALES)
_DIGITS = re.compile(r"^\d+$")
_ORDINAL_DIGITS = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")


def words_to_int(words: list[str]) -> int | None:
    """``["twenty", "five"]`` -> 25, ``["two", "hundred"]`` -> 200; None if not a number."""
    if not words:
        return None
    total, current = 0, 0
    for word in words:
        if word in UNITS:
            current += UNITS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        elif word != "and":
            return None
    return total + current


def ordinal_value(words: list[str]) -> int | None:
    """``["twenty", "third"]`` -> 23, ``["7th"]`` -> 7; None if not an ordinal."""
    if len(words) == 1 and (m := _ORDINAL_DIGITS.match(words[0])):
        return int(m.group(1))
    if not words or words[-1] not in ORDINAL_UNITS:
        return None
    head = words_to_int(words[:-1]) if len(words) > 1 else 0
    if head is None or head % 10:
        return None
    return head + ORDINAL_UNITS[words[-1]]


def tokens(text: str) -> list[str]:
    """Lower-case words and numbers; hyphens split ("twenty-five"), decimals stay whole."""
    return re.findall(
        r"\d+(?:st|nd|rd|th)(?![^\W\d_])|\d+(?:[.,]\d+)*|[^\W\d_]+(?:'[^\W\d_]+)?", text.lower()
    )


def replace_number_words(words: list[str]) -> list[str]:
    """Runs of number words become digits: ``seven thirty pm`` -> ``7 30 pm``.

    A run stops where a new number would start after a complete one ("seven thirty" is two
    numbers, as clock times are read), so only tens followed by units join up.
    """
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in TENS and i + 1 < len(words) and 0 < UNITS.get(words[i + 1], 0) < 10:
            out.append(str(TENS[word] + UNITS[words[i + 1]]))
            i += 2
        elif word in UNITS or word in TENS:
            out.append(str(UNITS.get(word, TENS.get(word))))
            i += 1
        else:
            out.append(word)
            i += 1
    return out


def is_int(word: str) -> bool:
    return bool(_DIGITS.match(word))
