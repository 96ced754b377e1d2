"""The OpenAPI document with the limits that come from settings (issue 17): the length of
``text`` and of each of ``texts``, and how many ``texts`` a batch takes. The request models
cannot say them, as they are read at start, not written in the code."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from app.config import Settings

TEXT_FIELDS = {"ParseRequest": "text", "RasaParseRequest": "text"}


def declare_limits(schema: dict[str, Any], settings: Settings) -> None:
    """Write ``settings``' text limits into the request schemas of ``schema`` (in place)."""
    components = schema.get("components", {}).get("schemas", {})
    text_limits = {"minLength": 1, "maxLength": settings.max_text_chars}
    for name, field in TEXT_FIELDS.items():
        if name in components:
            components[name]["properties"][field].update(text_limits)
    if "BatchParseRequest" in components:
        texts = components["BatchParseRequest"]["properties"]["texts"]
        texts.update({"minItems": 1, "maxItems": settings.max_batch_items})
        texts["items"].update(text_limits)


def openapi_with_limits(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """``app.openapi`` (built once and cached by FastAPI) with the limits declared."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        declare_limits(schema, settings)
    return app.openapi_schema or {}
