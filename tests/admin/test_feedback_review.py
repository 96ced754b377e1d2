"""Issue 17 item 3 and issue 16: ``POST /v1/feedback`` keeps the logged text private, one
correction per request, tied to the model that parsed, pending until an admin accepts it, and
only accepted corrections reach training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from admin_support import AUTH, wait_for
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db import Feedback
from app.db.repository import get_request_log
from app.operating.feedback import export_with_feedback

pytestmark = pytest.mark.timeout(120)

TEXT = "Book a table for 2 at 7:30pm, please!"
WORDS = ("Book", "table", "7:30pm", "please")


def _parse(client: TestClient, sessions: sessionmaker[Session], text: str = TEXT) -> dict[str, Any]:
    response = client.post("/v1/parse", json={"text": text})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()

    def logged() -> bool:
        with sessions() as session:
            return get_request_log(session, body["request_id"]) is not None

    wait_for(logged, 10, "the request-log row")
    return body


def _rows(sessions: sessionmaker[Session]) -> list[Feedback]:
    with sessions() as session:
        return list(session.query(Feedback).order_by(Feedback.id))


def test_feedback_answer_and_errors_reveal_nothing_of_the_logged_text(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    request_id = _parse(client, sessions)["request_id"]
    response = client.post("/v1/feedback", json={"request_id": request_id, "intent": "greet"})
    assert response.status_code == 201, response.text
    assert "text" not in response.json()
    # Probing spans must not read the text back either: no words, no length, no value.
    for slot in (
        {"slot": "x", "start": 1, "end": 4},
        {"slot": "x", "start": 0, "end": 999},
        {"slot": "x", "start": 0, "end": 4, "value": "Cook"},
    ):
        bad = client.post("/v1/feedback", json={"request_id": request_id, "slots": [slot]})
        assert bad.status_code == 422, bad.text
        message = bad.json()["error"]["message"]
        assert not any(word in message for word in WORDS), message
        assert str(len(TEXT)) not in message, message
    for body in (response.json(),):
        assert not any(word in str(body) for word in WORDS)


def test_a_second_correction_replaces_the_first(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    request_id = _parse(client, sessions)["request_id"]
    first = client.post("/v1/feedback", json={"request_id": request_id, "intent": "greet"})
    second = client.post("/v1/feedback", json={"request_id": request_id, "sentiment": "positive"})
    assert first.status_code == second.status_code == 201, second.text
    rows = _rows(sessions)
    assert len(rows) == 1
    assert (rows[0].intent, rows[0].sentiment) == (None, "positive")


def test_a_correction_is_tied_to_the_model_that_parsed(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    parsed = _parse(client, sessions)
    response = client.post("/v1/feedback", json={"request_id": parsed["request_id"], "intent": "x"})
    model = f"{parsed['model']['name']}@{parsed['model']['version']}"
    assert response.json()["model"] == model
    assert _rows(sessions)[0].model == model


def test_corrections_are_pending_until_accepted_and_only_accepted_ones_train(
    client: TestClient, sessions: sessionmaker[Session], data_dir: Path, tmp_path: Path
) -> None:
    ids = [_parse(client, sessions, f"book a table for {n} at 7pm")["request_id"] for n in (2, 3)]
    slots = [{"slot": "party_size", "start": 17, "end": 18}]
    made = [client.post("/v1/feedback", json={"request_id": i, "slots": slots}).json() for i in ids]
    assert [m["status"] for m in made] == ["pending", "pending"]
    _, added = export_with_feedback(sessions, data_dir / "tiny", "slots", tmp_path / "a", "demo")
    assert added == 0

    accepted = client.post(f"/v1/admin/feedback/{made[0]['id']}/accept", headers=AUTH)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    rejected = client.post(f"/v1/admin/feedback/{made[1]['id']}/reject", headers=AUTH)
    assert rejected.json()["status"] == "rejected"
    dest, added = export_with_feedback(sessions, data_dir / "tiny", "slots", tmp_path / "b", "demo")
    assert added == 1
    assert (dest / "train" / "seq.in").read_text().splitlines()[-1] == "book a table for 2 at 7pm"
    # Corrections of another model's parses do not train this one.
    _, added = export_with_feedback(sessions, data_dir / "tiny", "slots", tmp_path / "c", "other")
    assert added == 0

    # A client cannot overwrite a correction an admin reviewed.
    again = client.post("/v1/feedback", json={"request_id": ids[0], "intent": "greet"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "feedback_reviewed"
    assert client.post(f"/v1/admin/feedback/{made[0]['id']}/accept").status_code == 401
