"""The JSON routes behind the console: bounded parameters in the one error shape, the review
queue, and the export of accepted corrections in the JSON lines training format."""

from __future__ import annotations

import json

import pytest
from admin_support import AUTH, wait_for
from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    "query",
    [
        "cursor=9223372036854775808",
        "cursor=0",
        "limit=0",
        "limit=501",
        "max_confidence=1.5",
        "since=yesterday",
        "q=" + "x" * 201,
        "model=a%20b",
        "q=a%00b",
    ],
)
def test_bad_parameters_are_422_in_the_one_shape(client: TestClient, query: str) -> None:
    response = client.get(f"/v1/admin/requests?{query}", headers=AUTH)
    assert response.status_code == 422, response.text
    assert set(response.json()["error"]) == {"code", "message"}


def test_accepted_corrections_export_as_json_lines(client: TestClient) -> None:
    text = "book a table for 2 at 7pm"
    request_id = client.post("/v1/parse", json={"text": text}).json()["request_id"]
    wait_for(lambda: client.get("/v1/admin/review", headers=AUTH).json()["requests"], 10, "the log")
    queue = client.get("/v1/admin/review", headers=AUTH).json()["requests"]
    assert [r["request_id"] for r in queue] == [request_id]
    assert queue[0]["text"] == text and queue[0]["correction"] is None

    slots = [{"slot": "party_size", "start": 17, "end": 18}]
    body = {"request_id": request_id, "intent": "book_table", "slots": slots}
    receipt = client.post("/v1/feedback", json=body).json()
    assert client.get("/v1/admin/feedback/export", headers=AUTH).text == ""  # pending
    client.post(f"/v1/admin/feedback/{receipt['id']}/accept", headers=AUTH)
    export = client.get("/v1/admin/feedback/export?model=demo", headers=AUTH)
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert lines == [{"text": text, "intents": ["book_table"], "spans": slots}]
    assert client.get("/v1/admin/feedback/export?model=other", headers=AUTH).text == ""
