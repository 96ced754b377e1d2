"""``training.pipeline.train_folder``: read -> fit -> fingerprint -> save, for both tasks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from models.artifact import load_artifact
from training.config import SentimentTrainConfig, SlotTrainConfig
from training.data import DataError, fingerprint
from training.pipeline import train_folder


@pytest.mark.parametrize(
    "fixture,folder,splits",
    [
        ("tiny_tagger_dir", "tiny_slots", ("train", "valid")),
        ("tiny_sentiment_dir", "tiny_sentiment", ("train.tsv", "valid.tsv")),
    ],
)
def test_the_artifact_records_the_data_it_was_trained_on(
    fixture: str,
    folder: str,
    splits: tuple[str, str],
    request: pytest.FixtureRequest,
    test_data_dir: Path,
) -> None:
    manifest = load_artifact(request.getfixturevalue(fixture)).manifest
    data = test_data_dir / folder
    assert manifest.data == {
        "name": folder,
        "train": fingerprint(data / splits[0]),
        "valid": fingerprint(data / splits[1]),
    }
    assert manifest.training["best_epoch"] == manifest.history[-1]["best_epoch"]


def test_a_config_of_the_other_task_is_refused(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(TypeError, match="SlotTrainConfig"):
        train_folder(
            "slots", test_data_dir / "tiny_slots", SentimentTrainConfig(), tmp_path / "out"
        )
    with pytest.raises(TypeError, match="SentimentTrainConfig"):
        train_folder(
            "sentiment",
            test_data_dir / "tiny_sentiment",
            SlotTrainConfig(**tiny_train_config),
            tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


def test_a_name_replaces_the_folder_name_and_repairs_are_reported(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    data = Path(shutil.copytree(test_data_dir / "tiny_slots", tmp_path / "data"))
    seq_out = data / "train" / "seq.out"
    lines = seq_out.read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if line.split()[0] == "O" and " B-" in line)
    lines[first] = lines[first].replace(" B-", " I-", 1)  # a stray I- after O: read as B-
    seq_out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    warnings: list[str] = []
    config = SlotTrainConfig(**(tiny_train_config | {"epochs": 1}))
    trained = train_folder(
        "slots", data, config, tmp_path / "out", name="demo", on_warning=warnings.append
    )
    assert trained.artifact == tmp_path / "out"
    manifest = load_artifact(tmp_path / "out").manifest
    assert manifest.data["name"] == "demo"
    assert manifest.data["train"] == fingerprint(data / "train")
    assert manifest.metrics["valid"] == trained.result.metrics
    # scores on the stored utterances; the valid ECEs before and after the temperatures
    assert set(manifest.metrics) == {"valid", "sanity", "calibration"}
    assert len(manifest.history) == 1
    repairs = [w for w in warnings if "seq.out:" in w]  # other warnings: slot type guesses
    assert len(repairs) == 1
    assert f"seq.out:{first + 1}: I-" in repairs[0] and "read as B-" in repairs[0]


def _first_best(history: list[dict[str, Any]], score: Any) -> int:
    """The epoch early stopping keeps when it reads ``score`` (the first of the best)."""
    values = [score(record["valid"]) for record in history]
    return int(history[values.index(max(values))]["epoch"])


def test_early_stopping_reads_what_stop_on_names(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    data = test_data_dir / "tiny_slots"
    config = {**tiny_train_config, "epochs": 8, "patience": 8, "lr": 0.01}
    reads = {
        "slots": lambda v: v["slot_f1"],
        "intents": lambda v: v["intent_accuracy"],
        "both": lambda v: (v["slot_f1"] + v["intent_accuracy"]) / 2,
    }
    best = {}
    for stop_on, score in reads.items():
        fit = train_folder(
            "slots", data, SlotTrainConfig(**config, stop_on=stop_on), tmp_path / stop_on
        )
        assert fit.artifact is not None
        manifest = load_artifact(fit.artifact).manifest
        best[stop_on] = manifest.training["best_epoch"]
        assert best[stop_on] == _first_best(manifest.history, score), stop_on
    # The same training each time (same seed): only the epoch kept differs.
    assert best["slots"] != best["intents"]
    # What it cannot read is refused before training.
    no_intents = tmp_path / "no_intents"
    shutil.copytree(data, no_intents)
    (no_intents / "valid" / "label").unlink()
    with pytest.raises(DataError, match="no intents"):
        train_folder(
            "slots", no_intents, SlotTrainConfig(**config, stop_on="intents"), tmp_path / "x"
        )
