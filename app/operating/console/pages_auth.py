"""Sign-in and sign-out pages."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app import paths
from app.deps import SessionsDep
from app.operating.console.accounts import authenticate, end_sessions
from app.operating.console.auth import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    PagePrincipal,
    check_csrf,
    read_cookie,
    session_principal,
    set_cookie,
    start_session,
)
from app.operating.console.pages import redirect, render

router = APIRouter(prefix=paths.CONSOLE, include_in_schema=False)
SIGNIN_FORM_SECONDS = 3600


def _signin_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "signin.html", None, status, title="Sign in", csrf=token, error=error
    )
    set_cookie(request, response, SIGNIN_COOKIE, token, SIGNIN_FORM_SECONDS)
    return response


@router.get("")
def home(request: Request) -> RedirectResponse:
    """The review queue, or the sign-in page."""
    signed_in = session_principal(request) is not None
    return redirect(f"{paths.CONSOLE}/review" if signed_in else f"{paths.CONSOLE}/signin")


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> HTMLResponse:
    """The sign-in form."""
    return _signin_page(request)


@router.post("/signin")
def signin(
    request: Request,
    sessions: SessionsDep,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Check the password; a session cookie and the review queue, or the form again (401).
    The form's CSRF token must match its cookie (no signing in from another site)."""
    expected = read_cookie(request, SIGNIN_COOKIE, SIGNIN_FORM_SECONDS)
    if not csrf or not isinstance(expected, str) or not secrets.compare_digest(csrf, expected):
        return _signin_page(request, "The form expired; please sign in again.", 403)
    with sessions() as session, session.begin():
        operator = authenticate(session, name, password)
        if operator is None:
            return _signin_page(request, "Wrong name or password.", 401)
        response = redirect(f"{paths.CONSOLE}/review")
        start_session(request, response, operator)
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/signout")
def signout(
    principal: PagePrincipal,
    sessions: SessionsDep,
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """End every session of the account and forget the cookie."""
    check_csrf(principal, csrf)
    assert principal.operator_id is not None
    with sessions() as session, session.begin():
        end_sessions(session, principal.operator_id)
    response = redirect(f"{paths.CONSOLE}/signin", "Signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
