"""Request-log rows written by the running app, on SQLite and on PostgreSQL.

Leaving the ``TestClient`` block runs the app's shutdown, which stops the writer after it has
stored every queued row; the rows are read after that.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from app_support import VERSION, MakeSettings, log_rows, migrate, settings_factory
from fastapi.testclient import TestClient

from app.main import create_app

pytestmark = pytest.mark.timeout(60)

MODEL_VERSIONS = {"tagger": f"tiny@{VERSION}", "sentiment": f"tiny-sentiment@{VERSION}"}
JSON = "application/json"
SLOTTED = "book a table for two at 7pm"  # the tiny tagger finds party_size and time here


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def log_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty log database: a SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    migrate(url)
    return url


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_rows_for_served_and_failed_requests(
    log_db_url: str, model_store: Path, tmp_path: Path
) -> None:
    settings = settings_factory(model_store, log_db_url, tmp_path / "spill")()
    with TestClient(create_app(settings)) as client:
        single = ok(client.post("/v1/parse", json={"text": SLOTTED}))
        batch = ok(client.post("/v1/parse/batch", json={"texts": ["hello", "Table for 2 🍕"]}))
        rasa = ok(client.post("/model/parse", json={"text": "hello there", "message_id": "m"}))
        failures = [
            client.post("/v1/parse", json={"text": " "}),
            client.post("/v1/parse/batch", content=b"{}", headers={"content-type": "text/plain"}),
            client.post("/model/parse", json={"text": "hello", "model": "nope"}),
            client.post("/v1/parse", content=b" " * 5000, headers={"content-type": JSON}),
            client.post(  # chunked: no Content-Length, the limit trips while reading
                "/v1/parse/batch", content=iter([b" "] * 5000), headers={"content-type": JSON}
            ),
        ]
        assert client.get("/livez").status_code == 200  # not a logged route
        assert client.get("/v1/models").status_code == 200  # not a logged route
    rows = log_rows(log_db_url)

    assert [(r.route, r.status_code) for r in rows] == [
        ("/v1/parse", 200),
        ("/v1/parse/batch", 200),
        ("/model/parse", 200),
        ("/v1/parse", 422),
        ("/v1/parse/batch", 415),
        ("/model/parse", 404),
        ("/v1/parse", 413),
        ("/v1/parse/batch", 413),
    ]
    assert [f.status_code for f in failures] == [422, 415, 404, 413, 413]
    for row in rows:
        assert 0 < row.latency_ms < 60_000
        assert row.text_mode == "full"
        assert row.client == "testclient"
        assert row.created_at is not None
        assert row.created_at.tzinfo is not None
    assert len({r.request_id for r in rows}) == len(rows)

    served, failed = rows[:3], rows[3:]
    assert [r.model_versions for r in served] == [MODEL_VERSIONS] * 3
    assert served[0].request_id == single["request_id"]
    assert served[0].text == SLOTTED
    assert served[0].response == single
    assert served[1].request_id == batch["results"][0]["request_id"]
    assert served[1].text == "hello\nTable for 2 🍕"
    assert served[1].response == batch
    assert served[2].text == "hello there"
    assert served[2].response["intent"] == rasa["intent"]
    for row in failed:
        assert (row.text, row.response, row.model_versions) == ("", None, None)


def _slot_values(results: list[dict[str, Any]]) -> list[str]:
    return [slot["value"] for result in results for slot in result["slots"]]


def test_redact_slots_removes_values_from_text_and_response(make_settings: MakeSettings) -> None:
    settings = make_settings(log_redaction="redact_slots")
    texts = ["table for two at 7pm please", "hello"]
    with TestClient(create_app(settings)) as client:
        single = ok(client.post("/v1/parse", json={"text": SLOTTED}))
        batch = ok(client.post("/v1/parse/batch", json={"texts": texts}))
    rows = log_rows(settings.database_url)

    assert len(rows) == 2
    assert sorted(_slot_values([single])) == ["7pm", "two"]  # so the check below means something
    assert rows[0].text == "book a table for <party_size> at <time>"
    assert rows[1].text == "table for <party_size> at <time> please\nhello"
    for row, results in ((rows[0], [single]), (rows[1], batch["results"])):
        assert row.text_mode == "redact_slots"
        stored = json.dumps(row.response, ensure_ascii=False)
        for value in _slot_values(results):
            assert value not in row.text
            assert value not in stored
    assert rows[0].response["intent"] == single["intent"]
    assert [s["slot"] for s in rows[0].response["slots"]] == [s["slot"] for s in single["slots"]]
    assert "text" not in rows[0].response
    assert "tokens" not in rows[0].response


def test_hash_stores_sha256_of_the_text(make_settings: MakeSettings) -> None:
    settings = make_settings(log_redaction="hash")
    text = "Book a table for TWO at 7pm, Zürich ☕"
    with TestClient(create_app(settings)) as client:
        body = ok(client.post("/v1/parse", json={"text": text}))
        client.post("/v1/parse", json={"text": ""})
    rows = log_rows(settings.database_url)

    assert [(r.status_code, r.text_mode) for r in rows] == [(200, "hash"), (422, "hash")]
    assert rows[0].text == hashlib.sha256(text.encode("utf-8")).hexdigest()
    stored = json.dumps(rows[0].response, ensure_ascii=False)
    assert "Zürich" not in stored
    for value in _slot_values([body]):
        assert value not in stored
    assert rows[0].response["model"] == body["model"]
