"""One request's cost is bounded: characters and tokens of all its texts together, not only
its number of items; and the request log stores a bounded answer per row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from app_support import MakeSettings, log_rows
from fastapi.testclient import TestClient

from app.main import create_app

pytestmark = pytest.mark.timeout(120)

MAX_RESPONSE_BYTES = 65_536  # the largest answer a row stores, as documented
# The service's default limits, not the small ones of the other app tests.
DEFAULTS = {"max_text_chars": 2000, "max_batch_items": 64, "max_body_bytes": 65536}


def test_a_batch_of_long_texts_is_refused_by_its_total_size(make_settings: MakeSettings) -> None:
    """31 texts of 2,000 "!" pass every per-item limit: 62,000 tokens in one request."""
    with TestClient(create_app(make_settings(**DEFAULTS))) as client:
        response = client.post("/v1/parse/batch", json={"texts": ["!" * 2000] * 31})
        assert response.status_code == 422, response.text[:300]
        error = response.json()["error"]
        assert error["code"] == "request_too_large"
        assert "62000 characters" in error["message"]
        assert "16000" in error["message"]


def test_the_token_limit_counts_every_text(make_settings: MakeSettings) -> None:
    settings = make_settings(**DEFAULTS, max_request_tokens=12)
    with TestClient(create_app(settings)) as client:
        six = "book a table for two please"
        assert client.post("/v1/parse/batch", json={"texts": [six, six]}).status_code == 200
        over = client.post("/v1/parse/batch", json={"texts": [six, six, "hi"]})
        assert over.status_code == 422
        assert over.json()["error"] == {
            "code": "request_too_large",
            "message": "the texts have 13 tokens in all; the limit per request is 12",
        }
        single = client.post("/v1/parse", json={"text": " ".join(["word"] * 13)})
        assert single.status_code == 422
        assert single.json()["error"]["code"] == "request_too_large"


def test_the_logged_answer_is_bounded(make_settings: MakeSettings, tmp_path: Path) -> None:
    """A text of 2,000 one-character tokens answers ~90 KB: the row keeps a slimmed copy."""
    settings = make_settings(**DEFAULTS)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/parse", json={"text": "!" * 2000})
        assert response.status_code == 200
        answer = response.json()
    assert len(response.content) > MAX_RESPONSE_BYTES
    [row] = log_rows(settings.database_url)
    stored = row.response
    assert len(json.dumps(stored, separators=(",", ":"))) <= MAX_RESPONSE_BYTES
    assert stored["truncated"] is True
    assert stored["bytes"] > MAX_RESPONSE_BYTES
    assert stored["intent"] == answer["intent"]
    assert stored["request_id"] == answer["request_id"] == row.request_id
    assert "tokens" not in stored
