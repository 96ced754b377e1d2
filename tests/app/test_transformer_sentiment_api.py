"""A fine-tuned transformer sentiment model served by ``/v1/parse`` on either engine: its
answer is the model's own, and the request log keeps it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from app_support import VERSION, build_store, log_rows, migrate, settings_factory
from fastapi.testclient import TestClient
from tiny_bert import write_encoder

from app.main import create_app
from models.artifact import load_artifact
from training.config import SentimentTrainConfig
from training.pipeline import train_folder

TEXTS = ["great crew, thanks!", "my bag was lost", "LOVE the flight"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_tagger_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("transformer")
    write_encoder(root / "encoder")
    config = SentimentTrainConfig(
        pretrained_encoder=str(root / "encoder"), epochs=2, threads=1, seed=5
    )
    data = Path(__file__).resolve().parents[1] / "data" / "tiny_sentiment"
    artifact = train_folder("sentiment", data, config, root / "artifact").artifact
    assert artifact is not None
    shutil.rmtree(root / "encoder")  # the server must not need the encoder folder
    return build_store(root / "store", tiny_tagger_dir, artifact)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_parse_answers_with_the_fine_tuned_model(store: Path, tmp_path: Path, engine: str) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    settings = settings_factory(store, url, tmp_path / "spill")(engine=engine)
    expected = load_artifact(store / "tiny-sentiment" / VERSION).predictor.classify(TEXTS)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        answers = [client.post("/v1/parse", json={"text": t}) for t in TEXTS]
    for response, want in zip(answers, expected, strict=True):
        assert response.status_code == 200
        sentiment = response.json()["sentiment"]
        assert sentiment["label"] == want.label
        assert sentiment["confidence"] == pytest.approx(want.confidence, abs=1e-4)
    rows = log_rows(url)
    assert [r.text for r in rows] == TEXTS
    assert [r.response["sentiment"]["label"] for r in rows] == [w.label for w in expected]
