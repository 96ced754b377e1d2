"""The dialogue context on the parse routes (validated, fed to the tagger, logged), the
multi-label ``intents`` list, and Rasa synonyms served as canonical values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from app_support import VERSION, log_rows, migrate, settings_factory
from fastapi.testclient import TestClient

from app.main import create_app
from training.config import SlotTrainConfig
from training.pipeline import train_folder

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]
RASA = REPO / "tests" / "data" / "rasa_booking"
TINY: dict[str, Any] = {
    "word_dim": 16,
    "char_dim": 8,
    "char_filters": 8,
    "hidden_size": 24,
    "pretrained_vectors": "none",
    "threads": 1,
    "ema_decay": None,
    "word_dropout": 0.0,
    "dropout": 0.1,
    "lr": 0.01,
    "batch_size": 8,
}


def row(text: str, spans: list[tuple[int, int, str]], intents: list[str], asked: list[str]) -> str:
    item: dict[str, Any] = {"text": text, "intents": intents}
    item["spans"] = [{"start": a, "end": b, "slot": s} for a, b, s in spans]
    if asked:
        item["context"] = {"requested_slots": asked}
    return json.dumps(item) + "\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dialog``: multi-label intents and a bare number read by the requested slot;
    ``booking``: the Rasa fixture, with its synonyms."""
    root = tmp_path_factory.mktemp("context_store")
    data = root / "data"
    data.mkdir()
    lines = []
    for n in range(1, 25):
        for slot in ("time", "people"):
            lines.append(row(str(n), [(0, len(str(n)), slot)], ["inform"], [slot]))
    for n in range(1, 10):
        lines.append(row(f"hi for {n} people", [(7, 8, "people")], ["greet", "inform"], []))
        lines.append(row(f"hi at {n} pm", [(6, 7, "time")], ["greet", "inform"], []))
        lines.append(row("hi there", [], ["greet"], []))
    (data / "train.jsonl").write_text("".join(lines))
    (data / "valid.jsonl").write_text("".join(lines[:12] + lines[-6:]))
    config = SlotTrainConfig(**TINY, epochs=25, patience=25)
    train_folder("slots", data, config, root / "dialog" / VERSION)
    train_folder("slots", RASA, SlotTrainConfig(**TINY, epochs=40), root / "booking" / VERSION)
    return root


@pytest.fixture(scope="module")
def client(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'log.db'}"
    migrate(url)
    settings = settings_factory(store, url, tmp_path_factory.mktemp("spill"))
    app = create_app(settings(default_model="dialog", sentiment_model=None))
    with TestClient(app) as test_client:
        yield test_client


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_requested_slot_decides_the_slot(client: TestClient) -> None:
    def slots(asked: str) -> list[str]:
        body = ok(
            client.post("/v1/parse", json={"text": "7", "context": {"requested_slots": [asked]}})
        )
        return [s["slot"] for s in body["slots"]]

    assert slots("time") == ["time"]
    assert slots("people") == ["people"]
    batch = ok(
        client.post(
            "/v1/parse/batch", json={"texts": ["7", "9"], "context": {"requested_slots": ["time"]}}
        )
    )
    assert [[s["slot"] for s in r["slots"]] for r in batch["results"]] == [["time"], ["time"]]
    rasa = ok(
        client.post("/model/parse", json={"text": "7", "context": {"requested_slots": ["people"]}})
    )
    assert [e["entity"] for e in rasa["entities"]] == ["people"]


@pytest.mark.parametrize(
    "route,body",
    [
        ("/v1/parse", {"text": "7"}),
        ("/v1/parse/batch", {"texts": ["7"]}),
        ("/model/parse", {"text": "7"}),
    ],
)
def test_unknown_requested_slots_are_422_in_the_one_error_shape(
    client: TestClient, route: str, body: dict[str, Any]
) -> None:
    response = client.post(route, json=body | {"context": {"requested_slots": ["time", "colour"]}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_slot"
    assert "'colour' is not a slot of model 'dialog'" in error["message"]
    bad = client.post(route, json=body | {"context": {"requested_slots": "time"}})
    assert bad.status_code == 422 and set(bad.json()) == {"error"}
    extra = client.post(route, json=body | {"context": {"asked": ["time"]}})
    assert extra.status_code == 422 and set(extra.json()) == {"error"}


def test_multi_label_intents_and_the_top_one(client: TestClient) -> None:
    body = ok(client.post("/v1/parse", json={"text": "hi for 3 people"}))
    names = [i["name"] for i in body["intents"]]
    assert set(names) == {"greet", "inform"}
    confidences = [i["confidence"] for i in body["intents"]]
    assert confidences == sorted(confidences, reverse=True)
    assert body["intent"] == body["intents"][0] == body["intent_ranking"][0]
    rasa = ok(client.post("/model/parse", json={"text": "hi for 3 people"}))
    assert set(rasa) == {"text", "intent", "intent_ranking", "entities", "message_id"}


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_request_log_stores_the_context(
    store: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'log.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    migrate(url)
    settings = settings_factory(store, url, tmp_path / "spill")
    asked = {"requested_slots": ["people"]}
    with TestClient(create_app(settings(default_model="dialog", sentiment_model=None))) as c:
        ok(c.post("/v1/parse", json={"text": "12", "context": asked}))
        ok(c.post("/v1/parse/batch", json={"texts": ["3", "4"], "context": asked}))
        ok(c.post("/v1/parse", json={"text": "12 then"}))
        assert (
            c.post(
                "/v1/parse", json={"text": "1", "context": {"requested_slots": ["x"]}}
            ).status_code
            == 422
        )
    rows = {r.text: r for r in log_rows(url) if r.status_code == 200}
    assert rows["12"].context == asked
    assert rows["3\n4"].context == asked
    assert rows["12 then"].context is None


def test_a_rasa_synonym_is_served_as_the_canonical_value(store: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    settings = settings_factory(store, url, tmp_path / "spill")
    with TestClient(create_app(settings(default_model="booking", sentiment_model=None))) as c:
        body = ok(c.post("/v1/parse", json={"text": "reserve a veggie place for 5"}))
        cuisine = [s for s in body["slots"] if s["slot"] == "cuisine"]
        assert [(s["value"], s["canonical"]) for s in cuisine] == [("veggie", "vegetarian")]
        rasa = ok(c.post("/model/parse", json={"text": "reserve a veggie place for 5"}))
        [entity] = [e for e in rasa["entities"] if e["entity"] == "cuisine"]
        assert (entity["value"], entity["processors"]) == ("vegetarian", ["EntitySynonymMapper"])
        plain = ok(c.post("/v1/parse", json={"text": "book italian for 3 people"}))
        assert all(s["canonical"] is None for s in plain["slots"] if s["value"] == "italian")
        plain_rasa = ok(c.post("/model/parse", json={"text": "book italian for 3 people"}))
        assert all(e.get("processors") is None for e in plain_rasa["entities"])
    shutil.rmtree(tmp_path / "spill", ignore_errors=True)
