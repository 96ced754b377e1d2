"""benchmarks.cells (seed medians, parallel runs, --set) and benchmarks.ensemble (averaging)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import cells, ensemble
from models.artifact import load_artifact
from models.predictor import SlotTaggerPredictor
from training.data import read_slot_folder
from training.evaluate import evaluate_tagger


@pytest.mark.parametrize(
    "text,expected",
    [
        ("intent_weight=2", ("intent_weight", 2)),
        ("lr=1e-3", ("lr", 0.001)),
        ("pretrained_vectors=none", ("pretrained_vectors", "none")),
        ("max_minutes=null", ("max_minutes", None)),
    ],
)
def test_set_values_are_json_or_strings(text: str, expected: tuple[str, Any]) -> None:
    assert cells.parse_setting(text) == expected


@pytest.mark.parametrize("text", ["intent_weight", "=2"])
def test_set_needs_key_and_value(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        cells.parse_setting(text)


@pytest.mark.parametrize("setting", ["no_such_knob=1", "hidden_size=0", "seed=4", "epochs=2"])
def test_bad_or_flagged_settings_are_usage_errors(
    setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cells.main(["--set", setting])
    assert exc.value.code == 2
    assert setting.split("=")[0] in capsys.readouterr().err


def test_aggregate_takes_the_median_over_seeds() -> None:
    runs = [
        {"dataset": "atis", "cell": "lstm", "seed": s, "slot_f1": f, "intent_accuracy": i,
         "seconds_to_best": t, "total_seconds": 2 * t}
        for s, f, i, t in [(13, 0.97, 0.90, 10.0), (1, 0.99, 0.80, 30.0), (2, 0.98, 0.99, 20.0)]
    ]  # fmt: skip
    agg = cells.aggregate(runs)
    assert agg["seed"] == "median" and agg["seeds"] == [13, 1, 2]
    assert agg["slot_f1"] == pytest.approx(0.98)
    assert agg["intent_accuracy"] == pytest.approx(0.90)
    assert agg["seconds_to_best"] == 20.0 and agg["total_seconds"] == 40.0
    assert agg["slot_f1_mean"] == pytest.approx(0.98)


def test_parallel_runs_score_as_the_same_runs_one_by_one(
    tmp_path: Path, test_data_dir: Path, tiny_train_config: dict[str, Any]
) -> None:
    """One thread per run is deterministic, so --jobs changes nothing but the wall time."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "atis").symlink_to(test_data_dir / "tiny_slots", target_is_directory=True)
    own_flags = ("epochs", "seed", "threads", "device")
    tiny = {k: v for k, v in tiny_train_config.items() if k not in own_flags}
    common = ["--data-dir", str(data), "--datasets", "atis", "--cells", "lstm", "--epochs", "2"]
    common += ["--seeds", "1", "2", "--threads", "1", "--device", "cpu"]
    common += [f"--set={k}={json.dumps(v)}" for k, v in tiny.items()]
    scores = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}.json"
        assert cells.main([*common, "--jobs", jobs, "--out", str(out)]) == 0
        document = json.loads(out.read_text())
        results = document["results"]
        assert [r["seed"] for r in results] == [1, 2]
        assert all(r["config"]["hidden_size"] == tiny["hidden_size"] for r in results)
        (median,) = document["aggregates"]
        assert median["seeds"] == [1, 2]
        scores.append([(r["slot_f1"], r["intent_accuracy"], r["best_epoch"]) for r in results])
    assert scores[0] == scores[1]


def test_an_average_of_one_tagger_is_that_tagger(
    tiny_tagger_dir: Path, test_data_dir: Path
) -> None:
    predictor = load_artifact(tiny_tagger_dir).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    data = read_slot_folder(test_data_dir / "tiny_slots" / "valid")
    alone, _ = evaluate_tagger(predictor, data)
    outputs = ensemble.member_outputs(predictor, data)
    tags, intents = predictor.tags.labels, predictor.intents.labels
    for members in ([outputs], [outputs, outputs]):
        averaged = ensemble.score_average(members, tags, intents, data)
        for key in ("slot_f1", "intent_accuracy", "exact_match"):
            assert averaged[key] == pytest.approx(alone[key])


def test_every_member_counts_in_the_average(tiny_tagger_dir: Path, test_data_dir: Path) -> None:
    """A second member that is sure of "O" everywhere and of one intent outvotes the first."""
    predictor = load_artifact(tiny_tagger_dir).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    data = read_slot_folder(test_data_dir / "tiny_slots" / "valid")
    emissions, intent_scores, params, mask = ensemble.member_outputs(predictor, data)
    tags, intents = predictor.tags.labels, predictor.intents.labels
    assert evaluate_tagger(predictor, data)[0]["slot_f1"] > 0
    sure_emissions = torch.full_like(emissions, -1e3)
    sure_emissions[..., tags.index("O")] = 1e3
    sure_intents = torch.full_like(intent_scores, -1e3)
    sure_intents[:, -1] = 0.0
    sure = (sure_emissions, sure_intents, params, mask)
    averaged = ensemble.score_average(
        [(emissions, intent_scores, params, mask), sure], tags, intents, data
    )
    assert averaged["slot_f1"] == 0.0  # no slot predicted
    assert data.intents is not None
    expected = sum(gold == intents[-1] for gold in data.intents) / len(data)
    assert averaged["intent_accuracy"] == pytest.approx(expected)


def test_results_quote_no_absolute_path_of_this_machine() -> None:
    from benchmarks.common import REPO_ROOT, portable

    inside = REPO_ROOT / "model_store" / "demo"
    quoted = portable({"command": f"python -m x --a {inside} --b /tmp/run/atis", "p": [inside]})
    assert quoted == {
        "command": "python -m x --a model_store/demo --b <abs>/run/atis",
        "p": ["model_store/demo"],
    }
