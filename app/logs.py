"""Log lines: one JSON object a line, for every logger of the process.

Each line has ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``process``, ``request_id``
(the id the request being served returns to its client; null outside a request) and
``message``, plus ``exc_info`` for tracebacks. The service's own loggers (``app.*``,
``models.*``, ``training.*``, ``slotfill.*``) log at the chosen level, uvicorn's too; every
other library logs warnings and errors through the same handler.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS

# Set by the guard middleware for each request; each request runs in a task of its own, so
# the value is that request's wherever its code logs (and unset in background threads).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
PACKAGES = ("app", "models", "training", "slotfill")
FIELDS = ("levelname", "name", "process", "request_id", "message")


class RequestIdFilter(logging.Filter):
    """Adds the current request id to every record that passes the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def log_config(level: str = "info") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dictionary (uvicorn's ``log_config`` too)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": list(FIELDS),
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": True,
                # uvicorn adds a copy of some messages with terminal colour codes
                "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
            }
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
        "loggers": {
            **{name: {"level": level} for name in PACKAGES},
            # uvicorn's own config would give these plain-text handlers: route them here.
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["json"], "level": level, "propagate": False},
        },
    }
