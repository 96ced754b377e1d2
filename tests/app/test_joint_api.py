"""A tagger that reads intents and slots together (models.joint), served by ``/v1/parse`` on
either engine: an utterance with slots of two intents gets the slots of the one it names."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from app_support import VERSION, build_store, migrate, settings_factory
from fastapi.testclient import TestClient

from app.main import create_app
from models.artifact import load_artifact
from models.predictor import SlotTaggerPredictor

MIXED = "a table for two at 7pm and my flight to denver cancelled"
TEXTS = [MIXED, "reserve a table for 2 today", "hello world"]
# What a tagger trained on more examples an intent records (tests/models/test_joint.py).
TINY_SLOTS = {
    "book_restaurant": ["date", "party_size", "time"],
    "complaint": ["issue", "to_city"],
    "greet": [],
}


@pytest.fixture(scope="module")
def joint_dir(tiny_tagger_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("joint_api") / "tagger"
    shutil.copytree(tiny_tagger_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["intent_slots"] = TINY_SLOTS
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_parse_reads_the_slots_of_its_intent(
    joint_dir: Path, tiny_tagger_dir: Path, tiny_sentiment_dir: Path, tmp_path: Path, engine: str
) -> None:
    joint, apart = load_artifact(joint_dir).predictor, load_artifact(tiny_tagger_dir).predictor
    assert isinstance(joint, SlotTaggerPredictor) and isinstance(apart, SlotTaggerPredictor)
    assert joint.joint_mask is not None and apart.joint_mask is None
    # The same weights read apart take slots of both intents from the mixed utterance.
    mixed_apart = {s.slot for s in apart.parse([MIXED])[0].slots}
    assert all(mixed_apart - set(kinds) for kinds in TINY_SLOTS.values())
    expected = joint.parse(TEXTS)
    store = build_store(tmp_path / "store", joint_dir, tiny_sentiment_dir)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    settings = settings_factory(store, url, tmp_path / "spill")(engine=engine)
    assert load_artifact(store / "tiny" / VERSION).manifest.intent_slots == TINY_SLOTS
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
        assert {s["slot"] for s in body["slots"]} <= set(TINY_SLOTS[intent])
