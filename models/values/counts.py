"""Counts of people and things from words: "my wife and I" -> 2, "two adults and a child" -> 3.

Every quantity that goes with a noun adds up ("two adults and a child"); the speaker ("I",
"me", "myself") and each "my <someone>" without a number count one; "no kids" counts zero.
What cannot be counted exactly ("my kids", "four or five", "some friends") gives None rather
than a guess.
"""

from __future__ import annotations

from models.values.words import NUMBER_WORDS, tokens, words_to_int

_SELF = {"i", "me", "myself", "alone", "solo"}
_ONE = {"a", "an", "one", "single", "another"}
_ZERO = {"no", "zero", "none", "nobody", "without"}
_PAIRS = {"couple": 2, "pair": 2, "both": 2, "twins": 2, "dozen": 12}
_VAGUE = {"some", "few", "several", "many", "lots", "bunch", "group", "family", "or"}
_AGE = {"aged", "age", "ages"}
_POSSESSIVE = {"my", "our"}
_SKIP = {"and", "plus", "with", "of", "just", "only", "for", "people", "person", "the", "us"}


def _is_plural(word: str) -> bool:
    return word.endswith("s") and not word.endswith("ss") and word not in {"us", "this"}


def count_from_words(text: str) -> int | None:
    """The number of people or things ``text`` names, or None when it is not exact."""
    words = tokens(text)
    if not words:
        return None
    total, found, i = 0, False, 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else None
        if word in _VAGUE or word == "or":
            return None
        if word in _AGE or (word.isdigit() and nxt in ("years", "year", "yo", "yrs")):
            i += 2 if word in _AGE else 3  # "aged 5", "5 years old": an age, not a count
            continue
        if word.replace(",", "").isdigit() or word in NUMBER_WORDS:
            j = i
            while j < len(words) and (words[j] in NUMBER_WORDS or words[j] == "and"):
                j += 1
            if j == i:  # digits
                value, j = int(word.replace(",", "")), i + 1
            else:
                while j > i and words[j - 1] == "and":
                    j -= 1
                parsed = words_to_int(words[i:j])
                if parsed is None:
                    return None
                value = parsed
            if j < len(words) and words[j] in ("dozen", "couple", "pair"):
                value, j = value * _PAIRS[words[j]], j + 1
            total, found, i = total + value, True, j
            continue
        if word in _PAIRS:
            total, found = total + _PAIRS[word], True
            i += 2 if nxt == "of" else 1
            continue
        if word in _ONE and nxt is not None and nxt not in _PAIRS and nxt not in _SKIP:
            total, found, i = total + 1, True, i + 2
            continue
        if word in _ZERO:
            found, i = True, i + 2
            continue
        if word in _POSSESSIVE and nxt is not None:
            if nxt in NUMBER_WORDS or nxt.isdigit() or nxt in _PAIRS:
                i += 1  # "my two kids": the number counts
                continue
            if _is_plural(nxt):
                return None  # "my kids": how many?
            total, found, i = total + 1, True, i + 2
            continue
        if word in _SELF:
            total, found = total + 1, True
        i += 1
    return total if found else None
