"""Domain errors and the one JSON error shape: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
import os
import re
import uuid
from pathlib import PurePosixPath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("slotfill")


class APIError(Exception):
    """An error a client caused or can act on; mapped to HTTP in one handler."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class EmptyText(APIError):
    status_code, code = 422, "empty_text"


class TextTooLong(APIError):
    status_code, code = 422, "text_too_long"


class InvalidText(APIError):
    status_code, code = 422, "invalid_text"


class EmptyBatch(APIError):
    status_code, code = 422, "empty_batch"


class TooManyItems(APIError):
    status_code, code = 422, "too_many_items"


class RequestTooLarge(APIError):  # more characters or tokens in all than one request may cost
    status_code, code = 422, "request_too_large"


class UnknownSlot(APIError):  # a context names a slot the model does not have
    status_code, code = 422, "unknown_slot"


class ModelNotFound(APIError):
    status_code, code = 404, "model_not_found"


class NotReady(APIError):
    status_code, code = 503, "not_ready"


# Admin API and feedback.
class AdminDisabled(APIError):
    status_code, code = 404, "admin_disabled"


class Unauthorized(APIError):
    status_code, code = 401, "unauthorized"


class UnsupportedEmulation(APIError):
    status_code, code = 422, "unsupported_emulation_mode"


class InvalidJobRequest(APIError):
    status_code, code = 422, "invalid_job"


class DatasetNotFound(APIError):
    status_code, code = 422, "unknown_dataset"


class JobNotFound(APIError):
    status_code, code = 404, "job_not_found"


class JobFinished(APIError):
    status_code, code = 409, "job_finished"


class VersionNotFound(APIError):
    status_code, code = 404, "version_not_found"


class ActivationFailed(APIError):
    status_code, code = 409, "activation_failed"


class NoPreviousVersion(APIError):
    status_code, code = 409, "no_previous_version"


class QueueUnavailable(APIError):
    status_code, code = 503, "queue_unavailable"


class RequestNotFound(APIError):
    status_code, code = 404, "request_not_found"


class InvalidFeedback(APIError):
    status_code, code = 422, "invalid_feedback"


class FeedbackReviewed(APIError):  # a client may not replace a correction an admin reviewed
    status_code, code = 409, "feedback_reviewed"


class FeedbackNotFound(APIError):
    status_code, code = 404, "feedback_not_found"


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):  # the body of every error response
    error: ErrorDetail


# An absolute path of two or more parts, not part of a longer word or URL.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/[\w.@+-]+(?:/[\w.@+-]+)+")


def hide_paths(text: str) -> str:
    """``text`` without this machine's absolute paths: a path under the working directory is
    given relative to it (``model_store/demo/...``), any other one by its last part
    (``.../model.safetensors``). Strings that look like paths but do not start at a folder
    of this machine (``/v1/parse/batch``) are left alone."""
    cwd = os.getcwd()

    def local(match: re.Match[str]) -> str:
        path = match.group(0)
        if not os.path.isdir("/" + path.split("/", 2)[1]):
            return path
        if path.startswith(cwd + "/"):
            return path[len(cwd) + 1 :]
        return ".../" + PurePosixPath(path).name

    return _ABSOLUTE_PATH.sub(local, text)


def error_body(code: str, message: str) -> dict[str, Any]:
    """The one error shape. Messages may quote what the client sent (a model or field name);
    lone surrogates in it (from ``"\\ud800"`` escapes) are written as escapes, since UTF-8
    cannot encode them and rendering the error would otherwise fail with a 500. Absolute
    paths of this machine (in an artifact's load error, say) are not shown."""
    safe = hide_paths(message.encode("utf-8", "backslashreplace").decode("utf-8"))
    return {"error": {"code": code, "message": safe}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


BODY_NOT_DECODABLE = "request body is not valid UTF-8 JSON"


def validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    """Status, code and a readable message for the first validation error."""
    errors = list(exc.errors())
    first = errors[0] if errors else {"type": "unknown", "loc": (), "msg": "invalid request"}
    kind = str(first.get("type", ""))
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if kind == "json_invalid":
        return 400, "invalid_json", "request body is not valid JSON"
    if kind == "extra_forbidden":
        return 422, "unknown_field", f"unknown field '{loc}'"
    if kind == "missing":
        return 422, "missing_field", f"missing field '{loc}'" if loc else "missing request body"
    where = f" at '{loc}'" if loc else ""
    return 422, "validation_error", f"{first.get('msg', 'invalid value')}{where}"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the one JSON shape; nothing a client sends yields a 500."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, message = validation_message(exc)
        return error_response(status, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not UTF-8 (or not decodable at all).
            return error_response(400, "invalid_json", BODY_NOT_DECODABLE)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The id the guard middleware gave the request, else a new one: the client gets it
        # and it is in the log line with the traceback, so the two can be matched.
        request_id = str(request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex)
        log.exception(
            "unhandled error on %s %s, request id %s",
            request.method,
            request.url.path,
            request_id,
        )
        message = f"internal error; request id {request_id} is in the server log"
        # The connection closes: whatever failed may have left it in an unknown state.
        headers = {"connection": "close", "x-request-id": request_id}
        return error_response(500, "internal_error", message, headers)
