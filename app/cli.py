"""``slotfill serve``: run the service under uvicorn."""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_app_parsers(sub: Any) -> None:
    """Register the online commands."""
    serve = sub.add_parser(
        "serve",
        help="serve the HTTP API with uvicorn",
        description="Serve the API. Settings come from SLOTFILL_* environment variables (see README).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch threads are set per worker
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,  # every request is already in request_log
        timeout_graceful_shutdown=30,
    )
    return 0
