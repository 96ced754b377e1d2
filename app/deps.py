"""Dependencies: the app's long-lived objects, reached through ``request.app.state``.

All ``async def``: they only read attributes, and FastAPI runs a plain ``def`` dependency
in the thread pool, a hand-off that costs more than the lookup itself.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.errors import AdminDisabled, NotReady, Unauthorized
from app.serving.registry import ModelRegistry
from app.serving.request_log.writer import RequestLogWriter


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> ModelRegistry:
    """The model registry, once models are loaded."""
    registry: ModelRegistry | None = getattr(request.app.state, "registry", None)
    if registry is None or not registry.ready:
        raise NotReady("models are still loading")
    return registry


async def get_writer(request: Request) -> RequestLogWriter | None:
    """The request-log writer (None when logging is not set up yet)."""
    return getattr(request.app.state, "log_writer", None)


async def get_sessions(request: Request) -> sessionmaker[Session]:
    """Session factory on the service database."""
    sessions: sessionmaker[Session] | None = getattr(request.app.state, "sessions", None)
    if sessions is None:
        raise NotReady("the service is still starting")
    return sessions


_bearer = HTTPBearer(auto_error=False, description="The value of SLOTFILL_ADMIN_TOKEN")


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """``Authorization: Bearer <SLOTFILL_ADMIN_TOKEN>``, compared in constant time."""
    settings: Settings = request.app.state.settings
    if settings.admin_token is None or not settings.admin_enabled:
        raise AdminDisabled("the admin API is disabled; set SLOTFILL_ADMIN_TOKEN to enable it")
    expected = settings.admin_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, expected):
        raise Unauthorized(
            "missing or wrong admin token (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
AdminDep = Depends(require_admin)
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
WriterDep = Annotated[RequestLogWriter | None, Depends(get_writer)]
