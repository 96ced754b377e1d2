"""Operator accounts: argon2 password hashes, and sign-in with a per-account throttle.

Five failed sign-ins within a minute lock the account for the rest of that minute (429 with
``Retry-After``), counted in the database so that every worker sees the same count.
"""

from __future__ import annotations

import contextlib
import functools
import re
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import Operator
from app.errors import APIError
from app.operating.console.roles import OperatorRole

NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=1)
MIN_PASSWORD = 8
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against for unknown names, so that they take as long as wrong passwords;
    made on first use, not at import (0.3 s of every serving worker's start-up)."""
    return _hasher.hash("not a password of anyone")


class TooManySignins(APIError):
    status_code, code = 429, "too_many_signins"


class InvalidAccount(ValueError):
    """A name, role or password ``slotfill user add`` cannot take."""


def _now() -> datetime:
    return datetime.now(UTC)


def get_operator(session: Session, name: str) -> Operator | None:
    """The account called ``name``, or None."""
    return session.scalars(select(Operator).where(Operator.name == name)).one_or_none()


def add_operator(session: Session, name: str, role: str, password: str) -> Operator:
    """Create an account, or set the role and password of an existing one."""
    if not re.match(NAME_PATTERN, name):
        raise InvalidAccount(f"invalid name {name!r}: 1-64 of letters, digits and _ . @ -")
    if role not in set(OperatorRole):
        raise InvalidAccount(f"invalid role {role!r}: {' or '.join(OperatorRole)}")
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"the password needs at least {MIN_PASSWORD} characters")
    operator = get_operator(session, name)
    if operator is None:
        operator = Operator(name=name, role=role, password_hash=_hasher.hash(password))
        session.add(operator)
    else:
        operator.role, operator.password_hash = role, _hasher.hash(password)
        operator.session_epoch += 1  # a new password ends the account's sessions
    session.flush()
    return operator


def _locked_for(operator: Operator, now: datetime) -> int:
    """Seconds the account stays locked (0: not locked)."""
    if operator.failed_signins < MAX_FAILURES or operator.failed_since is None:
        return 0
    left = operator.failed_since + FAILURE_WINDOW - now
    return max(0, int(left.total_seconds()) + 1) if left.total_seconds() > 0 else 0


def authenticate(session: Session, name: str, password: str) -> Operator | None:
    """The account if ``password`` is its password, else None; ``TooManySignins`` while the
    account is locked. The caller commits (failures are counted in the account row)."""
    operator = get_operator(session, name)
    if operator is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password)
        return None
    now = _now()
    locked = _locked_for(operator, now)
    if locked:
        raise TooManySignins(
            f"too many failed sign-ins; try again in {locked}s",
            headers={"Retry-After": str(locked)},
        )
    try:
        _hasher.verify(operator.password_hash, password)
    except (VerificationError, InvalidHashError):
        if operator.failed_since is None or now - operator.failed_since > FAILURE_WINDOW:
            operator.failed_since, operator.failed_signins = now, 1
        else:
            operator.failed_signins += 1
        session.flush()
        return None
    operator.failed_signins, operator.failed_since = 0, None
    if _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = _hasher.hash(password)
    session.flush()
    return operator


def end_sessions(session: Session, operator_id: int) -> None:
    """Sign the account out everywhere: cookies carry the epoch this moves past."""
    operator = session.get(Operator, operator_id)
    if operator is not None:
        operator.session_epoch += 1
        session.flush()
