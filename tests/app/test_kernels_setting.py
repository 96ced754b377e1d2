"""``SLOTFILL_KERNELS`` reaches the engine: a server started with ``numpy`` runs the NumPy
loops, one started with ``native`` the compiled kernels (where built), and both answer alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from app_support import MakeSettings
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from models import native

TEXTS = ["book a table for two at 7pm tomorrow", "my flight to denver was cancelled again"]


@pytest.fixture(autouse=True)
def _restore_kernels() -> Iterator[None]:
    was = native.active()
    yield
    native.select("native" if was else "numpy")


def test_the_setting_defaults_to_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLOTFILL_KERNELS", raising=False)
    assert Settings().kernels == "native"
    monkeypatch.setenv("SLOTFILL_KERNELS", "numpy")
    assert Settings().kernels == "numpy"


def test_the_server_runs_the_kernels_it_is_told(make_settings: MakeSettings) -> None:
    answers = {}
    for kernels in ("numpy", "native"):
        with TestClient(create_app(make_settings(kernels=kernels))) as client:
            assert native.active() == (kernels == "native" and native.available())
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
