"""Whether a resolved value equals a gold one: NLU++ value objects (``{"day","month","year"}``,
``{"hour","minute"}``, ``{"amount","currency"}``, ``{"type": "absolute"|"relative", ...}``) and
plain JSON (``"2026-12-02"``, ``"18:35"``, ``2``, ``"New York"``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from models.values.types import (
    CategoryValue,
    DateTimeValue,
    DateValue,
    DurationValue,
    IntervalValue,
    MoneyValue,
    Normalized,
    NumberValue,
    TextValue,
    TimeValue,
)


def gold_date(value: Any) -> date | None:
    if isinstance(value, dict) and {"day", "month", "year"} <= set(value):
        try:
            return date(int(value["year"]), int(value["month"]), int(value["day"]))
        except (TypeError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _gold_clock(value: Any) -> tuple[int, int] | None:
    if isinstance(value, dict) and {"hour", "minute"} <= set(value):
        return int(value["hour"]), int(value["minute"])
    if isinstance(value, str) and len(value) == 5 and value[2] == ":":
        try:
            return int(value[:2]), int(value[3:])
        except ValueError:
            return None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def is_value(gold: Any) -> bool:
    """False for what NLU++ writes where there is no value ("ambiguous") and for None."""
    if gold is None or gold == "ambiguous":
        return False
    return not (isinstance(gold, dict) and gold.get("type") == "ambiguous")


def matches(gold: Any, got: Normalized | None) -> bool:
    """``got`` equals the gold value (dates by day, times by hour and minute, amounts to the
    cent with the currency where the gold names one)."""
    if got is None or not is_value(gold):
        return False
    if isinstance(got, DateValue):
        return gold_date(gold) == got.value
    if isinstance(got, TimeValue):
        return _gold_clock(gold) == (got.hour, got.minute)
    if isinstance(got, DateTimeValue):
        if (clock := _gold_clock(gold)) is not None:
            return clock == (got.value.hour, got.value.minute)
        if (day := gold_date(gold)) is not None:
            return day == got.value.date()
        try:
            return isinstance(gold, str) and datetime.fromisoformat(gold) == got.value
        except ValueError:
            return False
    if isinstance(got, MoneyValue):
        amount = gold.get("amount") if isinstance(gold, dict) else gold
        number = _number(amount)
        if number is None or abs(number - got.value) > 0.005:
            return False
        if not isinstance(gold, dict):
            return True  # a plain number names no currency to check
        currency = gold.get("currency")
        return got.unit == (None if currency in (None, "ambiguous") else currency)
    if isinstance(got, NumberValue):
        number = _number(gold)
        return number is not None and abs(number - got.value) < 1e-9
    if isinstance(got, CategoryValue | TextValue):
        return isinstance(gold, str) and gold == got.value
    if isinstance(got, IntervalValue):
        return _interval_matches(gold, got)
    if isinstance(got, DurationValue):
        if not isinstance(gold, dict) or gold.get("type") != "relative":
            return isinstance(gold, str) and gold == got.iso
        units = {k: v for k, v in gold.items() if k != "type"}
        if len(units) != 1:
            return False
        unit, amount = next(iter(units.items()))
        number = _number(amount)
        return (
            got.unit == unit.rstrip("s") and number is not None and abs(got.amount - number) < 1e-9
        )
    return False


def _interval_matches(gold: Any, got: IntervalValue) -> bool:
    if not isinstance(gold, dict) or got.start is None or got.end is None:
        return False
    start, end = gold.get("from"), gold.get("to")
    if gold_date(start) is not None:
        return (got.start.value.date(), got.end.value.date()) == (gold_date(start), gold_date(end))
    if _gold_clock(start) is not None:
        return [(t.value.hour, t.value.minute) for t in (got.start, got.end)] == [
            _gold_clock(start),
            _gold_clock(end),
        ]
    return False
