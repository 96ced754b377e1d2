"""Bounds on what a request-log row stores, so that no row is refused for its content.

Every column a client can fill is cut to what the column holds: a string longer than its
column (a 200-character ``X-Forwarded-For`` in ``client``, 128 characters) ends with
:data:`MARKER` instead; NUL characters, which PostgreSQL refuses in text, become U+FFFD; a
stored answer over :data:`MAX_RESPONSE_BYTES` of JSON is slimmed (``tokens``, ``hypotheses``
and the ranking left out, then the batch results that do not fit) and says so with
``"truncated": true``. The writer applies this to every row it stores, replayed ones too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String

from app.db.engine import json_bytes
from app.db.tables import RequestLog

MARKER = "…[truncated]"
# Longest stored utterance text (a batch's texts joined): far above what the request limits
# let through, so it only cuts rows that did not come from a parse route.
MAX_TEXT_CHARS = 200_000
# Largest stored answer, as compact JSON (a parse of 2,000 one-character tokens is ~90 KB).
MAX_RESPONSE_BYTES = 65_536
# Left out of a stored answer first: recomputable from the text, or the bulk of a parse.
_SLIMMED = ("tokens", "hypotheses", "intent_ranking")

_LIMITS: dict[str, int] = {
    c.name: c.type.length
    for c in RequestLog.__table__.columns
    if isinstance(c.type, String) and c.type.length
} | {"text": MAX_TEXT_CHARS}
_JSON_COLUMNS = ("response", "context")


def clip(value: str, limit: int) -> str:
    """``value`` without NULs, cut to ``limit`` characters (the last ones being
    :data:`MARKER`) when it is longer."""
    value = value.replace("\x00", "\ufffd")
    if len(value) <= limit:
        return value
    if limit <= len(MARKER):
        return value[:limit]
    return value[: limit - len(MARKER)] + MARKER


def _size(value: Any) -> int:
    """Bytes of ``value`` as the database column will hold it."""
    return len(json_bytes(value))


def bound_json(value: Any, limit: int = MAX_RESPONSE_BYTES) -> Any:
    """A stored JSON value of at most ``limit`` bytes: itself, a slimmed copy of an answer
    (one parse, or ``{"results": [...]}``), or ``{"truncated": true, "bytes": n}``."""
    if value is None:
        return None
    try:
        size = _size(value)
    except (TypeError, ValueError):
        return {"truncated": True, "unserializable": True}
    if size <= limit:
        return value
    if isinstance(value, Mapping):
        batch = isinstance(value.get("results"), list)
        results = value["results"] if batch else [value]
        slim = [
            {k: v for k, v in r.items() if k not in _SLIMMED} if isinstance(r, Mapping) else r
            for r in results
        ]
        out: dict[str, Any] = {"truncated": True, "bytes": size}
        if not batch:
            out |= slim[0]
            return out if _size(out) <= limit else {"truncated": True, "bytes": size}
        out["results_total"] = len(slim)
        out["results"] = []
        budget = limit - _size(out) - 1
        for result in slim:
            budget -= _size(result) + 1
            if budget < 0:
                break
            out["results"].append(result)
        return out
    return {"truncated": True, "bytes": size}


def bound_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` whose every value fits its column."""
    out = dict(row)
    for column, limit in _LIMITS.items():
        value = out.get(column)
        if isinstance(value, str):
            out[column] = clip(value, limit)
    for column in _JSON_COLUMNS:
        if column in out:
            out[column] = bound_json(out[column])
    return out
