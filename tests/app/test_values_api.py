"""Resolved slot values in the API: ``normalized`` per slot on the user's clock, Rasa's
``value``/``additional_info``, slot types in ``GET /v1/models``, the request log, bad clocks."""

from __future__ import annotations

from typing import Any

import pytest
from app_support import MakeSettings, log_rows
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app

TEXT = "book a table for two at 7pm tomorrow"
NEW_YORK = {"reference_time": "2026-12-01T18:00:00-05:00", "timezone": "America/New_York"}


def slots_of(answer: dict[str, Any]) -> dict[str, Any]:
    return {s["slot"]: s["normalized"] for s in answer["slots"]}


def test_slots_are_resolved_on_the_users_clock(client: TestClient) -> None:
    answer = client.post("/v1/parse", json={"text": TEXT, **NEW_YORK}).json()
    slots = slots_of(answer)
    # the tiny tagger reads "7pm" as time and "tomorrow" as date (tests/data/tiny_slots)
    assert slots["party_size"] == {"type": "count", "value": 2}
    assert slots["date"] == {"type": "date", "value": "2026-12-02"}
    assert slots["time"] == {
        "type": "datetime",
        "value": "2026-12-02T19:00:00-05:00",  # 7pm on the day the date slot names
        "grain": "hour",
    }
    alone = slots_of(client.post("/v1/parse", json={"text": "a table at 7pm", **NEW_YORK}).json())
    assert alone["time"]["value"] == "2026-12-01T19:00:00-05:00"  # the next 7pm after 18:00


def test_a_slot_of_type_text_is_kept_as_written(client: TestClient) -> None:
    answer = client.post("/v1/parse", json={"text": "fly me to boston", **NEW_YORK}).json()
    cities = [s for s in answer["slots"] if s["slot"] == "to_city"]
    assert cities and cities[0]["normalized"] == {"type": "text", "value": cities[0]["value"]}


def test_the_batch_route_resolves_every_text(client: TestClient) -> None:
    body = {"texts": [TEXT, "a table for 4 at 8pm"], **NEW_YORK}
    results = client.post("/v1/parse/batch", json=body).json()["results"]
    assert slots_of(results[0])["party_size"]["value"] == 2
    assert slots_of(results[1])["party_size"] == {"type": "count", "value": 4}


def test_the_same_words_resolve_in_the_zone_asked_for(client: TestClient) -> None:
    utc_evening = {"reference_time": "2026-12-01T23:30:00+00:00"}
    tokyo = client.post("/v1/parse", json={"text": TEXT, **utc_evening, "timezone": "Asia/Tokyo"})
    london = client.post("/v1/parse", json={"text": TEXT, **utc_evening})  # default: UTC
    # 23:30 UTC is already 2 December in Tokyo: "tomorrow" is the 3rd there
    assert slots_of(tokyo.json())["date"]["value"] == "2026-12-03"
    assert slots_of(london.json())["date"]["value"] == "2026-12-02"


def test_the_default_zone_is_a_setting(make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(default_timezone="Asia/Tokyo"))) as client:
        answer = client.post(
            "/v1/parse", json={"text": TEXT, "reference_time": "2026-12-01T23:30:00+00:00"}
        ).json()
    # 08:30 on 2 December in Tokyo: "tomorrow" is the 3rd, and "7pm" with it
    assert slots_of(answer)["time"]["value"] == "2026-12-03T19:00:00+09:00"
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        Settings(default_timezone="Mars/Olympus")


def test_rasa_entities_carry_the_resolved_value(client: TestClient) -> None:
    answer = client.post("/model/parse", json={"text": TEXT, **NEW_YORK}).json()
    entities = {e["entity"]: e for e in answer["entities"]}
    assert entities["party_size"]["value"] == 2
    assert entities["party_size"]["additional_info"] == {"type": "count", "value": 2}
    assert entities["time"]["value"] == "2026-12-02T19:00:00-05:00"
    assert entities["time"]["additional_info"]["grain"] == "hour"


def test_models_list_their_slot_types(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["tiny"]["slot_types"] == {
        "date": "date",
        "issue": "text",
        "party_size": "count",
        "time": "datetime",
        "to_city": "text",
    }


@pytest.mark.parametrize(
    "clock",
    [
        {"timezone": "Mars/Olympus"},
        {"timezone": ""},
        {"reference_time": "2026-12-01T18:00:00"},  # no offset
        {"reference_time": "10000-01-01T00:00:00+00:00"},
        {"reference_time": 1764630000},
        {"reference_time": "tomorrow"},
    ],
)
@pytest.mark.parametrize("route", ["/v1/parse", "/v1/parse/batch", "/model/parse"])
def test_a_bad_clock_is_a_422_in_the_one_error_shape(
    client: TestClient, route: str, clock: dict[str, Any]
) -> None:
    body = ({"texts": [TEXT]} if route.endswith("batch") else {"text": TEXT}) | clock
    response = client.post(route, json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert set(error) >= {"code", "message"}
    assert next(iter(clock)) in error["message"]


def test_the_request_log_keeps_the_resolved_values(make_settings: MakeSettings) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/parse", json={"text": TEXT, **NEW_YORK}).status_code == 200
    rows = log_rows(settings.database_url)
    assert rows and rows[-1].response is not None
    assert slots_of(rows[-1].response)["party_size"] == {"type": "count", "value": 2}
