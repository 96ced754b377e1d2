"""Console sessions and who is asking.

A session is a signed cookie (itsdangerous, keyed by ``SLOTFILL_SESSION_SECRET``) holding the
account id, the account's session epoch and a CSRF token; it expires after
``session_max_age_seconds`` and is HttpOnly and SameSite=Strict. Each request re-reads the
account, so a changed role applies at once and sign-out (which moves the epoch) ends every
session of the account. State-changing requests made with a session carry the CSRF token: a
form field ``csrf`` or an ``X-CSRF-Token`` header. Machines keep the Bearer admin token,
which acts as an admin.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker

from app import paths
from app.config import Settings
from app.db.tables import Operator
from app.errors import APIError, Unauthorized
from app.operating.console.roles import OperatorRole

log = logging.getLogger("slotfill.console")
SESSION_COOKIE = "slotfill_session"
SIGNIN_COOKIE = "slotfill_signin"  # the CSRF token of the sign-in form, before any session
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Forbidden(APIError):
    status_code, code = 403, "forbidden"


class BadCsrf(APIError):
    status_code, code = 403, "csrf_failed"


class SignInRequired(Exception):
    """A console page asked for without a session: the page handler redirects to sign-in."""


def to_signin(request: Request, exc: Exception) -> RedirectResponse:
    """Pages asked for without a session go to the sign-in page."""
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"{paths.CONSOLE}/signin", status_code=303)


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an operator with a session, or a machine with the admin token."""

    name: str
    role: OperatorRole
    csrf: str | None  # None for the Bearer token, which needs no CSRF token
    operator_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is OperatorRole.admin


def make_serializer(settings: Settings) -> URLSafeTimedSerializer:
    """The cookie signer; a random key (logged as such) when no secret is set."""
    secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
    if not secret:
        secret = secrets.token_urlsafe(32)
        log.warning(
            "SLOTFILL_SESSION_SECRET is not set: console sessions are signed with a random key "
            "made at start-up (they end at restart; `slotfill serve`'s workers share it, but "
            "separate servers or containers must set the secret)"
        )
    return URLSafeTimedSerializer(secret, salt="slotfill-console")


def _serializer(request: Request) -> URLSafeTimedSerializer:
    serializer: URLSafeTimedSerializer = request.app.state.console_serializer
    return serializer


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def set_cookie(request: Request, response: Response, name: str, value: Any, max_age: int) -> None:
    """A signed, HttpOnly, SameSite=Strict cookie of the console."""
    response.set_cookie(
        name,
        _serializer(request).dumps(value),
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=_settings(request).session_cookie_secure,
        path="/",
    )


def read_cookie(request: Request, name: str, max_age: int) -> Any:
    """The value of a signed cookie younger than ``max_age`` seconds, or None."""
    raw = request.cookies.get(name)
    if not raw:
        return None
    try:
        return _serializer(request).loads(raw, max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None


def start_session(request: Request, response: Response, operator: Operator) -> None:
    """Sign ``operator`` in: the session cookie, with a fresh CSRF token."""
    value = {"o": operator.id, "e": operator.session_epoch, "c": secrets.token_urlsafe(24)}
    set_cookie(request, response, SESSION_COOKIE, value, _settings(request).session_max_age_seconds)


def session_principal(request: Request) -> Principal | None:
    """The operator of a valid, unexpired session cookie, or None."""
    value = read_cookie(request, SESSION_COOKIE, _settings(request).session_max_age_seconds)
    if not isinstance(value, dict):
        return None
    sessions: sessionmaker[Session] | None = getattr(request.app.state, "sessions", None)
    if sessions is None:
        return None
    with sessions() as session:
        operator = session.get(Operator, value.get("o"))
        if operator is None or operator.session_epoch != value.get("e"):
            return None
        return Principal(operator.name, OperatorRole(operator.role), str(value["c"]), operator.id)


def _bearer_principal(request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    settings = _settings(request)
    if settings.admin_token is None or not settings.admin_enabled:
        raise Unauthorized("the admin token is disabled; sign in to the console instead")
    expected = settings.admin_token.get_secret_value().encode()
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise Unauthorized("wrong admin token", headers={"WWW-Authenticate": "Bearer"})
    return Principal("admin-token", OperatorRole.admin, None)


def check_csrf(principal: Principal, given: str | None) -> None:
    """``BadCsrf`` unless a session request carries its session's CSRF token."""
    if principal.csrf is None:
        return
    if not given or not hmac.compare_digest(given.encode(), principal.csrf.encode()):
        raise BadCsrf("missing or wrong CSRF token; reload the page and try again")


async def api_principal(request: Request) -> Principal:
    """JSON routes: the Bearer admin token or a console session (401 otherwise); a session's
    state-changing request needs its CSRF token in ``X-CSRF-Token``."""
    principal = _bearer_principal(request) or session_principal(request)
    if principal is None:
        raise Unauthorized(
            "sign in to the console, or send Authorization: Bearer <admin token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if request.method not in SAFE_METHODS:
        check_csrf(principal, request.headers.get("x-csrf-token"))
    return principal


async def page_principal(request: Request) -> Principal:
    """Console pages: the session's operator; without one, ``SignInRequired`` (a redirect).
    Forms check their CSRF field themselves (:func:`check_csrf`)."""
    principal = session_principal(request)
    if principal is None:
        raise SignInRequired()
    return principal


def require_admin(principal: Principal) -> None:
    """``Forbidden`` unless ``principal`` is an admin."""
    if not principal.is_admin:
        raise Forbidden(f"'{principal.name}' is an annotator; this needs an admin")


ApiPrincipal = Annotated[Principal, Depends(api_principal)]
PagePrincipal = Annotated[Principal, Depends(page_principal)]
