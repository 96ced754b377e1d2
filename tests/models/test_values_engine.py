"""Duckling's kept results (models/values/engine.py): a result is reused only within the
reference minute it was parsed in, and only when no part of it moves within that minute."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from models.values import engine

# Slot texts of booking and flight data (dates, times, periods, counts, money) and relative
# expressions, some of which Duckling reads to the second ("now", "in 5 minutes").
EXPRESSIONS = [
    "monday", "next monday", "this friday", "tomorrow", "today", "tonight", "yesterday",
    "tomorrow morning", "tomorrow at 7pm", "7pm tomorrow", "7pm", "8 am", "838 am", "1110",
    "noon", "midnight", "morning", "afternoon", "evening", "early morning", "late night",
    "around 6 o'clock", "before 10 am", "after 5 pm", "between 2 and 4 pm", "from 3pm to 5pm",
    "august second", "the 7th", "december 25", "next week", "this weekend", "next month",
    "in 2 days", "in 2 hours", "an hour from now", "within the hour", "this hour",
    "this minute", "the next 10 minutes", "last 2 hours", "later today", "now", "right now",
    "asap", "in 5 minutes", "in a minute", "in 30 seconds", "in 90 minutes",
    "in an hour and a half", "5 minutes ago", "for 3 hours", "two", "twenty five", "third",
    "$20", "300 euros", "a quarter past 8", "half past seven tonight",
]  # fmt: skip
DIMS = engine.DIMENSIONS


def _grains(entities: list[dict[str, object]]) -> set[str]:
    return engine._grains(entities)


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    engine.clear_cache()
    yield
    engine.clear_cache()


@pytest.mark.parametrize(
    "minute",
    [
        datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, tzinfo=UTC),  # the last minute of a day and a year
        datetime(2027, 2, 28, 13, 29, tzinfo=UTC),
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_only_second_grained_results_move_within_a_minute(minute: datetime, zone: str) -> None:
    """What makes the cache exact: a result without a ``second`` grain is the same at every
    second of its reference minute. The list holds expressions that do move (else this test
    could not fail)."""
    moved = []
    for text in EXPRESSIONS:
        first = engine.parse(text, DIMS, minute, zone)
        engine.clear_cache()
        last = engine.parse(text, DIMS, minute + timedelta(seconds=59), zone)
        engine.clear_cache()
        if first != last:
            moved.append(text)
            assert "second" in _grains(first), text
    assert {"now", "in 5 minutes", "in 30 seconds"} <= set(moved)


def test_a_kept_result_is_the_parse_and_a_new_object() -> None:
    at = datetime(2026, 12, 2, 9, 0, 10, tzinfo=UTC)
    fresh = engine.parse("tomorrow at 7pm", DIMS, at, "UTC")
    assert len(engine._cache) == 1
    fresh[0]["value"]["value"] = "changed by the caller"
    again = engine.parse("tomorrow at 7pm", DIMS, at + timedelta(seconds=40), "UTC")
    assert again[0]["value"]["value"] == "2026-12-03T19:00:00.000+00:00"
    engine.clear_cache()
    assert engine.parse("tomorrow at 7pm", DIMS, at, "UTC") == again


def test_keys_hold_the_minute_the_zone_and_the_dimensions() -> None:
    at = datetime(2026, 12, 2, 23, 59, 30, tzinfo=UTC)
    today = engine.parse("today", ("time",), at, "UTC")
    next_minute = engine.parse("today", ("time",), at + timedelta(seconds=30), "UTC")
    assert today[0]["value"]["value"].startswith("2026-12-02")
    assert next_minute[0]["value"]["value"].startswith("2026-12-03")
    in_tokyo = engine.parse("today", ("time",), at, "Asia/Tokyo")
    assert in_tokyo[0]["value"]["value"].startswith("2026-12-03")
    assert engine.parse("today", ("number",), at, "UTC") == []
    assert len(engine._cache) == 4


def test_second_grained_results_are_not_kept() -> None:
    at = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)
    first = engine.parse("in 5 minutes", DIMS, at, "UTC")
    assert "second" in _grains(first)
    assert len(engine._cache) == 0
    later = engine.parse("in 5 minutes", DIMS, at + timedelta(seconds=30), "UTC")
    assert later != first


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "CACHE_SIZE", 3)
    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    for text in ["monday", "tuesday", "wednesday", "thursday"]:
        engine.parse(text, ("time",), at, "UTC")
    assert [key[0] for key in engine._cache] == ["tuesday", "wednesday", "thursday"]
