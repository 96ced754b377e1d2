"""Adding the console to the app."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings
from app.operating.console import api_routes, pages_auth, pages_models, pages_review
from app.operating.console.auth import SignInRequired, make_serializer
from app.operating.console.pages import to_signin, use_note_signer


def install_console(app: FastAPI, settings: Settings) -> None:
    """Add the console's pages and JSON routes to ``app``."""
    app.state.console_serializer = make_serializer(settings)
    use_note_signer(app.state.console_serializer)
    app.add_exception_handler(SignInRequired, to_signin)
    for router in (api_routes.router, pages_auth.router, pages_review.router, pages_models.router):
        app.include_router(router)
