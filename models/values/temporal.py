"""Dates, clock times, points in time, intervals and durations.

Duckling does most of the work; the rules here are what it cannot know without the slot:
a bare "7th" or "7" in a date slot is the next 7th of a month, a bare "8" in a time slot is a
clock time, an end-of-range slot ("date_to") takes the last day of a named month.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from models.values import engine
from models.values.clock import Clock, parse_clock
from models.values.reference import Reference, localize, shift
from models.values.types import DateTimeValue, DateValue, DurationValue, IntervalValue, TimeValue
from models.values.words import ordinal_value, tokens, words_to_int

Bound = Literal["start", "end"] | None
_COARSE = ("week", "month", "quarter", "year")
_FROM = r"(?:from|between|starting(?: from| at| on)?|beginning(?: on| at)?)"
_UNTIL = r"(?:until|till|til|to|through|thru|and|-|–)"
_RANGE = re.compile(rf"^\s*(?:{_FROM}\s+)?(.+?)\s+{_UNTIL}\s+(.+?)\s*$", re.IGNORECASE)
_RANGE_DASH = re.compile(r"^\s*(?:from\s+)?(\S+?)\s*[-–]\s*(\S+)\s*$", re.IGNORECASE)
_OPEN_FROM = re.compile(
    r"^\s*(?:after|since|from|starting(?: from| at| on)?|later than|beginning)\s+(.+)$", re.I
)
_OPEN_TO = re.compile(
    r"^\s*(?:before|until|till|til|by|up to|no later than|earlier than)\s+(.+)$", re.I
)
_DAY_FILLER = {"on", "the", "of", "this", "month", "day"}


def _duckling(text: str, dims: tuple[str, ...], ref: Reference) -> list[dict[str, Any]]:
    return engine.parse(text, dims, ref.time, ref.tz_name)


def best(entities: list[dict[str, Any]], dims: tuple[str, ...]) -> dict[str, Any] | None:
    """The entity of one of ``dims`` that covers the most text (non-latent first)."""
    found = [e for e in entities if e.get("dim") in dims]
    if not found:
        return None
    return max(found, key=lambda e: (not e.get("latent", False), e["end"] - e["start"]))


def _moment(node: dict[str, Any] | None, ref: Reference) -> DateTimeValue | None:
    if not node or "value" not in node:
        return None
    return DateTimeValue(datetime.fromisoformat(node["value"]).astimezone(ref.zone), node["grain"])


def _span(
    entity: dict[str, Any], ref: Reference
) -> tuple[DateTimeValue | None, DateTimeValue | None]:
    """(start, exclusive end) of a Duckling time entity; end is None for a single value.

    Duckling ends an interval after the last unit it names: "last night" ends at midnight,
    "3pm until 5pm" at 18:00 (the 5pm hour included).
    """
    value = entity["value"]
    if value.get("type") == "interval":
        return _moment(value.get("from"), ref), _moment(value.get("to"), ref)
    return _moment(value, ref), None


def _last_unit(end: DateTimeValue) -> DateTimeValue:
    """The start of the last unit before an exclusive end (18:00 at hour grain -> 17:00)."""
    return DateTimeValue(shift(end.value, end.grain, -1), end.grain)


def _time_entity(text: str, ref: Reference) -> dict[str, Any] | None:
    return best(_duckling(text, ("time",), ref), ("time",))


def _last_day(moment: DateTimeValue) -> date:
    if moment.grain in _COARSE:
        return shift(moment.value, moment.grain, 1).date() - timedelta(days=1)
    return moment.value.date()


def day_of_month(text: str, ref: Reference) -> date | None:
    """ "the 7th", "7th", "on the twenty third": the next such day, today included;
    "last 13th" is the latest one before today, "next 7th" the first one after today."""
    words = [w for w in tokens(text) if w not in _DAY_FILLER]
    step, strict = 1, False
    if words and words[0] in ("last", "past", "previous", "next", "coming"):
        step = -1 if words[0] in ("last", "past", "previous") else 1
        strict, words = True, words[1:]
    day = ordinal_value(words)
    if day is None and len(words) == 1 and words[0].isdigit() and len(words[0]) <= 2:
        day = int(words[0])
    if day is None or not 1 <= day <= 31:
        return None
    today = ref.time.date()
    index = ref.time.year * 12 + ref.time.month - 1
    for _ in range(13):  # skip months without a 31st
        try:
            candidate: date | None = date(index // 12, index % 12 + 1, day)
        except ValueError:
            candidate = None
        if candidate is not None:
            later = candidate > today or (candidate == today and not strict)
            if later if step > 0 else candidate < today:
                return candidate
        index += step
    return None


_EDGE = re.compile(r"^\s*(?:by |at |until |till )?(?:the )?(end|start|beginning) of\s+(.+)$", re.I)


def resolve_date(text: str, ref: Reference, bound: Bound = None) -> DateValue | None:
    """A calendar day; an end-of-range slot takes the last day of a week, month or year."""
    day = day_of_month(text, ref)
    if day is not None:
        return DateValue(day)
    if (edge := _EDGE.match(text)) is not None:  # "the end of this year": its last day
        edge_bound: Bound = "end" if edge.group(1).lower() == "end" else "start"
        return resolve_date(edge.group(2), ref, edge_bound)
    words = tokens(text)
    if (
        len(words) in (1, 2)
        and re.fullmatch(r"1[6-9]\d\d|2\d\d\d", words[-1])
        and (len(words) == 1 or words[0] in ("in", "during", "year"))
    ):
        year = int(words[-1])
        return DateValue(date(year, 12, 31) if bound == "end" else date(year, 1, 1))
    entity = _time_entity(text, ref)
    if entity is None:
        return None
    start, end = _span(entity, ref)
    if bound == "end":
        if end is not None:
            return DateValue(_last_unit(end).value.date())
        return DateValue(_last_day(start)) if start is not None else None
    moment = start or end
    return DateValue(moment.value.date()) if moment is not None else None


def resolve_time(text: str, ref: Reference) -> TimeValue | None:
    """A clock time; without a.m./p.m. the hour is read on a 24-hour clock ("7" -> 07:00)."""
    clock = parse_clock(text)
    if clock is not None:
        return TimeValue(clock.hour, clock.minute)
    entity = _time_entity(text, ref)
    if entity is None or entity["value"].get("type") != "value":
        return None
    moment = _moment(entity["value"], ref)
    if moment is None or moment.grain not in ("hour", "minute", "second"):
        return None
    return TimeValue(moment.value.hour, moment.value.minute)


def next_occurrence(clock: Clock, ref: Reference) -> DateTimeValue:
    """The first time after the reference that the clock shows ``clock``; a bare hour up to
    12 may be either half of the day ("8" at 09:00 is 20:00 today, at 21:00 08:00 tomorrow)."""
    hours = [clock.hour]
    if not clock.explicit and 1 <= clock.hour <= 12:
        hours.append((clock.hour + 12) % 24)
    candidates = [
        localize(ref.time.date() + timedelta(days=offset), time(hour, clock.minute), ref.zone)
        for offset in (0, 1)
        for hour in hours
    ]
    moment = min(c for c in candidates if c > ref.time)
    return DateTimeValue(moment, "minute" if clock.minute else "hour")


def on_day(
    moment: DateTimeValue | IntervalValue, day: DateValue, ref: Reference
) -> DateTimeValue | IntervalValue | None:
    """``moment`` moved to ``day`` when it names only a time of day: a point that is the next
    time after the reference that the clock shows its hour and minute ("7pm", "noon"), or a
    part of the day no longer than a day that starts today or tomorrow ("morning", "this
    evening"). "7pm" beside a date slot's "tomorrow" is tomorrow at 19:00. None when it names
    its own day ("friday at 9", "saturday morning") or is coarser than an hour."""
    if isinstance(moment, IntervalValue):
        start, end = moment.start, moment.end
        if start is None or end is None or end.value - start.value > timedelta(days=1):
            return None
        if (start.value.date() - ref.time.astimezone(ref.zone).date()).days not in (0, 1):
            return None
        days = (day.value - start.value.date()).days
        return IntervalValue(
            DateTimeValue(shift(start.value, "day", days), start.grain),
            DateTimeValue(shift(end.value, "day", days), end.grain),
        )
    if moment.grain not in ("hour", "minute", "second"):
        return None
    wall = moment.value.astimezone(ref.zone)
    if next_occurrence(Clock(wall.hour, wall.minute, explicit=True), ref).value != moment.value:
        return None
    return DateTimeValue(localize(day.value, wall.time(), ref.zone), moment.grain)


def resolve_datetime(
    text: str, ref: Reference, bound: Bound = None
) -> DateTimeValue | IntervalValue | None:
    """A point in time in the reference's zone, with its grain. Words that name a stretch of
    time with both ends ("morning", "this evening", "from 3 to 5pm") give that interval, not a
    point made up from its start: Duckling's morning runs from 00:00 to 12:00, and a booking
    made for its start would be at midnight. An end-of-range slot takes the stretch's last
    unit, as before."""
    clock = parse_clock(text)
    if clock is not None:
        return next_occurrence(clock, ref)
    entity = _time_entity(text, ref)
    if entity is None:
        return None
    start, end = _span(entity, ref)
    if bound == "end" and end is not None:
        return _last_unit(end)
    if bound is None and start is not None and end is not None:
        return IntervalValue(start, end)
    return start or (_last_unit(end) if end is not None else None)


def _point(text: str, ref: Reference) -> DateTimeValue | None:
    """One end of a range ("from X until Y"): a day of the month, else where X starts."""
    day = day_of_month(text, ref)
    if day is not None:
        return DateTimeValue(localize(day, time(), ref.zone), "day")
    moment = resolve_datetime(text, ref)
    return moment.start if isinstance(moment, IntervalValue) else moment


def resolve_interval(text: str, ref: Reference) -> IntervalValue | DurationValue | None:
    """From/to, either side open ("after 5pm"); ``to`` is the exclusive end, and a named end
    ("until 5pm", "9-11") is that moment. A day, month or year named alone ("last month") is
    the interval it covers; a length of time ("3 nights") is a duration."""
    entity = _time_entity(text, ref)
    covered = entity is not None and entity["end"] - entity["start"] >= 0.8 * len(text.strip())
    named_end = _RANGE.match(text) or _RANGE_DASH.match(text)
    if entity is not None and covered and entity["value"].get("type") == "interval":
        start, end = _span(entity, ref)
        if end is not None and named_end and not re.search(r"\b(through|thru)\b", text, re.I):
            end = _last_unit(end)
        return IntervalValue(start, end)
    if named_end is not None:
        left, right = _point(named_end.group(1), ref), _point(named_end.group(2), ref)
        if left is not None and right is not None:
            if right.value < left.value:  # "8 until 2": the end is the next such time
                right = DateTimeValue(shift(right.value, "day", 1), right.grain)
            return IntervalValue(left, right)
    for pattern, is_start in ((_OPEN_FROM, True), (_OPEN_TO, False)):
        if (m := pattern.match(text)) is not None and (side := _point(m.group(1), ref)):
            return IntervalValue(side, None) if is_start else IntervalValue(None, side)
    if entity is not None and covered:
        start, end = _span(entity, ref)
        if start is not None and end is None:
            after = DateTimeValue(shift(start.value, start.grain, 1), start.grain)
            return IntervalValue(start, after)
    return resolve_duration(text, ref)


_NIGHTS = re.compile(r"^\s*(?:for\s+)?(\S+(?:\s\S+)?)\s+nights?\s*$", re.IGNORECASE)


def resolve_duration(text: str, ref: Reference) -> DurationValue | None:
    """A length of time: "4 nights" -> P4D, "half an hour" -> PT30M."""
    if (m := _NIGHTS.match(text)) is not None:
        words = tokens(m.group(1))
        nights = int(words[0]) if len(words) == 1 and words[0].isdigit() else words_to_int(words)
        if words in (["a"], ["one"]):
            nights = 1
        if nights is not None:
            return DurationValue(nights, "day")
    entity = best(_duckling(text, ("duration",), ref), ("duration",))
    if entity is None:
        return None
    value = entity["value"]
    amount, unit = value.get("value"), value.get("unit")
    if not isinstance(amount, int | float) or unit not in (
        "year", "quarter", "month", "week", "day", "hour", "minute", "second",
    ):  # fmt: skip
        return None
    if not float(amount).is_integer() and unit in ("hour", "day"):
        smaller = "minute" if unit == "hour" else "hour"  # 1.5 hours -> 90 minutes
        return DurationValue(amount * (60 if unit == "hour" else 24), smaller)
    return DurationValue(amount, unit)
