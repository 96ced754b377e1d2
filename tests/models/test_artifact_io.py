"""models.artifact: save -> load round trip, and a clear ArtifactError for every broken artifact."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from models.artifact import (
    MANIFEST,
    WEIGHTS,
    Artifact,
    file_sha256,
    load_artifact,
    save_artifact,
)
from models.errors import ArtifactError
from models.predictor import SentimentPredictor, SlotTaggerPredictor

TAGGER_TEXTS = [
    "book a table for two at 7pm tomorrow",
    "Fly me to Boston on Friday, please!",
    "hello",
    "my  flight to  Miami was delayed",
]
SENTIMENT_TEXTS = ["Great crew, thanks!!", "My bag never showed up.", "Is flight UA212 on time?"]
ARTIFACTS = ["tiny_tagger_dir", "tiny_sentiment_dir"]


def resave(artifact: Artifact, out: Path) -> Path:
    """Write a loaded artifact again through :func:`save_artifact`."""
    m, p = artifact.manifest, artifact.predictor
    return save_artifact(
        out,
        task=m.task,
        model=p.model,
        vocabs={"words": p.words, "chars": p.chars},
        labels=m.labels,
        training=m.training,
        metrics=m.metrics,
        history=m.history,
        data=m.data,
        temperatures=m.calibration,
        intent_slots=m.intent_slots,
        lexical=p.lexical if isinstance(p, SlotTaggerPredictor) else None,
        lexical_weight=p.lexical_weight if isinstance(p, SlotTaggerPredictor) else 0.0,
    )


def outputs(artifact: Artifact) -> object:
    p = artifact.predictor
    if isinstance(p, SlotTaggerPredictor):
        return p.parse(TAGGER_TEXTS)
    assert isinstance(p, SentimentPredictor)
    return p.classify(SENTIMENT_TEXTS)


@pytest.mark.parametrize("fixture", ARTIFACTS)
def test_save_load_round_trip_is_exact(
    fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    first = load_artifact(request.getfixturevalue(fixture))
    second = load_artifact(resave(first, tmp_path / "again"))
    assert second.task == first.task
    assert outputs(second) == outputs(first)
    a, b = first.predictor.model.state_dict(), second.predictor.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not second.predictor.model.training


def test_loaded_artifacts_have_the_expected_task(
    tiny_tagger_dir: Path, tiny_sentiment_dir: Path
) -> None:
    assert isinstance(load_artifact(tiny_tagger_dir).predictor, SlotTaggerPredictor)
    assert isinstance(load_artifact(tiny_sentiment_dir).predictor, SentimentPredictor)
    assert load_artifact(tiny_sentiment_dir).task == "sentiment"


def _edit_manifest(path: Path, **changes: object) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.update(changes)
    (path / MANIFEST).write_text(json.dumps(manifest))


def _drop_manifest_key(key: str) -> Callable[[Path], object]:
    def edit(path: Path) -> None:
        manifest = json.loads((path / MANIFEST).read_text())
        del manifest[key]
        (path / MANIFEST).write_text(json.dumps(manifest))

    return edit


def _flip_byte(path: Path) -> None:
    data = bytearray((path / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / WEIGHTS).write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = (path / WEIGHTS).read_bytes()
    (path / WEIGHTS).write_bytes(data[: len(data) // 2])


def _truncate_and_rehash(path: Path) -> None:
    """Truncated weights whose checksum was updated too: safetensors must refuse them."""
    _truncate(path)
    _edit_manifest(path, weights_sha256=file_sha256(path / WEIGHTS))


def _other_shape(path: Path) -> None:
    """The manifest says another hidden size than the weights have."""
    manifest = json.loads((path / MANIFEST).read_text())
    _edit_manifest(path, model_config={**manifest["model_config"], "hidden_size": 7})


CORRUPTIONS: dict[str, tuple[Callable[[Path], object], str]] = {
    "missing dir": (lambda p: shutil.rmtree(p), r"no such artifact directory"),
    "missing manifest": (lambda p: (p / MANIFEST).unlink(), r"manifest\.json is missing"),
    "manifest not JSON": (
        lambda p: (p / MANIFEST).write_text('{"format_version": 1,'),
        r"manifest\.json: not valid JSON",
    ),
    "manifest not an object": (
        lambda p: (p / MANIFEST).write_text("[1, 2]"),
        r"manifest\.json: expected a JSON object",
    ),
    "manifest not UTF-8": (
        lambda p: (p / MANIFEST).write_bytes(b'{"task": "\xff"}'),
        r"manifest\.json: not valid JSON",
    ),
    "format version 2": (
        lambda p: _edit_manifest(p, format_version=2),
        r"artifact format version 2, this slotfill reads version 1",
    ),
    "format version missing": (
        _drop_manifest_key("format_version"),
        r"artifact format version None, this slotfill reads version 1",
    ),
    "unknown task": (lambda p: _edit_manifest(p, task="ner"), r"unknown task 'ner'"),
    "missing field": (
        _drop_manifest_key("weights_sha256"),
        r"missing field 'weights_sha256'",
    ),
    "field of the wrong type": (
        lambda p: _edit_manifest(p, metrics=[0.9]),
        r"field 'metrics' must be an object",
    ),
    "weights missing": (lambda p: (p / WEIGHTS).unlink(), r"model\.safetensors is missing"),
    "weights truncated": (_truncate, r"checksum does not match the manifest"),
    "weights edited": (_flip_byte, r"checksum does not match the manifest"),
    "weights truncated, checksum updated": (_truncate_and_rehash, r"cannot load weights"),
    "config does not fit the weights": (_other_shape, r"cannot load weights"),
}


@pytest.mark.parametrize("fixture", ARTIFACTS)
@pytest.mark.parametrize("corrupt,message", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_broken_artifacts_fail_with_a_clear_message(
    fixture: str,
    corrupt: Callable[[Path], object],
    message: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    path = Path(shutil.copytree(request.getfixturevalue(fixture), tmp_path / "artifact"))
    corrupt(path)
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(path)
    assert str(path) in str(info.value)  # the message says which artifact


def test_task_swapped_fails(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(tiny_tagger_dir, tmp_path / "artifact"))
    _edit_manifest(path, task="sentiment")
    with pytest.raises(ArtifactError, match="cannot load weights"):
        load_artifact(path)


def test_saving_into_a_non_empty_dir_refuses(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    artifact = load_artifact(tiny_tagger_dir)
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="already exists and is not empty"):
        resave(artifact, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no staging dir left


def test_saving_into_an_existing_empty_dir_works(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    resave(load_artifact(tiny_tagger_dir), out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, WEIGHTS]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_optional_manifest_fields_may_be_absent(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    path = Path(shutil.copytree(tiny_tagger_dir, tmp_path / "artifact"))
    for key in ("training", "metrics", "history", "data", "libraries", "created_at"):
        _drop_manifest_key(key)(path)
    manifest = load_artifact(path).manifest
    assert (manifest.history, manifest.metrics, manifest.valid_metrics) == ([], {}, {})
    assert manifest.created_at is None
