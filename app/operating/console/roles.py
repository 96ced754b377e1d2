"""Roles of console accounts, in a module of their own: ``slotfill user`` lists them in its
help, and the supervisor of ``slotfill serve`` builds that parser too, which must not import
SQLAlchemy (about 0.4 s of its start-up, before it spawns any worker)."""

from __future__ import annotations

from enum import StrEnum


class OperatorRole(StrEnum):
    """Annotators review and correct; admins also accept corrections, train and activate."""

    annotator = "annotator"
    admin = "admin"
