"""Facebook's Duckling in-process (the ``pyduckling-native-phihos`` wheel: no JVM, no server).

The time-zone database is read once per process; a parse context (reference time, zone,
locale) costs microseconds, so one is built per call. Calls are serialised by a lock: the
Haskell runtime is entered from whichever thread serves the request. A time parse costs
0.2-0.3 ms of CPU and holds the GIL throughout, the largest single cost of a served request
with dates in it, while slot texts repeat ("tomorrow", "7pm", "monday"); so results are kept
per reference minute (see :func:`parse`).
"""

from __future__ import annotations

import json
import threading
import unicodedata
import zoneinfo
from collections import OrderedDict
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

DIMENSIONS = ("time", "number", "ordinal", "amount-of-money", "duration")
_lock = threading.Lock()  # Duckling's calls
_cache_lock = threading.Lock()  # the kept results: a look-up never waits for a parse
# Kept results: (text, dims, zone, reference minute) -> Duckling's entities as JSON text, the
# most recently used last. About 0.5 KB each.
CACHE_SIZE = 4096
_cache: OrderedDict[tuple[str, tuple[str, ...], str, int], str] = OrderedDict()


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

    Duckling reads the reference to the second, but only an entity of grain ``second`` ("now",
    "in 5 minutes") moves within a minute (tests/models/test_values_engine.py checks this on
    booking and flight slot texts and relative expressions; an ad-hoc run found none of the
    263 date and time slot texts of ATIS that moves), so any other result is kept, for
    :data:`CACHE_SIZE` keys, per text, dimensions, zone and reference minute. Each call
    returns new objects.
    """
    seconds = int(reference.timestamp())
    key = (text, dims, tz_name, seconds // 60)
    with _cache_lock:
        kept = _cache.get(key)
        if kept is not None:
            _cache.move_to_end(key)
    if kept is not None:
        found: list[dict[str, Any]] = json.loads(kept)
        return found
    duckling, time_zones, locale = _duckling()
    # The wheel panics (a BaseException) on a NUL byte and cannot encode lone surrogates.
    clean = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text)
    with _lock:
        ref = duckling.parse_ref_time(time_zones, tz_name, seconds)
        context = duckling.Context(ref, locale)
        found = duckling.parse(clean, context, _dimensions(dims), True)
    for entity in found:
        unit = entity.get("value", {}).get("unit")
        if isinstance(unit, str):
            entity["value"]["unit"] = _fix_mojibake(unit)
    if "second" not in _grains(found):
        dumped = json.dumps(found)
        with _cache_lock:
            _cache[key] = dumped
            if len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return found


def _grains(node: Any) -> set[str]:
    """Every ``grain`` in Duckling's output (a value's, an interval end's, an alternative's)."""
    if isinstance(node, dict):
        found = {node["grain"]} if isinstance(node.get("grain"), str) else set()
        for value in node.values():
            found |= _grains(value)
        return found
    if isinstance(node, list):
        return set().union(*(_grains(v) for v in node))
    return set()


def clear_cache() -> None:
    """Forget the kept results (tests that time or count Duckling's own parses)."""
    with _cache_lock:
        _cache.clear()


def warm_up() -> None:
    """Load the database and run one parse, so the first request does not pay for it."""
    from datetime import UTC

    parse("tomorrow at 7pm for $20", DIMENSIONS, datetime(2022, 3, 15, tzinfo=UTC), "UTC")
