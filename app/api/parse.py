"""Parse routes: ``/v1/parse``, ``/v1/parse/batch`` and Rasa's ``/model/parse``.

``async def`` handlers: validation and response shaping are cheap and run on the event
loop; the networks run on the micro-batcher's thread, which the handler awaits.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from app.api.schemas import (
    BatchParseRequest,
    BatchParseResponse,
    ErrorResponse,
    ParseRequest,
    ParseResponse,
    RasaParseRequest,
    RasaParseResponse,
)
from app.batcher import MicroBatcher
from app.deps import RegistryDep, SettingsDep, WriterDep
from app.parsing import (
    check_texts,
    check_unicode,
    log_row,
    new_request_id,
    resolve_model,
    to_rasa,
)
from app.registry import ModelRegistry

router = APIRouter(tags=["parse"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 408, 413, 415, 422, 503)
}


async def _run(
    request: Request, registry: ModelRegistry, texts: list[str], model: str | None
) -> list[dict[str, Any]]:
    """Resolve the model versions now (404 before queueing), then parse through the app's
    micro-batcher, so concurrent requests share one pass through the networks."""
    tagger = resolve_model(registry, model)
    batcher: MicroBatcher = request.app.state.batcher
    return await batcher.parse_async(tagger, registry.sentiment(), texts)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _finish(
    request: Request,
    writer: WriterDep,
    settings: SettingsDep,
    request_id: str,
    results: list[dict[str, Any]],
) -> None:
    """Queue the request-log row (never blocks) and mark the request as logged."""
    started = request.scope.get("state", {}).get("started", time.perf_counter())
    latency_ms = (time.perf_counter() - started) * 1000
    if writer is not None:
        writer.submit(
            log_row(
                request_id,
                request.url.path,
                _client(request),
                results,
                settings.log_redaction,
                latency_ms,
            )
        )
    request.scope.setdefault("state", {})["logged"] = True


@router.post("/v1/parse", response_model=ParseResponse, responses=ERRORS)
async def parse(
    body: ParseRequest,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    writer: WriterDep,
) -> dict[str, Any]:
    """Intent, slots with character offsets and confidences, and sentiment of one utterance."""
    check_texts([body.text], settings, batch=False)
    request_id = new_request_id()
    result = (await _run(request, registry, [body.text], body.model))[0] | {
        "request_id": request_id
    }
    _finish(request, writer, settings, request_id, [result])
    return result


@router.post("/v1/parse/batch", response_model=BatchParseResponse, responses=ERRORS)
async def parse_batch(
    body: BatchParseRequest,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    writer: WriterDep,
) -> dict[str, Any]:
    """Parse up to ``max_batch_items`` utterances in one pass through the networks."""
    check_texts(body.texts, settings, batch=True)
    request_id = new_request_id()
    results = [
        r | {"request_id": request_id}
        for r in await _run(request, registry, body.texts, body.model)
    ]
    _finish(request, writer, settings, request_id, results)
    return {"results": results}


@router.post("/model/parse", response_model=RasaParseResponse, responses=ERRORS)
async def rasa_parse(
    body: RasaParseRequest,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    writer: WriterDep,
) -> dict[str, Any]:
    """Rasa NLU compatible parse, for chatbot backends written against Rasa's HTTP API."""
    check_texts([body.text], settings, batch=False)
    if body.message_id is not None:
        check_unicode(body.message_id, "message_id")  # echoed in the answer
    request_id = new_request_id()
    result = (await _run(request, registry, [body.text], body.model))[0] | {
        "request_id": request_id
    }
    _finish(request, writer, settings, request_id, [result])
    return to_rasa(result, body.message_id)
