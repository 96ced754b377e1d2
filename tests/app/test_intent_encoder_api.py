"""A tagger whose intents come from a fine-tuned encoder, served by ``/v1/parse`` on either
engine: the intent is the blend of the classifier's and the head's, the slots the tagger's,
and the log keeps both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_support import VERSION, build_store, log_rows, migrate, settings_factory
from fastapi.testclient import TestClient
from tiny_bert import write_encoder

from app.main import create_app
from models.artifact import load_artifact
from models.predictor import SlotTaggerPredictor
from training.config import SlotTrainConfig
from training.pipeline import train_folder

TEXTS = ["reserve a table for 2 today", "my flight to miami was delayed", "hello world"]


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, test_data_dir: Path, tiny_sentiment_dir: Path
) -> Path:
    root = tmp_path_factory.mktemp("intent_encoder_api")
    write_encoder(root / "encoder")
    config = SlotTrainConfig(
        intent_encoder=str(root / "encoder"),
        epochs=3,
        hidden_size=16,
        threads=1,
        seed=5,
        pretrained_vectors="none",
    )
    trained = train_folder("slots", test_data_dir / "tiny_slots", config, root / "artifact")
    assert trained.artifact is not None
    shutil.rmtree(root / "encoder")  # the server must not need the encoder folder
    return build_store(root / "store", trained.artifact, tiny_sentiment_dir)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_parse_gives_the_classifier_intents(store: Path, tmp_path: Path, engine: str) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    settings = settings_factory(store, url, tmp_path / "spill")(engine=engine)
    predictor = load_artifact(store / "tiny" / VERSION).predictor
    assert isinstance(predictor, SlotTaggerPredictor) and predictor.intent_classifier
    assert predictor.intent_classifier_weight == 0.75  # the default blend
    parses = predictor.parse(TEXTS)
    expected = [p.intent_ranking[0] for p in parses]
    slots = [[s.slot for s in p.slots] for p in parses]
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        answers = [client.post("/v1/parse", json={"text": t}) for t in TEXTS]
    for response, want, want_slots in zip(answers, expected, slots, strict=True):
        assert response.status_code == 200
        body = response.json()
        assert body["intent"]["name"] == want[0]
        assert body["intent"]["confidence"] == pytest.approx(want[1], abs=1e-4)
        assert [s["slot"] for s in body["slots"]] == want_slots
    rows = log_rows(url)
    assert [r.text for r in rows] == TEXTS
    assert [r.response["intent"]["name"] for r in rows] == [w[0] for w in expected]
