"""A datetime slot that names only a time of day takes its day from the date slot it pairs
with (``SlotValueResolver.resolve_all``): "7pm" beside "tomorrow" is tomorrow at 19:00."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from models.values import Reference, make_reference
from models.values.schema import SlotSpec
from models.values.slots import SlotValueResolver
from models.values.types import ValueType

# Tuesday 2026-12-01 18:00 in New York, as in the README's table of tricky cases
EVENING = make_reference(datetime.fromisoformat("2026-12-01T18:00:00-05:00"), "America/New_York")
TYPES = {
    "time": ValueType.DATETIME,
    "date": ValueType.DATE,
    "depart_time": ValueType.DATETIME,
    "depart_date": ValueType.DATE,
    "return_time": ValueType.DATETIME,
    "return_date": ValueType.DATE,
    "clock": ValueType.TIME,
    "party_size": ValueType.COUNT,
}
RESOLVER = SlotValueResolver({name: SlotSpec(kind) for name, kind in TYPES.items()})


def served(*slots: tuple[str, str], reference: Reference = EVENING) -> list[Any]:
    """The JSON of each slot's value, as the API and ``slotfill predict`` give them."""
    values = RESOLVER.resolve_all(list(slots), reference)
    return [v.to_json() if v is not None else None for v in values]


def test_a_time_of_day_takes_the_day_of_the_date_beside_it() -> None:
    time, date, size = served(("time", "7pm"), ("date", "tomorrow"), ("party_size", "two"))
    assert time == {"type": "datetime", "value": "2026-12-02T19:00:00-05:00", "grain": "hour"}
    assert date == {"type": "date", "value": "2026-12-02"}  # the date keeps its own value
    assert size == {"type": "count", "value": 2}
    # the order of the slots does not matter, nor does the time's wording
    date, time = served(("date", "on the 3rd"), ("time", "quarter to 7"))
    assert time["value"] == "2026-12-03T18:45:00-05:00"
    (time,) = served(("time", "7pm"))  # without a date: the next 7pm, as before
    assert time["value"] == "2026-12-01T19:00:00-05:00"


@pytest.mark.parametrize(
    ("time_text", "expected"),
    [
        ("friday at 9", "2026-12-04T09:00:00-05:00"),  # names its own day: kept
        ("tomorrow at 9am", "2026-12-02T09:00:00-05:00"),  # the same day as the date: kept
    ],
)
def test_a_datetime_that_names_its_day_keeps_it(time_text: str, expected: str) -> None:
    time, _ = served(("time", time_text), ("date", "tomorrow"))
    assert time["value"] == expected


def test_dates_pair_with_times_by_name_or_not_at_all() -> None:
    depart, ret, ret_date, dep_date = served(
        ("depart_time", "8am"),
        ("return_time", "6pm"),
        ("return_date", "the 10th"),
        ("depart_date", "friday"),
    )
    assert depart["value"] == "2026-12-04T08:00:00-05:00"
    assert ret["value"] == "2026-12-10T18:00:00-05:00"
    assert (ret_date, dep_date) == (
        {"type": "date", "value": "2026-12-10"},
        {"type": "date", "value": "2026-12-04"},
    )
    # "time" beside two dates, neither named "date": which day it is, nobody can say
    time, _, _ = served(("time", "7pm"), ("depart_date", "friday"), ("return_date", "the 10th"))
    assert time["value"] == "2026-12-01T19:00:00-05:00"
    # two datetime slots and one date named for neither: left apart too
    dep, ret, _ = served(("depart_time", "8am"), ("return_time", "6pm"), ("date", "friday"))
    assert dep["value"] == "2026-12-02T08:00:00-05:00"
    assert ret["value"] == "2026-12-02T18:00:00-05:00"  # 18:00 has passed


def test_what_cannot_be_joined_is_left_as_it_is() -> None:
    # a date that cannot be read, and a clock-time slot (type time has no day to take)
    time, date = served(("time", "7pm"), ("date", "sometime"))
    assert date is None and time["value"] == "2026-12-01T19:00:00-05:00"
    clock, _ = served(("clock", "7pm"), ("date", "tomorrow"))
    assert clock == {"type": "time", "value": "19:00"}


def test_the_joined_time_follows_the_days_clock_change() -> None:
    # the US springs forward on 2026-03-08 at 02:00: 2:30am that night is 03:30 (EDT)
    saturday = make_reference(
        datetime.fromisoformat("2026-03-07T12:00:00-05:00"), "America/New_York"
    )
    time, _ = served(("time", "2:30am"), ("date", "tomorrow"), reference=saturday)
    assert time["value"] == "2026-03-08T03:30:00-04:00"
    time, _ = served(("time", "9am"), ("date", "the 9th"), reference=saturday)
    assert time["value"] == "2026-03-09T09:00:00-04:00"


def test_a_part_of_the_day_is_a_stretch_not_its_first_minute() -> None:
    # Duckling's morning runs from 00:00 to 12:00: as a point it was midnight
    (alone,) = served(("time", "morning"))
    assert alone == {
        "type": "interval",
        "from": "2026-12-02T00:00:00-05:00",
        "to": "2026-12-02T12:00:00-05:00",
        "grain": "hour",
    }
    # beside a date it moves to that day, as a clock time does
    time, _ = served(("depart_time", "morning"), ("depart_date", "next friday"))
    assert (time["from"], time["to"]) == (
        "2026-12-11T00:00:00-05:00",
        "2026-12-11T12:00:00-05:00",
    )
    evening, _ = served(("time", "this evening"), ("date", "on the 3rd"))
    assert (evening["from"], evening["to"]) == (
        "2026-12-03T18:00:00-05:00",
        "2026-12-04T00:00:00-05:00",
    )
    # a part of a day it names itself stays on that day
    own, _ = served(("time", "saturday morning"), ("date", "tomorrow"))
    assert own["from"] == "2026-12-05T00:00:00-05:00"
    # a moment is still a moment
    (noon,) = served(("time", "noon"))
    assert noon == {"type": "datetime", "value": "2026-12-02T12:00:00-05:00", "grain": "hour"}
