"""The user's clock: a reference time in an IANA time zone, validated once per request."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache


@dataclass(frozen=True)
class Reference:
    """ "Now" for the user: an aware time, expressed in ``zone``."""

    time: datetime
    zone: zoneinfo.ZoneInfo

    @property
    def tz_name(self) -> str:
        return self.zone.key


@lru_cache(maxsize=512)
def load_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; ValueError with a clear message if there is none."""
    if not name or len(name) > 64 or name != name.strip():
        raise ValueError(f"unknown time zone {name[:40]!r}: give an IANA name such as Europe/Paris")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name[:40]!r}: give an IANA name such as Europe/Paris"
        ) from None


def make_reference(when: datetime | None = None, timezone: str = "UTC") -> Reference:
    """A reference time in ``timezone``; ``when`` must carry a UTC offset (now if None)."""
    zone = load_zone(timezone)
    if when is None:
        when = datetime.now(UTC)
    elif when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("reference_time needs a UTC offset, e.g. 2026-12-01T18:00:00-05:00")
    return Reference(when.astimezone(zone), zone)


def localize(day: date, clock: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """``day`` at wall-clock ``clock`` in ``zone``; a time skipped by a DST change moves on
    by the size of the gap (02:30 on a spring-forward night is 03:30), as clocks do."""
    naive = datetime.combine(day, clock)
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def shift(moment: datetime, grain: str, steps: int) -> datetime:
    """``moment`` moved by whole grains on the wall clock (a day is a calendar day, also
    across a DST change); month-like grains keep the day of month where it exists."""
    zone = moment.tzinfo
    naive = moment.replace(tzinfo=None)
    if grain in ("month", "quarter", "year"):
        months = steps * {"month": 1, "quarter": 3, "year": 12}[grain]
        index = naive.year * 12 + naive.month - 1 + months
        year, month = divmod(index, 12)
        last = _days_in_month(year, month + 1)
        naive = naive.replace(year=year, month=month + 1, day=min(naive.day, last))
    else:
        seconds = {"week": 604_800, "day": 86_400, "hour": 3_600, "minute": 60, "second": 1}
        if grain in ("week", "day"):
            naive += timedelta(days=steps * seconds[grain] // 86_400)
        else:  # hours and below are elapsed time
            return (moment.astimezone(UTC) + timedelta(seconds=steps * seconds[grain])).astimezone(
                zone
            )
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days
