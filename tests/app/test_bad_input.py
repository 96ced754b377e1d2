"""Bad requests: each gets its exact status and ``{"error": {"code", "message"}}`` body, never a
500, and the service keeps working afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from app_support import MAX_BATCH_ITEMS, MAX_BODY_BYTES, MAX_TEXT_CHARS
from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(60)

JSON = {"content-type": "application/json"}
TOO_BIG = f"request body over {MAX_BODY_BYTES} bytes"
BIG_BODY = json.dumps({"text": "a" * (MAX_BODY_BYTES + 10)}).encode()


def chunks() -> Iterator[bytes]:
    """A body over the limit, streamed: httpx sends it chunked, without Content-Length."""
    yield b'{"text": "'
    for _ in range(4):
        yield b"a" * (MAX_BODY_BYTES // 2)
    yield b'"}'


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# (method, path, request kwargs for httpx, status, code, message)
CASES = [
    # --- text content
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": ""}},
        422,
        "empty_text",
        "'text' is empty or whitespace",
        id="empty-text",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": " \t\n\u3000 "}},
        422,
        "empty_text",
        "'text' is empty or whitespace",
        id="whitespace-text",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": "a" * (MAX_TEXT_CHARS + 1)}},
        422,
        "text_too_long",
        f"'text' has {MAX_TEXT_CHARS + 1} characters; the limit is {MAX_TEXT_CHARS}",
        id="text-too-long",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b'{"text": "a\\ud800b"}', "headers": JSON},
        422,
        "invalid_text",
        "'text' is not valid Unicode text (surrogates not allowed)",
        id="lone-surrogate",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": "a\u0000b"}},
        422,
        "invalid_text",
        "'text' contains a NUL character",
        id="nul-byte",
    ),
    pytest.param(
        "POST",
        "/model/parse",
        {"json": {"text": "   "}},
        422,
        "empty_text",
        "'text' is empty or whitespace",
        id="rasa-whitespace",
    ),
    # --- batches
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"json": {"texts": []}},
        422,
        "empty_batch",
        "expected at least one text in 'texts'",
        id="empty-batch",
    ),
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"json": {"texts": ["hello"] * (MAX_BATCH_ITEMS + 1)}},
        422,
        "too_many_items",
        f"at most {MAX_BATCH_ITEMS} texts per batch, got {MAX_BATCH_ITEMS + 1}",
        id="too-many-items",
    ),
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"json": {"texts": ["hello", " "]}},
        422,
        "empty_text",
        "'texts[1]' is empty or whitespace",
        id="batch-item-whitespace",
    ),
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"json": {"texts": ["hello", "b" * (MAX_TEXT_CHARS + 1)]}},
        422,
        "text_too_long",
        f"'texts[1]' has {MAX_TEXT_CHARS + 1} characters; the limit is {MAX_TEXT_CHARS}",
        id="batch-item-too-long",
    ),
    # --- JSON structure and types
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b'{"text": ', "headers": JSON},
        400,
        "invalid_json",
        "request body is not valid JSON",
        id="invalid-json",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b'{"text": "\xff"}', "headers": JSON},
        400,
        "invalid_json",
        "request body is not valid UTF-8 JSON",
        id="invalid-utf8",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b"", "headers": JSON},
        422,
        "missing_field",
        "missing request body",
        id="empty-body",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {}},
        422,
        "missing_field",
        "missing field 'text'",
        id="missing-text",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": 5}},
        422,
        "validation_error",
        "Input should be a valid string at 'text'",
        id="text-not-string",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": "hello", "model": 5}},
        422,
        "validation_error",
        "Input should be a valid string at 'model'",
        id="model-not-string",
    ),
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"json": {"texts": "x"}},
        422,
        "validation_error",
        "Input should be a valid list at 'texts'",
        id="texts-not-list",
    ),
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"json": {"texts": ["hello", 1]}},
        422,
        "validation_error",
        "Input should be a valid string at 'texts.1'",
        id="texts-item-not-string",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": ["hello"]},
        422,
        "validation_error",
        "Input should be a valid dictionary or object to extract fields from",
        id="body-not-object",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": "hello", "lang": "en"}},
        422,
        "unknown_field",
        "unknown field 'lang'",
        id="unknown-field",
    ),
    pytest.param(
        "POST",
        "/model/parse",
        {"json": {"text": "hello", "sender": "me"}},
        422,
        "unknown_field",
        "unknown field 'sender'",
        id="rasa-unknown-field",
    ),
    # --- models
    pytest.param(
        "POST",
        "/v1/parse",
        {"json": {"text": "hello", "model": "nope"}},
        404,
        "model_not_found",
        "model 'nope' is not served; served models: tiny, tiny2",
        id="unknown-model",
    ),
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"json": {"texts": ["hello"], "model": "tiny-sentiment"}},
        404,
        "model_not_found",
        "model 'tiny-sentiment' is not served; served models: tiny, tiny2",
        id="sentiment-model-as-tagger",
    ),
    # --- content type
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b'{"text": "hello"}', "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
        "expected Content-Type: application/json",
        id="text-plain",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b'{"text": "hello"}'},
        415,
        "unsupported_media_type",
        "expected Content-Type: application/json",
        id="no-content-type",
    ),
    pytest.param(
        "POST",
        "/v1/parse/batch",
        {"data": {"texts": "hello"}},
        415,
        "unsupported_media_type",
        "expected Content-Type: application/json",
        id="form-data",
    ),
    # --- body size
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": BIG_BODY, "headers": JSON},
        413,
        "payload_too_large",
        TOO_BIG,
        id="body-too-large",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": chunks, "headers": JSON},  # called per run: a generator runs once
        413,
        "payload_too_large",
        TOO_BIG,
        id="chunked-body-too-large",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": BIG_BODY, "headers": {**JSON, "content-length": "10"}},
        413,
        "payload_too_large",
        TOO_BIG,
        id="content-length-understated",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b'{"text": "hello"}', "headers": {**JSON, "content-length": "99999"}},
        413,
        "payload_too_large",
        TOO_BIG,
        id="content-length-over-limit",
    ),
    pytest.param(
        "POST",
        "/v1/parse",
        {"content": b'{"text": "hello"}', "headers": {**JSON, "content-length": "ten"}},
        400,
        "bad_request",
        "invalid Content-Length header",
        id="content-length-not-a-number",
    ),
    # --- routing
    pytest.param(
        "GET",
        "/v1/parse",
        {},
        405,
        "method_not_allowed",
        "Method Not Allowed",
        id="get-on-post-route",
    ),
    pytest.param("GET", "/v2/parse", {}, 404, "not_found", "Not Found", id="unknown-route"),
    pytest.param(
        "POST",
        "/v1/parse/extra",
        {"json": {"text": "hello"}},
        404,
        "not_found",
        "Not Found",
        id="unknown-post-route",
    ),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "message"), CASES)
def test_bad_input_gets_exact_error(
    client: TestClient,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    code: str,
    message: str,
) -> None:
    if callable(kwargs.get("content")):
        kwargs = {**kwargs, "content": kwargs["content"]()}
    response = client.request(method, path, **kwargs)

    assert (response.status_code, response.json()) == (status, error(code, message))
    assert response.headers["content-type"] == "application/json"


def test_method_not_allowed_names_the_allowed_method(client: TestClient) -> None:
    response = client.get("/v1/parse/batch")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "application/vnd.api+json", "APPLICATION/JSON"],
)
def test_json_content_types_are_accepted(client: TestClient, content_type: str) -> None:
    response = client.post(
        "/v1/parse", content=b'{"text": "hello"}', headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text


def test_service_still_works_and_never_answered_500(client: TestClient) -> None:
    """Runs after the matrix in this module (same client): nothing it sent broke the app."""
    response = client.post("/v1/parse", json={"text": "book a table for two at 7pm"})
    assert response.status_code == 200
    assert response.json()["intent"]["name"] == "book_restaurant"
    metrics = client.get("/metrics").text
    assert 'status="400"' in metrics  # the matrix ran on this client
    assert 'status="5' not in metrics
