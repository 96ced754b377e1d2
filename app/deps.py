"""Dependencies: the app's long-lived objects, reached through ``request.app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.errors import NotReady
from app.registry import ModelRegistry
from app.request_log import RequestLogWriter


def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_registry(request: Request) -> ModelRegistry:
    """The model registry, once models are loaded."""
    registry: ModelRegistry | None = getattr(request.app.state, "registry", None)
    if registry is None or not registry.ready:
        raise NotReady("models are still loading")
    return registry


def get_writer(request: Request) -> RequestLogWriter | None:
    """The request-log writer (None when logging is not set up yet)."""
    return getattr(request.app.state, "log_writer", None)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
WriterDep = Annotated[RequestLogWriter | None, Depends(get_writer)]
