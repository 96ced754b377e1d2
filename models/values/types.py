"""Slot value types and the typed, resolved values that the API returns as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class ValueType(StrEnum):
    """What a slot's words stand for; decides how they are resolved."""

    DATE = "date"
    TIME = "time"  # a clock time with no date ("18:35")
    DATETIME = "datetime"  # a point in time in the requested time zone
    INTERVAL = "interval"
    DURATION = "duration"
    NUMBER = "number"
    COUNT = "count"  # people, rooms, nights: whole numbers, "my wife and I" -> 2
    MONEY = "money"
    CATEGORY = "category"  # a closed set with synonyms
    TEXT = "text"  # kept as written


def _num(value: float) -> int | float:
    """Whole numbers as ints, so JSON shows ``2``, not ``2.0``."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class DateValue:
    value: date

    def to_json(self) -> dict[str, Any]:
        return {"type": "date", "value": self.value.isoformat()}

    def scalar(self) -> Any:
        return self.value.isoformat()


@dataclass(frozen=True)
class TimeValue:
    hour: int
    minute: int

    def to_json(self) -> dict[str, Any]:
        return {"type": "time", "value": f"{self.hour:02d}:{self.minute:02d}"}

    def scalar(self) -> Any:
        return f"{self.hour:02d}:{self.minute:02d}"


@dataclass(frozen=True)
class DateTimeValue:
    value: datetime  # aware, in the requested time zone
    grain: str  # second, minute, hour, day, week, month, quarter, year

    def to_json(self) -> dict[str, Any]:
        return {"type": "datetime", "value": self.value.isoformat(), "grain": self.grain}

    def scalar(self) -> Any:
        return self.value.isoformat()


@dataclass(frozen=True)
class IntervalValue:
    """``start``/``end`` are inclusive; either may be open (None): "after 5pm"."""

    start: DateTimeValue | None
    end: DateTimeValue | None

    def to_json(self) -> dict[str, Any]:
        moment = self.start or self.end
        grain = moment.grain if moment is not None else None
        return {
            "type": "interval",
            "from": self.start.value.isoformat() if self.start else None,
            "to": self.end.value.isoformat() if self.end else None,
            "grain": grain,
        }

    def scalar(self) -> Any:
        json = self.to_json()
        return {"from": json["from"], "to": json["to"]}


_DURATION_UNITS = {
    "year": ("Y", False, 31_536_000),
    "quarter": ("M", False, 7_776_000),  # written as 3 months
    "month": ("M", False, 2_592_000),
    "week": ("W", False, 604_800),
    "day": ("D", False, 86_400),
    "hour": ("H", True, 3_600),
    "minute": ("M", True, 60),
    "second": ("S", True, 1),
}
DURATION_UNITS = tuple(_DURATION_UNITS)


@dataclass(frozen=True)
class DurationValue:
    amount: float
    unit: str  # one of DURATION_UNITS

    @property
    def iso(self) -> str:
        """ISO 8601: ``P4D``, ``PT8H``, ``P3M`` for a quarter."""
        letter, in_time, _ = _DURATION_UNITS[self.unit]
        amount = self.amount * 3 if self.unit == "quarter" else self.amount
        return f"P{'T' if in_time else ''}{_num(amount)}{letter}"

    @property
    def seconds(self) -> int | float:
        """Nominal length (a month is 30 days, a year 365)."""
        return _num(self.amount * _DURATION_UNITS[self.unit][2])

    def to_json(self) -> dict[str, Any]:
        return {"type": "duration", "value": self.iso}

    def scalar(self) -> Any:
        return self.iso


@dataclass(frozen=True)
class NumberValue:
    value: float
    count: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"type": "count" if self.count else "number", "value": _num(self.value)}

    def scalar(self) -> Any:
        return _num(self.value)


@dataclass(frozen=True)
class MoneyValue:
    value: float
    unit: str | None  # ISO 4217; None when the text names no currency

    def to_json(self) -> dict[str, Any]:
        return {"type": "money", "value": _num(self.value), "unit": self.unit}

    def scalar(self) -> Any:
        return _num(self.value)


@dataclass(frozen=True)
class CategoryValue:
    value: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "category", "value": self.value}

    def scalar(self) -> Any:
        return self.value


@dataclass(frozen=True)
class TextValue:
    value: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "text", "value": self.value}

    def scalar(self) -> Any:
        return self.value


Normalized = (
    DateValue
    | TimeValue
    | DateTimeValue
    | IntervalValue
    | DurationValue
    | NumberValue
    | MoneyValue
    | CategoryValue
    | TextValue
)
