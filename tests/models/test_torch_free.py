"""A NumPy-engine predictor built straight from an artifact (``load_artifact(path,
engine="numpy")``: safetensors arrays and the manifest, no torch model) parses and classifies
as the torch model does; its config view agrees with the torch config dataclasses."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from models.artifact import CONFIG_DEFAULTS, MANIFEST, WEIGHTS, config_view, load_artifact
from models.engine import NumpySentiment, NumpyTagger
from models.errors import ArtifactError
from models.predictor import SentimentPredictor, SlotTaggerPredictor
from models.sentiment import SentimentConfig
from models.slot_tagger import TaggerConfig
from training.data import read_slot_folder
from training.tagging import as_tagging

CONFIGS = {"slots": TaggerConfig, "sentiment": SentimentConfig}


# The numpy engine against torch to float32 rounding: the artifact's own weights.
pytestmark = pytest.mark.usefixtures("float32_weights")


def _pair(path: Path) -> tuple[object, object]:
    return load_artifact(path).predictor, load_artifact(path, engine="numpy").predictor


def test_tagger_without_torch_parses_as_torch(tiny_tagger_dir: Path, test_data_dir: Path) -> None:
    torch_tagger, numpy_tagger = _pair(tiny_tagger_dir)
    assert isinstance(torch_tagger, SlotTaggerPredictor)
    assert isinstance(numpy_tagger, SlotTaggerPredictor)
    assert isinstance(numpy_tagger.net, NumpyTagger)
    with pytest.raises(RuntimeError, match="without torch"):
        numpy_tagger.model  # noqa: B018
    valid = as_tagging(read_slot_folder(test_data_dir / "tiny_slots" / "valid"))
    texts = [" ".join(tokens) for tokens in valid.tokens] + ["Book a table for 2 at 7:30pm!"]
    for chunks in ([texts], [[t] for t in texts]):
        for chunk in chunks:
            pairs = zip(
                torch_tagger.parse(chunk, n_best=3),
                numpy_tagger.parse(chunk, n_best=3),
                strict=True,
            )
            for want, got in pairs:
                assert got.tags == want.tags
                assert [n for n, _ in got.intents] == [n for n, _ in want.intents]
                assert [n for n, _ in got.intent_ranking] == [n for n, _ in want.intent_ranking]
                for (_, p), (_, q) in zip(got.intent_ranking, want.intent_ranking, strict=True):
                    assert p == pytest.approx(q, abs=1e-5)
                assert [(s.slot, s.start, s.end) for s in got.slots] == [
                    (s.slot, s.start, s.end) for s in want.slots
                ]
                for s, w in zip(got.slots, want.slots, strict=True):
                    assert s.confidence == pytest.approx(w.confidence, abs=1e-5)
                assert [h.tags for h in got.hypotheses] == [h.tags for h in want.hypotheses]
                for hyp, ref in zip(got.hypotheses, want.hypotheses, strict=True):
                    assert hyp.probability == pytest.approx(ref.probability, abs=1e-5)


def test_sentiment_without_torch_classifies_as_torch(tiny_sentiment_dir: Path) -> None:
    torch_model, numpy_model = _pair(tiny_sentiment_dir)
    assert isinstance(torch_model, SentimentPredictor)
    assert isinstance(numpy_model, SentimentPredictor)
    assert isinstance(numpy_model.net, NumpySentiment)
    texts = ["I love this airline!!!", "worst. flight. ever.", "ok", "the food was fine :)"]
    for chunk in ([texts], [[t] for t in texts]):
        for batch in chunk:
            pairs = zip(torch_model.classify(batch), numpy_model.classify(batch), strict=True)
            for want, got in pairs:
                assert got.label == want.label
                for label, p in want.scores.items():
                    assert got.scores[label] == pytest.approx(p, abs=1e-5)


@pytest.mark.parametrize("task", ["slots", "sentiment"])
def test_config_view_defaults_are_the_dataclass_defaults(task: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(CONFIGS[task])}
    for name, value in CONFIG_DEFAULTS[task].items():
        assert fields[name].default == value, name


def test_config_view_is_the_config(tiny_tagger_dir: Path, tiny_sentiment_dir: Path) -> None:
    for path in (tiny_tagger_dir, tiny_sentiment_dir):
        artifact = load_artifact(path)
        view = vars(config_view(artifact.manifest))
        assert view == dataclasses.asdict(artifact.predictor.model.config)


def test_an_older_manifest_loads_without_torch(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    """A manifest without the config fields added later (what it meant: their defaults)."""
    old = shutil.copytree(tiny_tagger_dir, tmp_path / "old")
    manifest = json.loads((old / MANIFEST).read_text())
    for name in CONFIG_DEFAULTS["slots"]:
        if manifest["model_config"].get(name) == CONFIG_DEFAULTS["slots"][name]:
            del manifest["model_config"][name]
    (old / MANIFEST).write_text(json.dumps(manifest))
    text = "book a table for two at 7pm"
    want = load_artifact(tiny_tagger_dir).predictor
    got = load_artifact(old, engine="numpy").predictor
    assert isinstance(want, SlotTaggerPredictor) and isinstance(got, SlotTaggerPredictor)
    assert got.parse([text])[0].tags == want.parse([text])[0].tags


def test_a_missing_array_is_an_artifact_error(tiny_tagger_dir: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    from models.artifact import file_sha256

    broken = shutil.copytree(tiny_tagger_dir, tmp_path / "broken")
    arrays = load_file(str(broken / WEIGHTS))
    del arrays["emit.weight"]
    save_file(arrays, str(broken / WEIGHTS))
    manifest = json.loads((broken / MANIFEST).read_text())
    manifest["weights_sha256"] = file_sha256(broken / WEIGHTS)
    (broken / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="cannot load weights"):
        load_artifact(broken, engine="numpy")
