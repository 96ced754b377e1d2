"""Contract test: what Rasa 3.x itself sends to an external NLU server, replayed byte for byte.

The requests below are taken from Rasa's source, not from its docs:

* Rasa's HTTP interpreter (``endpoints.yml``: ``nlu: url: "http://host:port"``), used by
  ``rasa run`` and ``rasa shell`` for every user message when NLU is external:
  https://github.com/RasaHQ/rasa/blob/3.6.x/rasa/core/http_interpreter.py
  ``_rasa_http_parse`` builds ``params = {"token": endpoint_config.token, "text": text,
  "message_id": message_id}`` (``message_id`` is the conversation's sender id) and sends
  ``aiohttp.ClientSession().post(url + "/model/parse", json=params)``. aiohttp 3.8 (Rasa 3.6
  pins ``aiohttp >=3.6,<3.9``) serialises with ``json.dumps`` and sends the headers below.
  Any status but 200 makes Rasa log an error and fall back to an empty intent.
* Rasa's own server (``rasa/server.py``, ``@app.post("/model/parse")``): ``requires_auth``
  reads ``token`` from the query string, ``emulation_mode`` is a query parameter, and the
  body is ``{"text", "message_id"}``; clients written against Rasa's server call it so.

The response is checked against Rasa's response schema ``ParseResult`` of its OpenAPI spec
(https://github.com/RasaHQ/rasa/blob/3.6.x/docs/static/spec/rasa.yml, ``components.schemas``:
``ParseResult``, ``Intent``, ``Entity``) plus the fields Rasa's tracker reads from entities
(``confidence_entity``, ``extractor``; ``rasa/shared/nlu/constants.py``).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from app_support import MakeSettings
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr

from app.main import create_app

# aiohttp 3.8's request headers for session.post(url, json=params) (Host and Content-Length
# are set by the transport from the URL and the body).
AIOHTTP_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "Python/3.10 aiohttp/3.8.6",
    "Content-Type": "application/json",
}


def interpreter_body(text: str, sender_id: str, token: str | None = None) -> bytes:
    """The exact body of RasaNLUHttpInterpreter._rasa_http_parse: json.dumps of the dict in
    its insertion order, default separators, ``token`` null unless endpoints.yml sets one."""
    return json.dumps({"token": token, "text": text, "message_id": sender_id}).encode()


class _Open(BaseModel):
    """Rasa's spec allows fields beyond the listed ones."""

    model_config = ConfigDict(extra="allow")


class RasaIntent(_Open):
    name: StrictStr
    confidence: StrictFloat | StrictInt


class RasaEntity(_Open):
    start: StrictInt
    end: StrictInt
    value: Any  # string in the spec; Duckling-style extractors put numbers and objects here
    entity: StrictStr
    confidence_entity: StrictFloat | StrictInt
    extractor: StrictStr


class RasaParseResult(_Open):
    text: StrictStr
    intent: RasaIntent
    intent_ranking: list[RasaIntent]
    entities: list[RasaEntity]


def check_rasa_shape(body: dict[str, Any], text: str, message_id: str | None) -> None:
    """Valid under Rasa's ParseResult, with what Rasa's tracker relies on."""
    parsed = RasaParseResult.model_validate(body)
    assert parsed.text == text
    assert body["message_id"] == message_id
    assert parsed.intent.name == parsed.intent_ranking[0].name
    for entity in body["entities"]:
        assert 0 <= entity["start"] < entity["end"] <= len(text)


@pytest.mark.parametrize(
    "text", ["book a table for two at 7pm tomorrow", "hello there", "Ünïcode and  spaces!"]
)
def test_rasa_http_interpreter_request_is_answered(client: TestClient, text: str) -> None:
    sender_id = uuid.uuid4().hex  # what `rasa shell` uses as the sender id
    response = client.post(
        "/model/parse", content=interpreter_body(text, sender_id), headers=AIOHTTP_HEADERS
    )
    assert response.status_code == 200, response.text
    check_rasa_shape(response.json(), text, sender_id)


def test_entities_carry_offsets_into_the_text_as_sent(client: TestClient) -> None:
    text = "book a table for two at 7pm tomorrow"
    body = client.post(
        "/model/parse", content=interpreter_body(text, "default"), headers=AIOHTTP_HEADERS
    ).json()
    for entity in body["entities"]:
        surface = text[entity["start"] : entity["end"]]
        assert surface, entity
        assert entity["extractor"].startswith("slotfill")


def test_rasa_server_style_request_with_query_parameters(client: TestClient) -> None:
    """Clients written against Rasa's own server: token in the query string, no body token."""
    response = client.post(
        "/model/parse?token=anything", json={"text": "hello there", "message_id": "m-7"}
    )
    assert response.status_code == 200, response.text
    check_rasa_shape(response.json(), "hello there", "m-7")


@pytest.mark.parametrize("where", ["query", "body"])
def test_emulation_modes_other_than_rasa_are_refused_clearly(
    client: TestClient, where: str
) -> None:
    url, body = "/model/parse", {"text": "hello"}
    if where == "query":
        url += "?emulation_mode=LUIS"
    else:
        body["emulation_mode"] = "LUIS"
    response = client.post(url, json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unsupported_emulation_mode"


def test_null_emulation_mode_is_rasa_default(client: TestClient) -> None:
    response = client.post("/model/parse", json={"text": "hello", "emulation_mode": None})
    assert response.status_code == 200


def test_other_unknown_fields_stay_refused(client: TestClient) -> None:
    response = client.post("/model/parse", json={"text": "hello", "tokn": None})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_field"


@pytest.fixture
def token_client(make_settings: MakeSettings, tmp_path: Path) -> Any:
    with TestClient(create_app(make_settings(rasa_token="s3cret"))) as test_client:
        yield test_client


def test_configured_token_is_required_in_body_or_query(token_client: TestClient) -> None:
    text = "hello there"
    ok_body = token_client.post(
        "/model/parse", content=interpreter_body(text, "u1", "s3cret"), headers=AIOHTTP_HEADERS
    )
    assert ok_body.status_code == 200, ok_body.text
    check_rasa_shape(ok_body.json(), text, "u1")
    ok_query = token_client.post("/model/parse?token=s3cret", json={"text": text})
    assert ok_query.status_code == 200
    for content, url in (
        (interpreter_body(text, "u1"), "/model/parse"),  # null token
        (interpreter_body(text, "u1", "wrong"), "/model/parse"),
        (json.dumps({"text": text}).encode(), "/model/parse?token=s3cre"),
    ):
        refused = token_client.post(url, content=content, headers=AIOHTTP_HEADERS)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "unauthorized"
