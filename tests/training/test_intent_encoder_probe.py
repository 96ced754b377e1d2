"""``benchmarks.intent_encoder_probe``: the encoder's own cross-validation on a BIO folder's
intents, with ``--config`` overriding its fine-tuning settings; ``--pair``'s second encoder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tiny_bert import write_encoder

from benchmarks import intent_encoder_probe
from training.config import SlotTrainConfig
from training.cv import cross_validate


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["intent_encoder_probe", *args])
    intent_encoder_probe.main()


def test_config_overrides_the_fine_tuning_defaults(
    tmp_path: Path, test_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_encoder(tmp_path / "encoder")
    out = tmp_path / "probe.json"
    overrides = {"lr": 1e-3, "epochs": 1}
    _run(
        monkeypatch,
        *("--data", str(test_data_dir / "tiny_slots"), "--encoder", str(tmp_path / "encoder")),
        *("--folds", "2", "--only-folds", "1", "--out", str(out)),
        *("--config", json.dumps(overrides)),
    )
    result = json.loads(out.read_text())
    assert result["probe"]["overrides"] == overrides
    assert result["config"]["lr"] == 1e-3 and result["config"]["epochs"] == 1
    # What the override leaves alone keeps the fine-tuning default.
    assert result["config"]["lr_schedule"] == "linear"
    [run] = result["runs"]
    assert run["fold"] == 1 and 0.0 <= run["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--config", "5"], "a JSON object of settings"),
        (["--config", "{"], "not JSON"),
        (["--config", '{"lrr": 1}'], "lrr"),
        (["--config", '{"threads": "many"}'], "threads"),
        (["--config", '{"lr": 1e-4}', "--blend"], "not to --blend"),
        (["--config", '{"lr": 1e-4}', "--pair"], "not to --blend or --pair"),
        (["--blend", "--pair"], "one at a time"),
    ],
)
def test_a_bad_config_is_a_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    says: str,
) -> None:
    args = ["--data", str(tmp_path), "--encoder", str(tmp_path), "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        _run(monkeypatch, *args, *extra)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _tagger_config(encoder: Path) -> SlotTrainConfig:
    """A tiny tagger with ``encoder`` blended in; seed 2, where the blend decides intents."""
    small = {"epochs": 2, "hidden_size": 16, "threads": 1, "seed": 2, "pretrained_vectors": "none"}
    return SlotTrainConfig(intent_encoder=str(encoder), **small)


def test_the_pair_probe_first_encoder_is_the_cross_validation_run(
    tmp_path: Path, test_data_dir: Path
) -> None:
    """``--pair``'s ``first`` is ``slotfill cv slots --intent-encoder``'s own fold; the second
    encoder and the mean are scored on the same utterances."""
    write_encoder(tmp_path / "encoder")
    config = _tagger_config(tmp_path / "encoder")
    data = test_data_dir / "tiny_slots"
    [run] = cross_validate("slots", data, config, folds=2, seeds=[2], only_folds=[1])["runs"]
    probe = intent_encoder_probe.pair_probe(data, config, folds=2, only=[1])
    [row] = probe["runs"]
    assert row["test"] == run["test"] and probe["examples"] == run["test"]
    assert row["right"]["first"] == round(run["intent_accuracy"] * run["test"])
    assert probe["second_seed"] == 2 + intent_encoder_probe.SECOND_SEED
    assert all(0 <= row["right"][k] <= row["test"] for k in ("second", "mean"))
    assert probe["right"] == row["right"]


def test_the_mean_of_one_encoder_twice_is_that_encoder(
    tmp_path: Path, test_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the second seed the first's, both encoders are the same network: the mean must
    read as each does (it averages the calibrated probabilities in the tagger's columns)."""
    write_encoder(tmp_path / "encoder")
    monkeypatch.setattr(intent_encoder_probe, "SECOND_SEED", 0)
    config = _tagger_config(tmp_path / "encoder")
    probe = intent_encoder_probe.pair_probe(test_data_dir / "tiny_slots", config, 2, [1])
    right = probe["right"]
    assert right["first"] == right["second"] == right["mean"]
