"""Parse routes: ``/v1/parse``, ``/v1/parse/batch`` and Rasa's ``/model/parse``.

``async def`` handlers: validation and response shaping are cheap and run on the event
loop; the networks run on the micro-batcher's thread, which the handler awaits. The
registry is the handlers' only dependency (it answers 503 before the body is looked at);
the settings and the log writer are read from the app's state: each FastAPI dependency
costs tens of microseconds per request.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.types import Scope, Send

from app import paths
from app.config import Settings
from app.deps import RegistryDep, get_registry
from app.errors import (
    BODY_NOT_DECODABLE,
    APIError,
    ErrorResponse,
    Unauthorized,
    UnsupportedEmulation,
    error_response,
    validation_message,
)
from app.serving.batcher import Batcher
from app.serving.parsing import (
    check_context,
    check_texts,
    check_unicode,
    resolve_model,
    to_rasa,
    with_fallback,
)
from app.serving.registry import ModelRegistry
from app.serving.request_log.rows import new_request_id, parse_row
from app.serving.request_log.writer import RequestLogWriter
from app.serving.results import ParseResult, response_bytes
from app.serving.schemas import (
    BatchParseRequest,
    BatchParseResponse,
    ParseContext,
    ParseRequest,
    ParseResponse,
    RasaParseRequest,
    RasaParseResponse,
)
from app.serving.values import with_rasa_values, with_values

router = APIRouter(tags=["parse"])


class JSONBytes(Response):
    """A body already serialised in the shape of the route's ``response_model`` (which still
    documents it): FastAPI passes a returned Response through without validating it."""

    media_type = "application/json"


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 404, 408, 413, 415, 422, 503)
}


async def _run(
    request: Request,
    registry: ModelRegistry,
    settings: Settings,
    texts: list[str],
    model: str | None,
    n_best: int | None = None,
    context: ParseContext | None = None,
) -> list[ParseResult]:
    """Resolve the model versions now (404 before queueing; an unknown requested slot: 422),
    then parse through the app's micro-batcher, so concurrent requests share one pass
    through the networks."""
    tagger = resolve_model(registry, model)
    requested = context.requested_slots if context is not None else []
    check_context(tagger, requested)
    batcher: Batcher = request.app.state.batcher
    results = await batcher.parse_async(tagger, registry.sentiment(), texts, n_best or 0, requested)
    return [with_fallback(r, settings.fallback_threshold) for r in results]


def _request_id(request: Request) -> str:
    """The id the guard middleware gave this request (its log lines carry it too)."""
    return str(request.scope.get("state", {}).get("request_id") or new_request_id())


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _finish(
    request: Request,
    settings: Settings,
    request_id: str,
    results: list[ParseResult],
    context: ParseContext | None = None,
    answers: list[dict[str, Any]] | None = None,
) -> None:
    """Queue the request-log row (never blocks) and mark the request as logged; ``answers``:
    the response bodies already built for ``results`` (the row stores them as they are)."""
    scope = request.scope
    started = scope.get("state", {}).get("started", time.perf_counter())
    latency_ms = (time.perf_counter() - started) * 1000
    writer: RequestLogWriter | None = getattr(request.app.state, "log_writer", None)
    if writer is not None:
        client = scope.get("client")
        writer.submit(
            parse_row(
                request_id,
                scope["path"],
                client[0] if client else None,
                results,
                settings.log_redaction,
                latency_ms,
                context.model_dump() if context is not None else None,
                answers,
            )
        )
    scope.setdefault("state", {})["logged"] = True


@router.post(paths.PARSE, response_model=ParseResponse, responses=ERRORS)
async def parse(body: ParseRequest, request: Request, registry: RegistryDep) -> Response:
    """Intent, slots with character offsets and confidences, and sentiment of one utterance."""
    settings = _settings(request)
    check_texts([body.text], settings, batch=False)
    request_id = _request_id(request)
    results = await _run(
        request, registry, settings, [body.text], body.model, body.n_best, body.context
    )
    results = with_values(results, registry, body, settings)
    answer = results[0].to_json(request_id)
    _finish(request, settings, request_id, results, body.context, [answer])
    return JSONBytes(response_bytes(answer))


async def parse_direct(scope: Scope, body: bytes, send: Send) -> None:
    """``POST /v1/parse`` with ``Content-Type: application/json``, as FastAPI serves
    :func:`parse` (which still documents the route), without FastAPI's request machinery
    (0.1-0.3 ms of CPU per request): the guard middleware hands over the body it has read
    and checked. FastAPI's steps in its order, with its answers: the body's JSON (400), the
    registry dependency (503), the body's presence and the model's validation (the one error
    shape, :func:`validation_message`), then the handler and the API errors it raises.
    Anything else propagates to the app's 500 handler, as it does from the route."""
    request = Request(scope)
    try:
        data: Any = None
        if body:
            try:
                data = json.loads(body)
            except json.JSONDecodeError:
                raise RequestValidationError([{"type": "json_invalid", "loc": ("body",)}]) from None
            except Exception:
                await error_response(400, "invalid_json", BODY_NOT_DECODABLE)(scope, _none, send)
                return
        registry = await get_registry(request)
        if not body:
            raise RequestValidationError([{"type": "missing", "loc": ("body",)}])
        try:
            parsed = ParseRequest.model_validate(data, from_attributes=True)  # as FastAPI
        except ValidationError as err:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
            raise RequestValidationError(errors) from None
        response = await parse(parsed, request, registry)
    except RequestValidationError as err:
        status, code, message = validation_message(err)
        response = error_response(status, code, message)
    except APIError as err:
        response = error_response(err.status_code, err.code, err.message, err.headers)
    await response(scope, _none, send)


