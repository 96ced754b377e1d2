"""The nasty-input corpus (``tests/nasty_inputs/manifest.json``) against a real server.

Each case goes out as raw HTTP/1.1 bytes (so bodies can be invalid UTF-8, chunked, or lie in
their Content-Length). Invalid requests must get their 4xx in the one error shape; valid but
unusual text (RTL, emoji, combining marks) must get a 200 whose offsets index the text as sent.
After every case a normal request must still work, and at the end the server must be up with
no 5xx and no traceback in its log.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_support import migrate
from reliability_support import RawResponse, Server, body_bytes, raw_request, serve, server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

MANIFEST = Path(__file__).resolve().parents[1] / "nasty_inputs" / "manifest.json"
CASES: list[dict[str, Any]] = json.loads(MANIFEST.read_text(encoding="utf-8"))["cases"]
JSON = {"Content-Type": "application/json"}
BODY_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def outcomes() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def nasty_server(
    reliability_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One worker with the default limits and a short body timeout."""
    tmp = tmp_path_factory.mktemp("nasty")
    url = f"sqlite:///{tmp / 'log.db'}"
    migrate(url)
    env = server_env(reliability_store, url, tmp / "spill", body_timeout_seconds=BODY_TIMEOUT_S)
    with serve(env, tmp / "server.log", workers=1) as server:
        yield server


def _path(spec: str | list[list[Any]]) -> str:
    return spec if isinstance(spec, str) else "".join(str(s) * int(n) for s, n in spec)


def send(server: Server, case: dict[str, Any]) -> RawResponse | None:
    return raw_request(
        server.port,
        case.get("method", "POST"),
        _path(case.get("path", "/v1/parse")),
        case.get("headers", JSON),
        body_bytes(case.get("body", {})),
        chunk_size=case.get("chunk_size"),
        content_length=case.get("content_length"),
        timeout=BODY_TIMEOUT_S * 10,
    )


def _check_parse(result: dict[str, Any], text: str) -> None:
    assert result["text"] == text
    for token in result["tokens"]:
        assert text[token["start"] : token["end"]] == token["text"]
    for slot in result["slots"]:
        assert text[slot["start"] : slot["end"]] == slot["value"]


def _check_ok(case: dict[str, Any], response: RawResponse) -> None:
    sent = json.loads(body_bytes(case["body"]))
    body = response.json()
    if "texts" in sent:
        assert len(body["results"]) == len(sent["texts"])
        for result, text in zip(body["results"], sent["texts"], strict=True):
            _check_parse(result, text)
    elif case.get("path") == "/model/parse":
        assert body["text"] == sent["text"] and body["message_id"] == sent.get("message_id")
        for entity in body["entities"]:
            resolved = entity.get("additional_info")
            if resolved is None:  # unresolved: the text as sent
                assert sent["text"][entity["start"] : entity["end"]] == entity["value"]
            else:  # resolved, its typed form beside it (as Rasa's Duckling extractor)
                scalar = resolved.get(
                    "value", {"from": resolved.get("from"), "to": resolved.get("to")}
                )
                assert entity["value"] == scalar
    else:
        _check_parse(body, sent["text"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_nasty_input(case: dict[str, Any], nasty_server: Server, outcomes: dict[str, str]) -> None:
    response = send(nasty_server, case)
    outcomes[case["name"]] = str(response.status) if response else "no response"
    expect = case["expect"]

    assert response is not None, "no response"
    assert response.status == expect["status"], response.body[:300]
    if response.status >= 400:  # the app's errors and the server's framing errors alike
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["code"] == expect["code"], body
    else:
        assert response.headers["content-type"] == "application/json"
        _check_ok(case, response)

    normal = httpx.post(
        f"{nasty_server.base_url}/v1/parse", json={"text": "book a table for two"}, timeout=30
    )
    assert normal.status_code == 200, normal.text


def test_server_survived_the_corpus(
    nasty_server: Server, outcomes: dict[str, str], figures: Any
) -> None:
    metrics = httpx.get(f"{nasty_server.base_url}/metrics", timeout=30).text
    log = nasty_server.log()
    statuses = Counter(outcomes.values())
    expected = Counter(str(c["expect"]["status"]) for c in CASES)
    figures.record(
        "nasty-input corpus (tests/nasty_inputs)",
        cases=len(CASES),
        sent=len(outcomes),
        as_expected=sum(outcomes.get(c["name"]) == str(c["expect"]["status"]) for c in CASES),
        expected_4xx=sum(n for s, n in expected.items() if s.startswith("4")),
        expected_200_unusual_text=expected["200"],
        outcomes=dict(sorted(statuses.items())),
        server_5xx=sum(n for s, n in statuses.items() if s.startswith("5")),
    )
    assert nasty_server.alive()
    assert 'status="5' not in metrics
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
    assert len(outcomes) == len(CASES)
