"""A tagger that reads intents and slots together (models.joint), served by ``/v1/parse`` on
either engine: an utterance with slots of two intents gets the slots of the one it names."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_support import VERSION, build_store, migrate, settings_factory
from fastapi.testclient import TestClient

from app.main import create_app
from models.artifact import load_artifact
from models.predictor import SlotTaggerPredictor

MIXED = "a table for two at 7pm and my flight to denver cancelled"
TEXTS = [MIXED, "reserve a table for 2 today", "hello world"]


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_parse_reads_the_slots_of_its_intent(
    joint_tagger_dir: Path,
    tiny_tagger_dir: Path,
    tiny_sentiment_dir: Path,
    tmp_path: Path,
    engine: str,
) -> None:
    joint, apart = (
        load_artifact(joint_tagger_dir).predictor,
        load_artifact(tiny_tagger_dir).predictor,
    )
    assert isinstance(joint, SlotTaggerPredictor) and isinstance(apart, SlotTaggerPredictor)
    assert joint.joint_mask is not None and apart.joint_mask is None
    kinds_of = joint.intent_slots
    # The same weights read apart take slots of both intents from the mixed utterance.
    mixed_apart = {s.slot for s in apart.parse([MIXED])[0].slots}
    assert all(mixed_apart - set(kinds) for kinds in kinds_of.values())
    expected = joint.parse(TEXTS)
    store = build_store(tmp_path / "store", joint_tagger_dir, tiny_sentiment_dir)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    settings = settings_factory(store, url, tmp_path / "spill")(engine=engine)
    assert load_artifact(store / "tiny" / VERSION).manifest.intent_slots == kinds_of
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        answers = [client.post("/v1/parse", json={"text": t}) for t in TEXTS]
    for response, want in zip(answers, expected, strict=True):
        assert response.status_code == 200
        body = response.json()
        intent = body["intent"]["name"]
        assert intent == want.intent_ranking[0][0]
        assert body["intent"]["confidence"] == pytest.approx(want.intent_ranking[0][1], abs=1e-4)
        assert [s["slot"] for s in body["slots"]] == [s.slot for s in want.slots]
        assert {s["slot"] for s in body["slots"]} <= set(kinds_of[intent])
