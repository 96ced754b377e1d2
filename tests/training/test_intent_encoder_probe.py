"""``benchmarks.intent_encoder_probe``: the encoder's own cross-validation on a BIO folder's
intents, with ``--config`` overriding its fine-tuning settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tiny_bert import write_encoder

from benchmarks import intent_encoder_probe


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
