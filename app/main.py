"""App factory: ``create_app(settings)``; the lifespan loads models and starts the log writer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI
from starlette.types import Scope

from app.api import health, models, parse
from app.config import Settings, get_settings
from app.db.engine import make_engine
from app.errors import install_error_handlers
from app.metrics import Metrics
from app.middleware import GuardMiddleware
from app.registry import ModelRegistry
from app.request_log import RequestLogWriter

log = logging.getLogger("slotfill")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (from the environment if omitted)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)
        started = time.perf_counter()
        registry = ModelRegistry(
            settings.model_store, settings.default_model, settings.models, settings.sentiment_model
        )
        registry.load_all()
        app.state.registry = registry
        engine = make_engine(settings.database_url)
        writer = RequestLogWriter(
            engine, settings.log_queue_size, settings.log_batch_size, settings.log_spill_dir
        )
        writer.start()
        app.state.log_writer = writer
        log.info(
            "ready in %.2fs: %s",
            time.perf_counter() - started,
            ", ".join(m.ref for m in registry.all().values()),
        )
        try:
            yield
        finally:
            writer.stop(timeout=30)
            engine.dispose()

    app = FastAPI(
        title="slotfill",
        version="0.1.0",
        description="Slot filling, intent detection and sentiment for chatbot utterances.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = None
    app.state.log_writer = None
    app.state.metrics = Metrics(lambda: app.state.registry, lambda: app.state.log_writer)
    install_error_handlers(app)
    for router in (parse.router, models.router, health.router):
        app.include_router(router)

    def log_failure(scope: Scope, status: int, latency_ms: float) -> None:
        """Requests to logged routes that failed before the handler logged them."""
        writer: RequestLogWriter | None = app.state.log_writer
        if writer is None:
            return
        from app.parsing import new_request_id

        client: Any = scope.get("client")
        writer.submit(
            {
                "request_id": new_request_id(),
                "route": scope["path"],
                "client": client[0] if client else None,
                "text": "",
                "text_mode": settings.log_redaction.value,
                "response": None,
                "model_versions": None,
                "latency_ms": latency_ms,
                "status_code": status,
            }
        )

    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_concurrency=settings.max_concurrency,
        observe=app.state.metrics.observe,
        log_failure=log_failure,
    )
    return app
