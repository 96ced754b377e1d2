"""App factory: ``create_app(settings)``; the lifespan loads models and starts the log writer."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from threadpoolctl import threadpool_limits

from app import paths
from app.config import Settings, get_settings
from app.db.engine import make_engine, make_session_factory
from app.errors import ErrorResponse, install_error_handlers
from app.memory import fix_mmap_threshold
from app.metrics import Metrics
from app.openapi import openapi_with_limits
from app.operating.console.setup import install_console
from app.operating.embedded import EmbeddedRunner
from app.operating.versions import VersionPoller, read_pins
from app.serving import health_routes, models_routes, parse_routes
from app.serving.batcher import Batcher, LoopBatcher, MicroBatcher
from app.serving.middleware import GuardMiddleware
from app.serving.parsing import run_models
from app.serving.registry import ModelRegistry
from app.serving.request_log.rows import failure_row
from app.serving.request_log.writer import RequestLogWriter
from app.serving.values import warm_values
from models import native

log = logging.getLogger("slotfill")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service for ``settings`` (from the environment if omitted)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.engine == "torch" or settings.quantize != "none":
            # Only a torch-engine worker imports torch: it costs ~3 s and ~220 MB per worker.
            import torch

            torch.set_num_threads(settings.torch_threads)
        threadpool_limits(settings.torch_threads)  # NumPy's BLAS (the numpy engine) likewise
        native.select(
            settings.kernels, settings.recurrent_weights
        )  # process-wide, as the thread limits
        fix_mmap_threshold()  # before the first batches: keeps resident memory flat
        started = time.perf_counter()
        engine = make_engine(settings.database_url)
        sessions = make_session_factory(engine)
        registry = ModelRegistry(
            settings.model_store,
            settings.default_model,
            settings.models,
            settings.sentiment_model,
            quantize=settings.quantize,
            engine=settings.engine,
        )
        registry.load_all(read_pins(sessions))  # the active versions, else the latest on disk
        app.state.registry = registry
        warm_values()  # Duckling reads its time zones now, not on the first request
        app.state.sessions = sessions
        # torch releases the GIL in its kernels, so the sentiment network overlaps the tagger
        # on a thread of its own; the numpy engine's small matrices hardly do, and the
        # hand-offs cost more CPU than the overlap saves (benchmarks.http_overhead).
        sentiment_pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment")
            if settings.engine == "torch"
            else None
        )
        # The numpy engine batches on the event loop, torch on a thread (app.serving.batcher).
        batcher: Batcher = (
            MicroBatcher(
                partial(run_models, pool=sentiment_pool), max_texts=settings.max_batch_items
            )
            if settings.engine == "torch"
            else LoopBatcher(run_models, max_texts=settings.max_batch_items)
        )
        app.state.batcher = batcher
        writer = RequestLogWriter(
            engine,
            settings.log_queue_size,
            settings.log_batch_size,
            settings.log_spill_dir,
            journal_dir=settings.log_journal_dir or settings.log_spill_dir,
        )
        writer.start()
        app.state.log_writer = writer
        poller = VersionPoller(
            registry, sessions, settings.version_poll_seconds, settings.job_stale_seconds
        )
        poller.start()
        # Without Redis this server runs the training jobs (in child processes).
        runner = None
        if settings.admin_enabled and not settings.redis_url:
            runner = EmbeddedRunner(settings, sessions)
            runner.start()
        log.info(
            "ready in %.2fs: %s",
            time.perf_counter() - started,
            ", ".join(m.ref for m in registry.all().values()),
        )
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            poller.stop()
            batcher.close()  # after uvicorn drained in-flight requests
            if sentiment_pool is not None:
                sentiment_pool.shutdown()
            writer.stop(timeout=30)
            engine.dispose()

    app = FastAPI(
        title="slotfill",
        version="0.1.0",
        description="Slot filling, intent detection and sentiment for chatbot utterances.",
        lifespan=lifespan,
        # /v1/models/ is a 404 in the error shape, not a redirect to a Location built from
        # the client's Host header.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.registry = None
    app.state.log_writer = None
    app.state.sessions = None
    app.state.batcher = None
    app.state.metrics = Metrics(lambda: app.state.registry, lambda: app.state.log_writer)
    install_error_handlers(app)
    # Errors the guard middleware and the error handlers answer on routes whose own
    # declarations omit them; documented so that clients (and the schema fuzz tests) know them:
    # bad JSON, stalled, oversized or non-JSON body, the concurrency limit; and a 500.
    guarded = (400, 408, 413, 415, 500, 503)
    routers: list[tuple[APIRouter, tuple[int, ...]]] = [
        (parse_routes.router, guarded),
        (models_routes.router, guarded),
        (health_routes.router, (500,)),  # neither limited nor counted
    ]
    for router, codes in routers:
        app.include_router(router, responses={c: {"model": ErrorResponse} for c in codes})
    install_console(app, settings)  # the session signer and the sign-in redirect
    operating = OperatingRoutes(app, guarded)  # feedback, admin, console: on first need
    app.router.default = operating.route_or_not_found
    app.openapi = partial(operating.openapi, settings)  # type: ignore[method-assign]

    def log_failure(scope: Scope, status: int, latency_ms: float) -> None:
        """Requests to logged routes that failed before the handler logged them."""
        writer: RequestLogWriter | None = app.state.log_writer
        if writer is None:
            return
        client: Any = scope.get("client")
        host = client[0] if client else None
        request_id = scope.get("state", {}).get("request_id")
        mode = settings.log_redaction
        writer.submit(failure_row(scope["path"], host, mode, latency_ms, status, request_id))

    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_concurrency=settings.max_concurrency,
        observe=app.state.metrics.observe,
        log_failure=log_failure,
        body_timeout_s=settings.body_timeout_seconds,
        direct={paths.PARSE: parse_routes.parse_direct},  # served as FastAPI would, faster
    )
    return app


class OperatingRoutes:
    """The feedback, admin and console routes, imported and added to ``app`` on the first
    request that no route matches, or for the OpenAPI document; after them in the same order
    as the serving routes. None of them is needed to parse, and importing them (their
    pydantic bodies, FastAPI's parameter models for some forty routes, Jinja2) was a fifth
    of what ``slotfill serve`` imports before its workers can start (issue 18, cold start).
    """

    def __init__(self, app: FastAPI, guarded: tuple[int, ...]) -> None:
        self.app = app
        self.guarded = guarded
        self.not_found: ASGIApp = app.router.default
        self.added = False

    def add(self) -> None:
        """Import the routers and add them to the app (once)."""
        if self.added:
            return
        from app.operating import admin_routes, feedback_routes
        from app.operating.console.setup import console_routers

        errors: dict[int | str, dict[str, Any]] = {
            c: {"model": ErrorResponse} for c in self.guarded
        }
        self.app.include_router(feedback_routes.router, responses=errors)
        self.app.include_router(admin_routes.router, responses=errors)
        for router in console_routers(self.app):
            self.app.include_router(router)
        self.added = True

    async def route_or_not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The router's answer when no route matched: route again with these routes added,
        the first time; else the 404 it gave before."""
        if self.added:
            await self.not_found(scope, receive, send)
            return
        self.add()
        await self.app.router(scope, receive, send)

    def openapi(self, settings: Settings) -> dict[str, Any]:
        """The OpenAPI document of every route, these included."""
        self.add()
        return openapi_with_limits(self.app, settings)
