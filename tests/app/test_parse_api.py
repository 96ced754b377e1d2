"""Parse routes, model list, health and metrics, served by the real tiny artifacts."""

from __future__ import annotations

import math
from typing import Any

import pytest
from app_support import VERSION
from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(60)

TAGGER_REF = f"tiny@{VERSION}"
SENTIMENT_REF = f"tiny-sentiment@{VERSION}"
INTENTS = {"book_restaurant", "complaint", "greet"}
SENTIMENTS = {"negative", "neutral", "positive"}

# Offsets must index the text exactly as sent, whatever its case, spacing and characters.
OFFSET_TEXTS = [
    pytest.param("book a table for two at 7pm", id="plain"),
    pytest.param("Book A Table For TWO at 7PM, please!!", id="mixed-case-punct"),
    pytest.param("  reserve   a table\tfor 4 \t tomorrow  ", id="spaces-tabs"),
    pytest.param("réserve une table à Zürich pour 2 ☕", id="non-ascii"),
    pytest.param("book a table for 2 🍕🍕 at 7pm", id="emoji"),
    pytest.param("cafe\u0301 table for two", id="combining-mark"),
    pytest.param("?!", id="punct-only"),
    pytest.param("\u200b", id="zero-width-space"),
]


def parse(client: TestClient, text: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/parse", json={"text": text, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def is_probability(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


def test_parse_response_shape(client: TestClient) -> None:
    body = parse(client, "book a table for two at 7pm")

    assert set(body) == {
        "text",
        "tokens",
        "intent",
        "intent_ranking",
        "slots",
        "sentiment",
        "model",
        "request_id",
        "hypotheses",
        "intents",
    }
    assert body["hypotheses"] is None  # only with n_best
    assert body["intents"] == [body["intent"]]  # a single-label model: its best intent
    assert body["text"] == "book a table for two at 7pm"
    assert isinstance(body["request_id"], str)
    assert len(body["request_id"]) == 32
    assert body["model"] == {
        "name": "tiny",
        "version": VERSION,
        "ref": TAGGER_REF,
        "sentiment": SENTIMENT_REF,
    }
    assert [t["text"] for t in body["tokens"]] == ["book", "a", "table", "for", "two", "at", "7pm"]
    for token in body["tokens"]:
        assert set(token) == {"text", "start", "end"}

    ranking = body["intent_ranking"]
    assert body["intent"] == ranking[0]
    assert {i["name"] for i in ranking} == INTENTS
    assert all(
        set(i) == {"name", "confidence"} and is_probability(i["confidence"]) for i in ranking
    )
    confidences = [i["confidence"] for i in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(confidences) == pytest.approx(1.0, abs=1e-5)

    assert body["slots"], "the tiny tagger finds slots in this training-like sentence"
    for slot in body["slots"]:
        assert set(slot) == {
            "slot",
            "value",
            "start",
            "end",
            "confidence",
            "normalized",
            "canonical",
        }
        assert slot["canonical"] is None  # the tiny data has no synonyms
        assert isinstance(slot["slot"], str)
        assert is_probability(slot["confidence"])

    sentiment = body["sentiment"]
    assert set(sentiment) == {"label", "confidence", "scores"}
    assert set(sentiment["scores"]) == SENTIMENTS
    assert sentiment["confidence"] == max(sentiment["scores"].values())
    assert sentiment["scores"][sentiment["label"]] == sentiment["confidence"]
    assert all(is_probability(p) for p in sentiment["scores"].values())


def test_request_ids_are_unique(client: TestClient) -> None:
    ids = {parse(client, "hello")["request_id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("text", OFFSET_TEXTS)
def test_offsets_index_the_text_as_sent(client: TestClient, text: str) -> None:
    body = parse(client, text)

    assert body["text"] == text
    assert body["tokens"]
    for token in body["tokens"]:
        assert text[token["start"] : token["end"]] == token["text"]
    for slot in body["slots"]:
        assert text[slot["start"] : slot["end"]] == slot["value"]
        assert is_probability(slot["confidence"])
    assert all(is_probability(i["confidence"]) for i in body["intent_ranking"])


def test_offsets_cover_slots_in_unusual_text(client: TestClient) -> None:
    """Guards the test above against passing vacuously: its texts do yield slots."""
    found = {
        (slot["slot"], slot["value"])
        for param in OFFSET_TEXTS
        for slot in parse(client, param.values[0])["slots"]
    }
    assert ("party_size", "TWO") in found  # mixed case keeps the user's characters
    assert ("time", "7PM") in found
    assert ("party_size", "4") in found  # after runs of spaces and tabs
    assert ("party_size", "2") in found  # after non-ASCII and next to emoji


def test_confidence_is_higher_for_in_domain_text(client: TestClient) -> None:
    easy = parse(client, "book a table for two at 7pm")
    unknown = parse(client, "qwzx vbnm plorf")

    assert easy["intent"]["name"] == "book_restaurant"
    assert easy["intent"]["confidence"] != unknown["intent"]["confidence"]
    assert easy["intent"]["confidence"] > unknown["intent"]["confidence"]


def test_model_can_be_chosen(client: TestClient) -> None:
    body = parse(client, "hello", model="tiny2")
    assert body["model"]["name"] == "tiny2"
    assert body["model"]["ref"] == f"tiny2@{VERSION}"


def _essentials(result: dict[str, Any]) -> tuple[object, ...]:
    return (
        result["text"],
        result["tokens"],
        [(i["name"], pytest.approx(i["confidence"], abs=1e-5)) for i in result["intent_ranking"]],
        [
            (s["slot"], s["value"], s["start"], s["end"], pytest.approx(s["confidence"], abs=1e-5))
            for s in result["slots"]
        ],
        result["sentiment"]["label"],
        result["model"],
    )


def test_batch_equals_singles_in_order(client: TestClient) -> None:
    texts = ["book a table for two at 7pm", "hello", "My flight to Miami was DELAYED!"]
    response = client.post("/v1/parse/batch", json={"texts": texts})
    assert response.status_code == 200, response.text
    results = response.json()["results"]

    assert [r["text"] for r in results] == texts
    assert len({r["request_id"] for r in results}) == 1
    singles = [parse(client, text) for text in texts]
    assert [_essentials(r) for r in results] == [_essentials(s) for s in singles]


def test_rasa_compatible_shape(client: TestClient) -> None:
    text = "Book a table for TWO at 7PM"
    response = client.post("/model/parse", json={"text": text, "message_id": "m-1"})
    assert response.status_code == 200, response.text
    body = response.json()

    assert set(body) == {"text", "intent", "intent_ranking", "entities", "message_id"}
    assert body["text"] == text
    assert body["message_id"] == "m-1"
    assert set(body["intent"]) == {"name", "confidence"}
    assert body["intent"] == body["intent_ranking"][0]
    assert body["entities"]
    native = parse(client, text)
    assert body["intent"]["name"] == native["intent"]["name"]
    for entity, slot in zip(body["entities"], native["slots"], strict=True):
        assert set(entity) == {
            "entity",
            "value",
            "start",
            "end",
            "confidence_entity",
            "extractor",
            "additional_info",
            "processors",
        }
        assert entity["processors"] is None  # the tiny model has no synonyms
        assert entity["extractor"] == "slotfill.BiLSTMCRF"
        # a resolved slot's Rasa value is the resolved one, its typed form additional_info
        resolved = slot["normalized"]
        assert entity["additional_info"] == resolved
        assert (entity["entity"], entity["value"], entity["start"], entity["end"]) == (
            slot["slot"],
            slot["value"] if resolved is None else resolved["value"],
            slot["start"],
            slot["end"],
        )
        assert text[entity["start"] : entity["end"]] == slot["value"]
        assert is_probability(entity["confidence_entity"])

    without_id = client.post("/model/parse", json={"text": "hello"}).json()
    assert without_id["message_id"] is None
    assert without_id["entities"] == []


def test_models_lists_served_versions(client: TestClient) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    models = response.json()["models"]

    assert [(m["name"], m["version"], m["task"], m["default"]) for m in models] == [
        ("tiny", VERSION, "slots", True),
        ("tiny-sentiment", VERSION, "sentiment", False),
        ("tiny2", VERSION, "slots", False),
    ]
    for model in models:
        assert set(model) == {
            "name",
            "version",
            "task",
            "default",
            "created_at",
            "metrics",
            "labels",
            "intents",
            "slots",
            "sentiments",
            "slot_types",
        }
        assert isinstance(model["metrics"], dict)
    assert models[0]["labels"]["intents"] == len(INTENTS)
    assert models[0]["intents"] == sorted(INTENTS)  # names, to write a Rasa domain from
    assert models[0]["slots"] and all(not s.startswith(("B-", "I-")) for s in models[0]["slots"])
    assert models[0]["sentiments"] == []
    assert models[1]["intents"] == [] and models[1]["slots"] == []
    sentiments = models[1]["sentiments"]
    assert sentiments and len(sentiments) == models[1]["labels"]["sentiment"]


def test_health(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["models"] == sorted([TAGGER_REF, f"tiny2@{VERSION}", SENTIMENT_REF])


def test_metrics(client: TestClient) -> None:
    parse(client, "hello")
    client.get("/v1/models/no-such-thing")  # an unknown path must not become a label
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()

    def samples(name: str) -> list[str]:
        return [line for line in lines if line.startswith(name)]

    requests = samples('slotfill_http_requests_total{method="POST",route="/v1/parse",status="200"}')
    assert len(requests) == 1
    assert float(requests[0].rsplit(" ", 1)[1]) >= 1
    assert samples("slotfill_model_active") == [
        f'slotfill_model_active{{name="{name}",version="{VERSION}"}} 1.0'
        for name in ("tiny", "tiny2", "tiny-sentiment")
    ]
    assert len(samples("slotfill_log_queue_depth ")) == 1
    assert samples("slotfill_log_dropped_rows_total ") == ["slotfill_log_dropped_rows_total 0.0"]
    assert not [line for line in lines if "no-such-thing" in line]
    assert 'slotfill_http_request_duration_seconds_count{route="/v1/parse"}' in response.text


@pytest.mark.parametrize("extra", [{}, {"n_best": 3}], ids=["plain", "n_best"])
def test_parse_bytes_are_the_response_models(client: TestClient, extra: dict[str, Any]) -> None:
    """The routes serialise their answers themselves: byte for byte what FastAPI's
    serialisation through the declared response model would give (order and formats)."""
    from app.serving.schemas import BatchParseResponse, ParseResponse

    response = client.post("/v1/parse", json={"text": "book a table for two at 7pm", **extra})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    model = ParseResponse.model_validate_json(response.content)
    assert response.content == model.model_dump_json().encode()

    texts = ["book a table for two at 7pm", "hello there"]
    response = client.post("/v1/parse/batch", json={"texts": texts, **extra})
    assert response.status_code == 200
    batch = BatchParseResponse.model_validate_json(response.content)
    assert response.content == batch.model_dump_json().encode()
