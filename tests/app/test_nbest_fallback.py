"""``n_best`` hypotheses in the parse routes and the ``SLOTFILL_FALLBACK_THRESHOLD`` setting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import VERSION, MakeSettings
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app
from app.serving.batcher import MicroBatcher
from app.serving.parsing import run_models
from app.serving.registry import load_version
from app.serving.results import ParseResult

pytestmark = pytest.mark.timeout(120)

TEXTS = ["book a table for two at 7pm tomorrow", "my flight to denver was cancelled", "hello"]


def post(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    out: dict[str, Any] = response.json()
    return out


def check_hypotheses(body: dict[str, Any], k: int) -> None:
    text, hyps = body["text"], body["hypotheses"]
    assert 1 <= len(hyps) <= k
    probs = [h["probability"] for h in hyps]
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 < p <= 1.0 for p in probs) and sum(probs) <= 1.0 + 1e-9
    for h in hyps:
        assert set(h) == {"probability", "slots"}
        for s in h["slots"]:
            assert set(s) == {"slot", "value", "start", "end"}
            assert text[s["start"] : s["end"]] == s["value"]
    # The best labelling is the parse's own slots; the others differ from it and each other.
    assert hyps[0]["slots"] == [
        {k: s[k] for k in ("slot", "value", "start", "end")} for s in body["slots"]
    ]
    assert len({repr(h["slots"]) for h in hyps}) == len(hyps)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_parse_with_n_best(client: TestClient, k: int) -> None:
    for text in TEXTS:
        body = post(client, "/v1/parse", {"text": text, "n_best": k})
        check_hypotheses(body, k)
        plain = post(client, "/v1/parse", {"text": text})
        assert plain["hypotheses"] is None  # none unless asked for
        assert {x: body[x] for x in ("intent", "slots")} == {
            x: plain[x] for x in ("intent", "slots")
        }


def test_a_longer_text_has_several_hypotheses(client: TestClient) -> None:
    body = post(client, "/v1/parse", {"text": TEXTS[0], "n_best": 5})
    assert len(body["hypotheses"]) == 5


def test_batch_n_best_applies_to_every_text(client: TestClient) -> None:
    batch = post(client, "/v1/parse/batch", {"texts": TEXTS, "n_best": 4})
    for text, result in zip(TEXTS, batch["results"], strict=True):
        check_hypotheses(result, 4)
        single = post(client, "/v1/parse", {"text": text, "n_best": 4})
        assert [h["slots"] for h in result["hypotheses"]] == [
            h["slots"] for h in single["hypotheses"]
        ]
        for a, b in zip(result["hypotheses"], single["hypotheses"], strict=True):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)


@pytest.mark.parametrize("n_best", [0, 11, -1, "3", 2.5, True, None])
@pytest.mark.parametrize("route", ["/v1/parse", "/v1/parse/batch"])
def test_n_best_out_of_range_is_refused(client: TestClient, route: str, n_best: object) -> None:
    body: dict[str, Any] = {"texts": TEXTS[:1]} if route.endswith("batch") else {"text": TEXTS[0]}
    response = client.post(route, json=body | {"n_best": n_best})
    if n_best is None:  # explicit null: the same as leaving it out
        assert response.status_code == 200
        return
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "n_best" in error["message"]


def test_rasa_route_has_no_n_best(client: TestClient) -> None:
    response = client.post("/model/parse", json={"text": TEXTS[0], "n_best": 2})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_field"


def test_requests_with_different_n_best_share_a_batch(model_store: Path) -> None:
    tagger = load_version(model_store, "tiny", VERSION)
    gate = threading.Event()
    batches: list[list[int]] = []

    def run_batch(t: Any, s: Any, texts: Any, n_best: Any, *rest: Any) -> list[ParseResult]:
        gate.wait(5)  # hold the first batch so the others queue up behind it
        batches.append(list(n_best))
        return run_models(t, s, texts, n_best, *rest)

    batcher = MicroBatcher(run_batch)
    try:
        first = batcher.submit(tagger, None, ["hello"])
        plain = batcher.submit(tagger, None, TEXTS[:2])
        two = batcher.submit(tagger, None, TEXTS[:1], n_best=2)
        gate.set()
        assert first.result(10)[0].hypotheses is None
        assert [r.hypotheses for r in plain.result(10)] == [None, None]
        (result,) = two.result(10)
        assert result.hypotheses is not None and len(result.hypotheses) == 2
        # One pass through the networks for both (with or without "hello": a race).
        assert any(b[-3:] == [0, 0, 2] for b in batches)
    finally:
        batcher.close()


# Fallback (Rasa's FallbackClassifier).


@pytest.fixture(scope="module")
def plain_answers(client: TestClient) -> dict[str, dict[str, Any]]:
    return {t: post(client, "/v1/parse", {"text": t}) for t in TEXTS}


@pytest.fixture
def fallback_client(
    make_settings: MakeSettings, plain_answers: dict[str, dict[str, Any]]
) -> Iterator[tuple[TestClient, float]]:
    """An app whose threshold lies between the texts' best intent confidences: some fall back."""
    tops = sorted(a["intent"]["confidence"] for a in plain_answers.values())
    assert tops[0] < tops[-1]
    threshold = (tops[0] + tops[-1]) / 2
    with TestClient(create_app(make_settings(fallback_threshold=threshold))) as client:
        yield client, threshold


def test_below_the_threshold_the_intent_is_nlu_fallback(
    fallback_client: tuple[TestClient, float], plain_answers: dict[str, dict[str, Any]]
) -> None:
    client, threshold = fallback_client
    fell_back = 0
    for text, plain in plain_answers.items():
        for route in ("/v1/parse", "/model/parse"):
            body = post(client, route, {"text": text})
            if plain["intent"]["confidence"] < threshold:
                fallback = {"name": "nlu_fallback", "confidence": threshold}
                assert body["intent"] == fallback
                # The model's own ranking is kept, after the fallback intent.
                assert body["intent_ranking"] == [fallback, *plain["intent_ranking"]]
                fell_back += 1
            else:
                assert body["intent"] == plain["intent"]
                assert body["intent_ranking"] == plain["intent_ranking"]
        assert post(client, "/v1/parse", {"text": text})["slots"] == plain["slots"]
    assert 0 < fell_back < 2 * len(plain_answers)


def test_batch_falls_back_per_text(
    fallback_client: tuple[TestClient, float], plain_answers: dict[str, dict[str, Any]]
) -> None:
    client, threshold = fallback_client
    batch = post(client, "/v1/parse/batch", {"texts": TEXTS})["results"]
    names = [r["intent"]["name"] for r in batch]
    expected = [
        "nlu_fallback" if plain_answers[t]["intent"]["confidence"] < threshold else
        plain_answers[t]["intent"]["name"]
        for t in TEXTS
    ]  # fmt: skip
    assert names == expected


def test_fallback_is_off_by_default(plain_answers: dict[str, dict[str, Any]]) -> None:
    assert Settings().fallback_threshold == 0.0
    assert all(a["intent"]["name"] != "nlu_fallback" for a in plain_answers.values())


def test_fallback_threshold_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOTFILL_FALLBACK_THRESHOLD", "0.7")
    assert Settings().fallback_threshold == 0.7
    for bad in ("1.5", "-0.1", "high"):
        monkeypatch.setenv("SLOTFILL_FALLBACK_THRESHOLD", bad)
        with pytest.raises(ValidationError, match="fallback_threshold"):
            Settings()