async def _none() -> Any:  # the guard read the body; a response never receives
    raise RuntimeError("parse_direct's response tried to receive")


@router.post(paths.PARSE_BATCH, response_model=BatchParseResponse, responses=ERRORS)
async def parse_batch(body: BatchParseRequest, request: Request, registry: RegistryDep) -> Response:
    """Parse up to ``max_batch_items`` utterances in one pass through the networks."""
    settings = _settings(request)
    check_texts(body.texts, settings, batch=True)
    request_id = _request_id(request)
    results = await _run(
        request, registry, settings, body.texts, body.model, body.n_best, body.context
    )
    results = with_values(results, registry, body, settings)
    answers = [r.to_json(request_id) for r in results]
    _finish(request, settings, request_id, results, body.context, answers)
    return JSONBytes(response_bytes({"results": answers}))


def check_rasa_request(
    body: RasaParseRequest, settings: Settings, query_token: str | None, query_mode: str | None
) -> None:
    """Rasa's server reads ``token`` and ``emulation_mode`` from the query string, its HTTP
    interpreter sends ``token`` in the body: accept both places, as Rasa does."""
    if settings.rasa_token is not None and settings.rasa_token.get_secret_value():
        sent = query_token or body.token or ""
        expected = settings.rasa_token.get_secret_value()
        if not secrets.compare_digest(sent.encode(), expected.encode()):
            raise Unauthorized("missing or wrong 'token' for /model/parse")
    mode = query_mode or body.emulation_mode
    if mode:
        raise UnsupportedEmulation(
            f"emulation_mode {mode[:40]!r} is not supported; /model/parse answers in Rasa's "
            "own format (omit emulation_mode)"
        )


QueryToken = Annotated[
    str | None,
    Query(alias="token", max_length=1024, description="Rasa's token, as Rasa's server reads it"),
]
QueryEmulation = Annotated[
    str | None,
    Query(alias="emulation_mode", max_length=64, description="Rasa's emulation mode; see body"),
]


@router.post(
    paths.RASA_PARSE,
    response_model=RasaParseResponse,
    responses=ERRORS | {401: {"model": ErrorResponse}},
)
async def rasa_parse(
    body: RasaParseRequest,
    request: Request,
    registry: RegistryDep,
    query_token: QueryToken = None,
    query_mode: QueryEmulation = None,
) -> dict[str, Any]:
    """Rasa NLU compatible parse, for chatbot backends written against Rasa's HTTP API."""
    settings = _settings(request)
    check_rasa_request(body, settings, query_token, query_mode)
    check_texts([body.text], settings, batch=False)
    if body.message_id is not None:
        check_unicode(body.message_id, "message_id")  # echoed in the answer
    request_id = _request_id(request)
    results = await _run(request, registry, settings, [body.text], body.model, None, body.context)
    results = with_values(results, registry, body, settings)
    _finish(request, settings, request_id, results, body.context)
    return with_rasa_values(to_rasa(results[0], body.message_id), results[0])
