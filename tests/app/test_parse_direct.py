"""``POST /v1/parse`` with ``application/json`` is served by the guard middleware directly
(``parse_routes.parse_direct``); any other JSON media type still goes through FastAPI's route.
Both must answer alike, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(60)

BODIES = [
    b"",
    b"{}",
    b"[]",
    b'"x"',
    b"null",
    b'{"text": 1}',
    b'{"text": "hi", "extra": 1}',
    b'{"text": "hi", "n_best": 0}',
    b'{"text": "hi", "n_best": true}',
    b'{"text": "hi", "timezone": "Mars/Olympus"}',
    b'{"text": "hi", "reference_time": "2026-01-01T00:00:00"}',
    b'{"text": ""}',
    b'{"text": "a\\ud800b"}',
    b'{"text": "hi", "model": "nope"}',
    b'{"text": "hi", "context": []}',
    b'{"text": "hi", "context": {"requested_slots": ["nope"]}}',
    b'{"text": "book a table for two at 7pm", "n_best": 2}',
    b'{"text": "hi", "text": "ho"}',
    b'{"text": "hi"',
]


def answer(client: TestClient, body: bytes, media: str) -> tuple[int, Any, str | None]:
    response = client.post("/v1/parse", content=body, headers={"content-type": media})
    payload = response.json()
    if response.status_code == 200:
        payload.pop("request_id")
    return response.status_code, payload, response.headers.get("content-type")


@pytest.mark.parametrize("body", BODIES)
def test_direct_route_answers_as_fastapi(client: TestClient, body: bytes) -> None:
    direct = answer(client, body, "application/json")
    routed = answer(client, body, "application/x-slotfill-test+json")
    assert direct == routed
