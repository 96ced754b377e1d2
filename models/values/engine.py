"""Facebook's Duckling in-process (the ``pyduckling-native-phihos`` wheel: no JVM, no server).

The time-zone database is read once per process; a parse context (reference time, zone,
locale) costs microseconds, so one is built per call. Calls are serialised by a lock: the
Haskell runtime is entered from whichever thread serves the request, and one parse takes well
under a millisecond once warm.
"""

from __future__ import annotations

import threading
import unicodedata
import zoneinfo
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

DIMENSIONS = ("time", "number", "ordinal", "amount-of-money", "duration")
_lock = threading.Lock()


def _zoneinfo_dir() -> str:
    """The system's IANA database, else the one shipped in the ``tzdata`` package."""
    for base in zoneinfo.TZPATH:
        if (Path(base) / "UTC").is_file():
            return str(base)
    import importlib.resources

    return str(importlib.resources.files("tzdata") / "zoneinfo")


@cache
def _duckling() -> tuple[Any, Any, Any]:
    """(module, time zones, English locale), loaded on first use and kept."""
    import duckling

    time_zones = duckling.load_time_zones(_zoneinfo_dir())
    lang = duckling.parse_lang("EN")
    locale = duckling.parse_locale("EN_US", duckling.default_locale_lang(lang))
    return duckling, time_zones, locale


@cache
def _dimensions(dims: tuple[str, ...]) -> Any:
    duckling = _duckling()[0]
    return duckling.parse_dimensions(list(dims))


def _fix_mojibake(text: str) -> str:
    """The wheel hands non-ASCII strings back as UTF-8 bytes read as Latin-1 ("Â£")."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def parse(
    text: str, dims: tuple[str, ...], reference: datetime, tz_name: str
) -> list[dict[str, Any]]:
    """Duckling's entities for ``text``, resolved against ``reference`` in zone ``tz_name``.

    Latent readings are included ("May" alone, "8" as a time): the caller knows the slot's
    type and prefers non-latent ones. Each entity is Duckling's JSON (``dim``, ``start``,
    ``end``, ``value``, ``latent``); a currency ``unit`` is repaired to proper Unicode.
    """
    duckling, time_zones, locale = _duckling()
    # The wheel panics (a BaseException) on a NUL byte and cannot encode lone surrogates.
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    with _lock:
        ref = duckling.parse_ref_time(time_zones, tz_name, int(reference.timestamp()))
        context = duckling.Context(ref, locale)
        found: list[dict[str, Any]] = duckling.parse(text, context, _dimensions(dims), True)
    for entity in found:
        unit = entity.get("value", {}).get("unit")
        if isinstance(unit, str):
            entity["value"]["unit"] = _fix_mojibake(unit)
    return found


def warm_up() -> None:
    """Load the database and run one parse, so the first request does not pay for it."""
    from datetime import UTC

    parse("tomorrow at 7pm for $20", DIMENSIONS, datetime(2022, 3, 15, tzinfo=UTC), "UTC")
