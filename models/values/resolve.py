"""``resolve``: one slot's words as a typed value, for the slot's type and the user's clock."""

from __future__ import annotations

import re
from typing import Any

from models.values import engine
from models.values.counts import count_from_words
from models.values.reference import Reference
from models.values.synonyms import Synonyms
from models.values.temporal import (
    Bound,
    best,
    resolve_date,
    resolve_datetime,
    resolve_duration,
    resolve_interval,
    resolve_time,
)
from models.values.types import (
    CategoryValue,
    MoneyValue,
    Normalized,
    NumberValue,
    TextValue,
    ValueType,
)
from models.values.words import ordinal_value, tokens, words_to_int

MAX_TEXT = 200  # a slot longer than this is not a value; Duckling's time grows with length
_SYMBOLS = {"$": "USD", "£": "GBP", "€": "EUR", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB"}
_UNIT_WORDS = {
    "dollar": "USD", "dollars": "USD", "bucks": "USD", "buck": "USD", "usd": "USD",
    "pound": "GBP", "pounds": "GBP", "quid": "GBP", "gbp": "GBP", "sterling": "GBP",
    "euro": "EUR", "euros": "EUR", "eur": "EUR",
}  # fmt: skip
_SCALE = {"k": 1e3, "thousand": 1e3, "grand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6,
          "bn": 1e9, "billion": 1e9}  # fmt: skip
_MONEY = re.compile(
    r"^\s*(?P<pre>[$£€¥₹]|usd|gbp|eur)?\s*(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.?\d+)\s*"
    r"(?P<scale>k|m|mn|bn|grand|thousand|million|billion)?\s*"
    r"(?P<post>[$£€¥₹]|dollars?|bucks?|pounds?|quid|euros?|usd|gbp|eur|sterling)?\s*$",
    re.IGNORECASE,
)
_PLAIN_NUMBER = re.compile(r"^\s*[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*$")


def _currency(unit: Any) -> str | None:
    if not isinstance(unit, str):
        return None
    if unit in _SYMBOLS:
        return _SYMBOLS[unit]
    return unit.upper() if re.fullmatch(r"[A-Za-z]{3}", unit) else None


def _plain_number(text: str) -> float | None:
    if _PLAIN_NUMBER.match(text):
        return float(text.replace(",", ""))
    words = tokens(text)
    value = words_to_int(words)
    return float(value) if value is not None else None


def resolve_number(text: str, ref: Reference) -> NumberValue | None:
    """A number or an ordinal ("second" -> 2)."""
    plain = _plain_number(text)
    if plain is not None:
        return NumberValue(plain)
    ordinal = ordinal_value([w for w in tokens(text) if w != "the"])
    if ordinal is not None:
        return NumberValue(ordinal)
    entity = best(engine.parse(text, ("number", "ordinal"), ref.time, ref.tz_name),
                  ("number", "ordinal"))  # fmt: skip
    value = entity["value"].get("value") if entity else None
    return NumberValue(value) if isinstance(value, int | float) else None


def resolve_count(text: str) -> NumberValue | None:
    """A whole, non-negative count of people or things; None when it is not exact."""
    counted = count_from_words(text)
    return NumberValue(counted, count=True) if counted is not None else None


def resolve_money(text: str, ref: Reference) -> MoneyValue | None:
    """An amount and its ISO 4217 currency ("$1.5k" -> 1500 USD); a bare number has none."""
    if (m := _MONEY.match(text)) is not None and (m["scale"] or m["pre"] or m["post"]):
        amount = float(m["num"].replace(",", "")) * _SCALE.get((m["scale"] or "").lower(), 1)
        pre, post = (m["pre"] or ""), (m["post"] or "").lower()
        unit = _SYMBOLS.get(pre) or _UNIT_WORDS.get(pre.lower()) or _SYMBOLS.get(post)
        return MoneyValue(round(amount, 2), unit or _UNIT_WORDS.get(post))
    entity = best(engine.parse(text, ("amount-of-money",), ref.time, ref.tz_name),
                  ("amount-of-money",))  # fmt: skip
    if entity is not None and isinstance(entity["value"].get("value"), int | float):
        return MoneyValue(entity["value"]["value"], _currency(entity["value"].get("unit")))
    number = resolve_number(text, ref)
    return MoneyValue(number.value, None) if number is not None else None


def resolve(
    text: str,
    value_type: ValueType | str,
    ref: Reference,
    synonyms: Synonyms | None = None,
    bound: Bound = None,
) -> Normalized | None:
    """``text`` resolved as ``value_type`` against ``ref``; None when it cannot be.

    ``bound`` says the slot is the start or the end of a range ("date_to": a named month is
    its last day). Never raises for odd text: a value that cannot be read is None.
    """
    text = text.strip()
    if not text or len(text) > MAX_TEXT:
        return None
    kind = ValueType(value_type)
    try:
        if kind is ValueType.DATE:
            return resolve_date(text, ref, bound)
        if kind is ValueType.TIME:
            return resolve_time(text, ref)
        if kind is ValueType.DATETIME:
            return resolve_datetime(text, ref, bound)
        if kind is ValueType.INTERVAL:
            return resolve_interval(text, ref)
        if kind is ValueType.DURATION:
            return resolve_duration(text, ref)
        if kind is ValueType.NUMBER:
            return resolve_number(text, ref)
        if kind is ValueType.COUNT:
            return resolve_count(text)
        if kind is ValueType.MONEY:
            return resolve_money(text, ref)
        if kind is ValueType.CATEGORY:
            if synonyms is None or not len(synonyms):
                return CategoryValue(text)
            canonical = synonyms.lookup(text)
            return CategoryValue(canonical) if canonical is not None else None
    except (ValueError, OverflowError, ArithmeticError, KeyError, TypeError):
        return None  # a date past year 9999, an empty candidate list: unreadable, not an error
    return TextValue(text)
