"""Slot values resolved against the user's clock: the README's tricky cases, one test each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from models.values import Synonyms, make_reference, resolve
from models.values.reference import Reference

NEW_YORK_EVENING = "2026-12-01T18:00:00-05:00"  # a Tuesday


def ref(when: str = NEW_YORK_EVENING, zone: str = "America/New_York") -> Reference:
    return make_reference(datetime.fromisoformat(when), zone)


def value(text: str, kind: str, reference: Reference | None = None, **kw: Any) -> Any:
    got = resolve(text, kind, reference or ref(), **kw)
    return None if got is None else got.to_json()


def test_the_demo_booking() -> None:
    assert value("7pm tomorrow", "datetime") == {
        "type": "datetime",
        "value": "2026-12-02T19:00:00-05:00",
        "grain": "hour",
    }
    assert value("two", "count") == {"type": "count", "value": 2}


@pytest.mark.parametrize(
    ("when", "text", "expected"),
    [
        ("2026-12-31T22:00:00+00:00", "tomorrow", "2027-01-01"),  # year end
        ("2026-01-31T10:00:00+00:00", "tomorrow", "2026-02-01"),  # month end
        ("2028-02-28T10:00:00+00:00", "tomorrow", "2028-02-29"),  # leap day
        ("2026-12-30T10:00:00+00:00", "in 3 days", "2027-01-02"),
        ("2027-01-01T10:00:00+00:00", "yesterday", "2026-12-31"),
    ],
)
def test_relative_days_cross_month_and_year_ends(when: str, text: str, expected: str) -> None:
    assert value(text, "date", ref(when, "UTC")) == {"type": "date", "value": expected}


def test_the_reference_time_is_read_in_the_requested_zone() -> None:
    # 03:00 UTC on 1 Dec is still 30 Nov in New York: "today" is the user's today.
    late = make_reference(datetime.fromisoformat("2026-12-01T03:00:00+00:00"), "America/New_York")
    assert value("today", "date", late)["value"] == "2026-11-30"


def test_this_friday_is_the_coming_one_and_next_friday_the_one_of_next_week() -> None:
    assert value("this friday", "date")["value"] == "2026-12-04"
    assert value("next friday", "date")["value"] == "2026-12-11"


def test_noon_and_quarter_to_seven() -> None:
    assert value("noon", "time") == {"type": "time", "value": "12:00"}
    assert value("quarter to 7", "time") == {"type": "time", "value": "06:45"}
    # With a date the bare hour is the next one on the clock: 18:45 is past at 18:00
    assert value("quarter to 7", "datetime")["value"] == "2026-12-01T18:45:00-05:00"
    assert value("noon", "datetime")["value"] == "2026-12-02T12:00:00-05:00"


def test_a_bare_hour_in_a_time_slot_and_in_a_datetime_slot() -> None:
    assert value("8", "time")["value"] == "08:00"  # a clock time as written
    morning = ref("2026-12-01T09:00:00-05:00")
    assert value("8", "datetime", morning)["value"] == "2026-12-01T20:00:00-05:00"
    assert value("8", "datetime", ref("2026-12-01T21:00:00-05:00"))["value"] == (
        "2026-12-02T08:00:00-05:00"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8 10 p.m.", "20:10"), ("half past 3 at night", "03:30"), ("9 at night", "21:00"),
     ("25 to 4", "03:35"), ("seven thirty pm", "19:30"), ("1:55 in the afternoon", "13:55"),
     ("12:30 a.m.", "00:30"), ("midnight", "00:00")],
)  # fmt: skip
def test_clock_times(text: str, expected: str) -> None:
    assert value(text, "time")["value"] == expected


def test_the_7th_is_the_next_7th() -> None:
    assert value("the 7th", "date")["value"] == "2026-12-07"
    assert value("the 1st", "date")["value"] == "2026-12-01"  # today counts
    assert value("the 1st", "date", ref("2026-12-02T10:00:00-05:00"))["value"] == "2027-01-01"
    assert value("31st", "date", ref("2026-02-10T10:00:00+00:00", "UTC"))["value"] == "2026-03-31"
    assert value("last 13th", "date", ref("2026-12-15T10:00:00+00:00", "UTC"))["value"] == (
        "2026-12-13"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("two adults and a child", 3), ("my wife and I", 2), ("a room", 1), ("no kids", 0),
     ("party of 4", 4), ("me and 3 friends", 4), ("two adults and a child aged 5", 3)],
)  # fmt: skip
def test_counts_from_words(text: str, expected: int) -> None:
    assert value(text, "count") == {"type": "count", "value": expected}


@pytest.mark.parametrize("text", ["four or five", "my kids", "some friends"])
def test_a_count_that_is_not_exact_is_null(text: str) -> None:
    assert value(text, "count") is None


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [("$1.5k", 1500, "USD"), ("300.13€", 300.13, "EUR"), ("a thousand pounds", 1000, "GBP"),
     ("£27", 27, "GBP"), ("5885", 5885, None), ("1,200.50 dollars", 1200.5, "USD")],
)  # fmt: skip
def test_money(text: str, amount: float, unit: str | None) -> None:
    assert value(text, "money") == {"type": "money", "value": amount, "unit": unit}


def test_a_wall_clock_time_across_the_spring_forward_change() -> None:
    saturday = ref("2026-03-07T12:00:00-05:00")  # New York moves to -04:00 on 8 March
    assert value("tomorrow at 9am", "datetime", saturday)["value"] == "2026-03-08T09:00:00-04:00"
    # 02:30 does not exist that night: the clock reads 03:30
    assert value("tomorrow at 2:30am", "datetime", saturday)["value"] == (
        "2026-03-08T03:30:00-04:00"
    )


def test_a_wall_clock_time_across_the_fall_back_change() -> None:
    paris = ref("2026-10-24T12:00:00+02:00", "Europe/Paris")
    assert value("tomorrow at 9am", "datetime", paris)["value"] == "2026-10-25T09:00:00+01:00"


def test_intervals_open_and_closed() -> None:
    assert value("from 3pm until 5pm", "interval") == {
        "type": "interval",
        "from": "2026-12-02T15:00:00-05:00",
        "to": "2026-12-02T17:00:00-05:00",
        "grain": "hour",
    }
    after = value("after 5pm", "interval")
    assert after["from"] == "2026-12-02T17:00:00-05:00" and after["to"] is None
    between = value("between 8 and 10", "interval")
    assert (between["from"], between["to"]) == (
        "2026-12-01T20:00:00-05:00",
        "2026-12-01T22:00:00-05:00",
    )


def test_durations() -> None:
    assert value("4 nights", "duration") == {"type": "duration", "value": "P4D"}
    assert value("half an hour", "duration") == {"type": "duration", "value": "PT30M"}


def test_numbers_and_ordinals() -> None:
    assert value("nine", "number") == {"type": "number", "value": 9}
    assert value("second", "number") == {"type": "number", "value": 2}
    assert value("1,250", "number") == {"type": "number", "value": 1250}


def test_synonyms_are_case_and_accent_insensitive() -> None:
    table = Synonyms({"New York": ["NYC", "big apple"], "São Paulo": []})
    assert value("nyc", "category", synonyms=table) == {"type": "category", "value": "New York"}
    assert value("  SAO   PAULO ", "category", synonyms=table)["value"] == "São Paulo"
    assert value("Boston", "category", synonyms=table) is None


def test_an_end_of_range_slot_takes_the_last_day() -> None:
    march = ref("2022-03-15T09:00:00+00:00", "UTC")
    assert value("May", "date", march)["value"] == "2022-05-01"
    assert value("May", "date", march, bound="end")["value"] == "2022-05-31"
    assert value("the end of this year", "date", march)["value"] == "2022-12-31"


@pytest.mark.parametrize("kind", ["date", "time", "datetime", "interval", "duration", "number",
                                  "count", "money"])  # fmt: skip
@pytest.mark.parametrize("text", ["", "asdf qwer", "99999999999999999999", "🙂", "x" * 500,
                                  "year 99999", "\x00", "7pm\ud800", "\x07 tomorrow"])  # fmt: skip
def test_odd_text_is_null_never_an_error(kind: str, text: str) -> None:
    got = resolve(text, kind, ref())
    assert got is None or got.to_json()["type"] in (kind, "duration", "number")


@pytest.mark.parametrize(
    ("when", "zone"),
    [(None, "Mars/Olympus"), (None, ""), (None, "../../etc/passwd"),
     (datetime(2026, 12, 1, 18, 0), "UTC")],
)  # fmt: skip
def test_a_bad_zone_or_a_reference_time_without_offset_is_refused(
    when: datetime | None, zone: str
) -> None:
    with pytest.raises(ValueError, match=r"time zone|UTC offset"):
        make_reference(when, zone)
