"""``slotfill serve``: run the service under uvicorn; ``slotfill worker``: run training jobs."""

from __future__ import annotations

import argparse
import logging.config
import os
from typing import Any


def add_app_parsers(sub: Any) -> None:
    """Register the online commands."""
    serve = sub.add_parser(
        "serve",
        help="serve the HTTP API with uvicorn",
        description="Serve the API. Settings come from SLOTFILL_* environment variables "
        "(see README).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=_serve)
    worker = sub.add_parser(
        "worker",
        help="run training jobs from the Redis queue",
        description="Run training jobs queued by POST /v1/admin/train on the RQ queue at "
        "SLOTFILL_REDIS_URL (queue SLOTFILL_JOB_QUEUE). Start any number, on any machine that "
        "shares the database and the model store.",
    )
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    worker.set_defaults(func=_worker)


def _serve(args: argparse.Namespace) -> int:
    from app import http_server
    from app.config import get_settings
    from app.logs import log_config

    settings = get_settings()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch threads are set per worker
    # uvicorn, with limits on request heads and a SIGTERM that stops listening first.
    http_server.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,  # every request is already in request_log
        timeout_graceful_shutdown=30,
        timeout_keep_alive=settings.keep_alive_seconds,
        # A worker busy with model loading or a burst on a starved 2-core box must not be
        # killed (and lose its queued log rows) by the supervisor's 5 s default.
        timeout_worker_healthcheck=30,
        log_config=log_config(args.log_level),
        # uvicorn would take the client address from X-Forwarded-For of local peers; that
        # header is the client's to write unless a proxy of ours sets it.
        proxy_headers=settings.trust_forwarded_for,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    import sys

    from redis import Redis
    from rq import Queue, SimpleWorker

    from app.config import get_settings
    from app.logs import log_config

    settings = get_settings()
    if not settings.redis_url:
        print(
            "error: SLOTFILL_REDIS_URL is not set; without Redis the server runs jobs itself",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.config.dictConfig(log_config("info"))  # before rq, which then adds no handler
    connection = Redis.from_url(settings.redis_url)
    # SimpleWorker runs each job in this process: the job itself only supervises a trainer
    # child process, so a forked work horse per job would add nothing.
    worker = SimpleWorker([Queue(settings.job_queue, connection=connection)], connection=connection)
    worker.work(burst=args.burst, logging_level="INFO")
    return 0
