"""Shared parts of the console's pages: templates, rendering, the sign-in redirect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.operating.console.auth import Principal

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
NOTE_SECONDS = 300
# Notes shown after a form (?note=...) are signed, so that a link cannot put words of its
# own on a console page; set by install_console from the session signer.
_notes: list[URLSafeTimedSerializer] = []


def use_note_signer(serializer: URLSafeTimedSerializer) -> None:
    """Sign the notes of redirects with ``serializer`` (the session cookies' key)."""
    _notes[:] = [serializer.__class__(serializer.secret_keys[-1], salt="slotfill-console-note")]


def _note(request: Request) -> str | None:
    raw = request.query_params.get("note")
    if not raw or not _notes:
        return None
    try:
        return str(_notes[0].loads(raw, max_age=NOTE_SECONDS))
    except BadSignature:
        return None


def render(
    request: Request, name: str, principal: Principal | None, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    """A console page; Jinja2 escapes every value (logged text included)."""
    context = {"principal": principal, "note": _note(request)} | ctx
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    return response


def redirect(path: str, note: str | None = None) -> RedirectResponse:
    """303 to a console page (after a form), with a note to show there."""
    if note and _notes:
        path = f"{path}{'&' if '?' in path else '?'}note={quote(_notes[0].dumps(note))}"
    target = path
    return RedirectResponse(target, status_code=303)


def since(hours: int) -> datetime:
    """The start of a period that ends now."""
    return datetime.now(UTC) - timedelta(hours=hours)
