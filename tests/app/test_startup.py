"""Start-up fails with ``StartupError`` and a message naming the model and the problem."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from app_support import VERSION, MakeSettings
from fastapi.testclient import TestClient

from app.main import create_app
from app.serving.registry import StartupError
from models.artifact import MANIFEST, WEIGHTS

pytestmark = pytest.mark.timeout(60)


def start(settings_kwargs: dict[str, object], make_settings: MakeSettings) -> None:
    with TestClient(create_app(make_settings(**settings_kwargs))):
        pytest.fail("the app started")


@pytest.fixture
def own_store(model_store: Path, tmp_path: Path) -> Path:
    """A private copy of the store, free to break."""
    return Path(shutil.copytree(model_store, tmp_path / "own_store"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param(
            {"default_model": "missing"},
            "model 'missing' has no artifact in {store}; train one "
            "(slotfill train ... --out {store}/missing/<version>) or run `slotfill bootstrap`",
            id="default-missing",
        ),
        pytest.param(
            {"sentiment_model": "gone"},
            "model 'gone' has no artifact in {store}",
            id="sentiment-missing",
        ),
        pytest.param(
            {"models": ["tiny", "other"]},
            "model 'other' has no artifact in {store}",
            id="listed-model-missing",
        ),
        pytest.param(
            {"default_model": "tiny-sentiment", "sentiment_model": None},
            "model 'tiny-sentiment' is a sentiment model, expected slots",
            id="default-is-sentiment",
        ),
        pytest.param(
            {"sentiment_model": "tiny2"},
            "model 'tiny2' is a slots model, expected sentiment",
            id="sentiment-is-tagger",
        ),
    ],
)
def test_misconfigured_store(
    model_store: Path, make_settings: MakeSettings, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(StartupError, match=re.escape(message.format(store=model_store))):
        start(overrides, make_settings)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _not_json(path: Path) -> None:
    path.write_text("{ not json", encoding="utf-8")


CORRUPTIONS: list[object] = [
    pytest.param(
        "tiny",
        WEIGHTS,
        _flip_a_byte,
        "checksum does not match the manifest (corrupt or edited)",
        id="weights-flipped",
    ),
    pytest.param(
        "tiny2",  # not the default, but served: start-up still fails
        WEIGHTS,
        _truncate,
        "checksum does not match the manifest (corrupt or edited)",
        id="weights-truncated",
    ),
    pytest.param("tiny", WEIGHTS, Path.unlink, f"{WEIGHTS} is missing", id="weights-missing"),
    pytest.param("tiny", MANIFEST, _not_json, "not valid JSON", id="manifest-not-json"),
    pytest.param(
        "tiny-sentiment", MANIFEST, _not_json, "not valid JSON", id="sentiment-manifest-not-json"
    ),
]


@pytest.mark.parametrize(("name", "filename", "corrupt", "problem"), CORRUPTIONS)
def test_corrupt_artifact(
    own_store: Path,
    make_settings: MakeSettings,
    name: str,
    filename: str,
    corrupt: Callable[[Path], None],
    problem: str,
) -> None:
    corrupt(own_store / name / VERSION / filename)

    with pytest.raises(StartupError) as info:
        start({"model_store": own_store}, make_settings)
    message = str(info.value)
    assert message.startswith(f"model {name}@{VERSION} cannot be loaded: ")
    assert problem in message


def test_intact_copy_starts(own_store: Path, make_settings: MakeSettings) -> None:
    """The store copy itself is fine: the failures above come from the corruption."""
    with TestClient(create_app(make_settings(model_store=own_store))) as client:
        assert client.get("/readyz").status_code == 200
