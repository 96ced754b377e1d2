"""``SLOTFILL_KERNELS`` and ``SLOTFILL_RECURRENT_WEIGHTS`` reach the engine: a server started
with ``numpy`` runs the NumPy loops, one started with ``native`` the compiled kernels (where
built), each with the recurrent weights in the precision it is told, and all answer alike."""

from __future__ import annotations

import pytest
from app_support import MakeSettings
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app
from models import native

TEXTS = ["book a table for two at 7pm tomorrow", "my flight to denver was cancelled again"]


def test_the_settings_default_to_native_kernels_and_half_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SLOTFILL_KERNELS", raising=False)
    monkeypatch.delenv("SLOTFILL_RECURRENT_WEIGHTS", raising=False)
    assert (Settings().kernels, Settings().recurrent_weights) == ("native", "float16")
    monkeypatch.setenv("SLOTFILL_KERNELS", "numpy")
    monkeypatch.setenv("SLOTFILL_RECURRENT_WEIGHTS", "float32")
    assert (Settings().kernels, Settings().recurrent_weights) == ("numpy", "float32")
    monkeypatch.setenv("SLOTFILL_RECURRENT_WEIGHTS", "int4")
    with pytest.raises(ValidationError, match="recurrent_weights"):
        Settings()


@pytest.mark.parametrize("recurrent", ["float16", "float32"])
def test_the_server_runs_the_kernels_it_is_told(
    make_settings: MakeSettings, recurrent: str
) -> None:
    answers = {}
    for kernels in ("numpy", "native"):
        settings = make_settings(kernels=kernels, recurrent_weights=recurrent)
        with TestClient(create_app(settings)) as client:
            assert native.active() == (kernels == "native" and native.available())
            assert native.half_weights() == (recurrent == "float16")
            replies = [client.post("/v1/parse", json={"text": t, "n_best": 3}) for t in TEXTS]
        assert [r.status_code for r in replies] == [200, 200]
        answers[kernels] = [r.json() for r in replies]
    for ours, theirs in zip(answers["numpy"], answers["native"], strict=True):
        assert [s["value"] for s in ours["slots"]] == [s["value"] for s in theirs["slots"]]
        assert ours["intent"]["name"] == theirs["intent"]["name"]
        assert ours["intent"]["confidence"] == pytest.approx(theirs["intent"]["confidence"])
        assert [h["probability"] for h in ours["hypotheses"]] == pytest.approx(
            [h["probability"] for h in theirs["hypotheses"]], abs=1e-5
        )
