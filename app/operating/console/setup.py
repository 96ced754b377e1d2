"""Adding the console to the app: its session signer and sign-in redirect when the app is
made, its pages and JSON routes when they are first asked for (``app.main``)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from app.config import Settings
from app.operating.console.auth import SignInRequired, make_serializer, to_signin


def install_console(app: FastAPI, settings: Settings) -> None:
    """The console's session signer and its answer to a page asked for without a session."""
    app.state.console_serializer = make_serializer(settings)
    app.add_exception_handler(SignInRequired, to_signin)


def console_routers(app: FastAPI) -> list[APIRouter]:
    """The console's pages and the JSON routes behind them, imported now (Jinja2, the page
    modules); ``install_console`` must have run."""
    from app.operating.console import api_routes, pages_auth, pages_models, pages_review
    from app.operating.console.pages import use_note_signer

    use_note_signer(app.state.console_serializer)
    return [api_routes.router, pages_auth.router, pages_review.router, pages_models.router]
