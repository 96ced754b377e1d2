"""Health, readiness and metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import paths
from app.errors import ErrorResponse, NotReady

router = APIRouter(tags=["health"])


@router.get(paths.LIVEZ)
async def livez() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(paths.READYZ, responses={503: {"model": ErrorResponse}})
async def readyz(request: Request) -> dict[str, object]:
    """Models are loaded and warm; 503 until then."""
    registry = getattr(request.app.state, "registry", None)
    if registry is None or not registry.ready:
        raise NotReady("models are still loading")
    return {
        "status": "ready",
        "models": sorted(m.ref for m in registry.all().values()),
        "pid": os.getpid(),  # which worker answered, when several share the port
    }


@router.get(paths.METRICS, response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
