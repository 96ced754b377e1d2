"""Artifacts are checked before they serve.

- At start, a model without an active pointer whose newest version is broken is served from
  the newest version that loads, and the log says so (it refused to start).
- Every load parses the valid utterances stored with the artifact and compares the scores
  with its manifest's, so weights replaced under a matching, rewritten checksum (recorded
  in the database as such) are refused at activation, and the old version keeps serving.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch
from app_support import VERSION, MakeSettings
from fastapi.testclient import TestClient

from app.main import create_app
from models.artifact import MANIFEST, WEIGHTS, file_sha256, load_artifact

pytestmark = pytest.mark.timeout(120)

NEWER = "20260105T000000000000Z"
TOKEN = "sanity-test-token"


@pytest.fixture
def own_store(model_store: Path, tmp_path: Path) -> Path:
    """A private copy of the store, free to break."""
    return Path(shutil.copytree(model_store, tmp_path / "own_store"))


def _replace_weights(folder: Path) -> None:
    """Other weights of the same shapes, and the manifest's checksum rewritten to match."""
    weights = folder / WEIGHTS
    state = safetensors.torch.load_file(str(weights))
    generator = torch.Generator().manual_seed(7)
    other = {
        k: torch.randn(v.shape, generator=generator) * 0.5 if v.is_floating_point() else v
        for k, v in state.items()
    }
    safetensors.torch.save_file(other, str(weights), metadata={"task": "slots"})
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["weights_sha256"] = file_sha256(weights)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_the_tiny_tagger_stores_its_check_and_passes_it(model_store: Path) -> None:
    from models.sanity import SANITY, score  # here: the other tests run without the module

    folder = model_store / "tiny" / VERSION
    artifact = load_artifact(folder)
    recorded = artifact.manifest.metrics["sanity"]
    examples = json.loads((folder / SANITY).read_text())["examples"]
    assert len(examples) == 20  # the whole valid split of tests/data/tiny_slots
    assert score(artifact.predictor, examples) == recorded
    assert recorded["intent_accuracy"] > 0.5


def test_start_falls_back_to_the_newest_version_that_loads(
    own_store: Path, make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    broken = shutil.copytree(own_store / "tiny" / VERSION, own_store / "tiny" / NEWER)
    (broken / WEIGHTS).write_bytes((broken / WEIGHTS).read_bytes()[:100])
    caplog.set_level(logging.WARNING, logger="slotfill.registry")
    with TestClient(create_app(make_settings(model_store=own_store))) as client:
        response = client.post("/v1/parse", json={"text": "book a table for two"})
        assert response.status_code == 200, response.text
        assert response.json()["model"]["version"] == VERSION
    assert f"tiny@{NEWER} cannot be loaded" in caplog.text
    assert f"serving tiny@{VERSION}, the newest version of tiny that loads" in caplog.text


def test_replaced_weights_fail_the_sanity_check_at_start_too(
    own_store: Path, make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    _replace_weights(shutil.copytree(own_store / "tiny" / VERSION, own_store / "tiny" / NEWER))
    caplog.set_level(logging.WARNING, logger="slotfill.registry")
    with TestClient(create_app(make_settings(model_store=own_store))) as client:
        response = client.post("/v1/parse", json={"text": "book a table for two"})
        assert response.json()["model"]["version"] == VERSION
    assert "fails its sanity check" in caplog.text


def test_activation_refuses_weights_replaced_under_a_rewritten_checksum(
    own_store: Path, make_settings: MakeSettings
) -> None:
    settings = make_settings(model_store=own_store, admin_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings)) as client:
        # Replaced before the server first saw it: the database records the new checksum.
        _replace_weights(shutil.copytree(own_store / "tiny" / VERSION, own_store / "tiny" / NEWER))
        listed = client.get("/v1/admin/models", headers=auth)
        assert listed.status_code == 200, listed.text
        response = client.post(
            "/v1/admin/models/tiny/activate", json={"version": NEWER}, headers=auth
        )
        assert response.status_code == 409, response.text
        message = response.json()["error"]["message"]
        assert "fails its sanity check" in message
        assert "intent_accuracy" in message or "slot_f1" in message
        served = client.post("/v1/parse", json={"text": "book a table for two"})
        assert served.json()["model"]["version"] == VERSION
