"""Errors always have the one shape (issue 17, item 7), in-process.

Integer parameters are bounded (a 422, not a database overflow and a 500); a 500 closes the
connection and gives the request id that its log line carries; bodies with a byte-order mark,
in UTF-16/32 or with duplicate keys are refused with 400 instead of guessed at; trailing-slash
paths are a 404, not a redirect built from the Host header; the OpenAPI document declares the
limits of ``text`` and ``texts`` and every status the guard answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from app_support import MAX_BATCH_ITEMS, MAX_TEXT_CHARS, MakeSettings
from fastapi.testclient import TestClient

from app.main import create_app

pytestmark = pytest.mark.timeout(120)

TOKEN = "error-shape-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"content-type": "application/json"}
HUGE = "9223372036854775808"  # 2**63: one past PostgreSQL's bigint and SQLite's INTEGER


@pytest.fixture
def client(make_settings: MakeSettings, tmp_path: Any) -> Iterator[TestClient]:
    app = create_app(make_settings(admin_token=TOKEN, data_dir=tmp_path / "no-data"))

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom, include_in_schema=False)  # a bug in a handler
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


@pytest.mark.parametrize(
    "query",
    [
        f"/v1/admin/feedback?offset={HUGE}",
        f"/v1/admin/feedback?limit={HUGE}",
        f"/v1/admin/feedback?offset=-{HUGE}",
        f"/v1/admin/jobs?limit={HUGE}",
    ],
)
def test_integer_parameters_are_bounded(client: TestClient, query: str) -> None:
    assert_error(client.get(query, headers=AUTH), 422, "validation_error")


@pytest.mark.parametrize("field", ["seed", "patience", "lr_patience", "min_word_count"])
def test_integer_hyperparameters_are_bounded(client: TestClient, field: str) -> None:
    body = {"task": "slots", "model": "m", "dataset": "d", "hyperparameters": {field: 2**63}}
    response = client.post("/v1/admin/train", json=body, headers=AUTH)
    assert_error(response, 422, "validation_error")  # before the data set is looked up


def test_a_500_closes_the_connection_and_names_its_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="slotfill"):
        response = client.get("/boom")
    body = assert_error(response, 500, "internal_error")
    assert response.headers["connection"] == "close"
    request_id = response.headers["x-request-id"]
    assert len(request_id) >= 16 and request_id in body["error"]["message"]
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None, caplog.text


BAD_BODIES = {
    "utf8-bom": b"\xef\xbb\xbf" + json.dumps({"text": "hi"}).encode(),
    "utf16-bom": json.dumps({"text": "hi"}).encode("utf-16"),
    "utf16-le": json.dumps({"text": "hi"}).encode("utf-16-le"),
    "utf16-be": json.dumps({"text": "hi"}).encode("utf-16-be"),
    "utf32": json.dumps({"text": "hi"}).encode("utf-32"),
    "duplicate-key": b'{"text": "hi", "text": "book a table"}',
    "duplicate-nested-key": b'{"texts": ["hi"], "model": "tiny", "model": "tiny2"}',
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
@pytest.mark.parametrize("path", ["/v1/parse", "/v1/parse/batch", "/model/parse", "/v1/feedback"])
def test_ambiguous_json_bodies_are_refused(client: TestClient, name: str, path: str) -> None:
    response = client.post(path, content=BAD_BODIES[name], headers=JSON)
    assert_error(response, 400, "invalid_json")
    # The same request in plain UTF-8 is taken (or refused for what it says, not how).
    assert client.post(path, content=b'{"text": "hi"}', headers=JSON).status_code != 400


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/models/"), ("POST", "/v1/parse/"), ("GET", "/livez/")]
)
def test_trailing_slashes_are_not_redirected(client: TestClient, method: str, path: str) -> None:
    response = client.request(
        method, path, json={"text": "hi"} if method == "POST" else None, follow_redirects=False
    )
    assert_error(response, 404, "not_found")
    assert "location" not in response.headers


def test_openapi_declares_the_text_limits(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("ParseRequest", "RasaParseRequest"):
        text = schemas[name]["properties"]["text"]
        assert (text["minLength"], text["maxLength"]) == (1, MAX_TEXT_CHARS)
    texts = schemas["BatchParseRequest"]["properties"]["texts"]
    assert (texts["minItems"], texts["maxItems"]) == (1, MAX_BATCH_ITEMS)
    assert texts["items"]["maxLength"] == MAX_TEXT_CHARS


def test_openapi_declares_the_guard_statuses(client: TestClient) -> None:
    """Every route the guard middleware limits documents what it may answer."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            assert "500" in declared, (method, path)
            if path not in ("/livez", "/readyz", "/metrics"):
                assert {"400", "408", "413", "415", "503"} <= declared, (method, path)
