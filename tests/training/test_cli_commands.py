"""``slotfill train|evaluate|predict`` end to end on the demo data (one tiny epoch each)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slotfill.cli import build_parser, main
from training.cli import busy_cores

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo"
TESTS_DATA = REPO / "tests" / "data"
# Calibration (README: Calibration): ECE with the artifact's temperatures, without them, and
# cross-fitted on the split's halves, and the temperatures.
SLOT_KEYS = (
    {"slot_f1", "slot_precision", "slot_recall", "intent_accuracy", "exact_match", "n"}
    | {
        f"{head}_ece{variant}"
        for head in ("intent", "span")
        for variant in ("", "_uncalibrated", "_crossfit")
    }
    | {"intent_temperature", "span_temperature"}
)
SENTIMENT_KEYS = {
    "accuracy",
    "macro_f1",
    "n",
    "ece",
    "ece_uncalibrated",
    "ece_crossfit",
    "temperature",
}
# task -> (--data, split to evaluate on, expected score keys, texts to predict)
TASKS = {
    "slots": (DEMO, DEMO / "valid", SLOT_KEYS, ["book a table for two at 7pm tomorrow", "hi"]),
    "sentiment": (
        DEMO / "sentiment",
        DEMO / "sentiment" / "valid.tsv",
        SENTIMENT_KEYS,
        ["Great crew, thanks!", "My bag never showed up."],
    ),
}
SMALL = {"word_dim": 16, "char_dim": 8, "char_filters": 8}


def train_args(task: str, data: Path, out: Path, config: Path) -> list[str]:
    return [
        "train", task, "--data", str(data), "--out", str(out), "--epochs", "1",
        "--hidden-size", "16", "--progress", "none", "--threads", "1", "--config", str(config),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def small_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "small.json"
    path.write_text(json.dumps(SMALL))
    return path


@pytest.fixture(scope="module", params=list(TASKS))
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, small_config: Path
) -> tuple[str, Path, str]:
    """(task, artifact dir, stdout of ``slotfill train``) after one epoch on the demo data."""
    task = request.param
    out = tmp_path_factory.mktemp("cli") / task
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(train_args(task, TASKS[task][0], out, small_config))
    assert code == 0
    return task, out, stdout.getvalue()


def test_train_writes_an_artifact(trained: tuple[str, Path, str]) -> None:
    task, out, stdout = trained
    assert (out / "manifest.json").is_file() and (out / "model.safetensors").is_file()
    assert stdout.splitlines()[-1].startswith(f"saved {out}: ")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["task"] == task
    assert manifest["training"]["config"]["epochs"] == 1
    assert manifest["training"]["config"]["hidden_size"] == 16  # flag
    assert manifest["training"]["config"]["word_dim"] == 16  # --config file


def test_evaluate_json(trained: tuple[str, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    task, out, _ = trained
    _, split, keys, _ = TASKS[task]
    assert main(["evaluate", str(out), str(split), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(scores) == keys
    # Every utterance of the split: a line of `label`, or of the TSV after its header.
    lines = (split / "label" if task == "slots" else split).read_text().splitlines()
    assert scores["n"] == (len(lines) if task == "slots" else len(lines) - 1)
    for key, value in scores.items():
        if key.endswith("temperature"):
            assert value > 0.0, key
        elif key != "n":
            assert 0.0 <= value <= 1.0, key


def test_evaluate_errors_file_lists_every_wrong_utterance(
    trained: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One record per utterance that is not wholly right: as many as the scores imply."""
    task, out, _ = trained
    split = TASKS[task][1]
    errors_file = tmp_path / "sub" / "errors.jsonl"
    assert main(["evaluate", str(out), str(split), "--json", "--errors", str(errors_file)]) == 0
    captured = capsys.readouterr()
    scores = json.loads(captured.out.splitlines()[-1])
    records = [json.loads(line) for line in errors_file.read_text().splitlines()]
    right = scores["exact_match"] if task == "slots" else scores["accuracy"]
    assert len(records) == round(scores["n"] * (1 - right)) > 0  # one epoch: far from perfect
    assert f"{len(records)} of {scores['n']} utterances wrong" in captured.err
    if task == "slots":
        lines = (split / "seq.in").read_text().splitlines()
        for r in records:
            assert " ".join(lines[r["line"] - 1].split()) == r["text"]
            assert r["missed"] or r["spurious"] or r["intent_correct"] is False
    else:
        for r in records:
            assert r["gold"] != r["pred"]


def test_evaluate_errors_file_that_cannot_be_written_exits_2(
    trained: tuple[str, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task, out, _ = trained
    assert main(["evaluate", str(out), str(TASKS[task][1]), "--errors", str(tmp_path)]) == 2
    assert "cannot write the errors file" in capsys.readouterr().err


def test_predict_prints_one_json_object_per_text(
    trained: tuple[str, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    task, out, _ = trained
    texts = TASKS[task][3]
    assert main(["predict", str(out), *texts, " "]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == [*texts, " "]
    assert lines[-1] == {"text": " ", "error": "empty text"}
    for text, obj in zip(texts, lines, strict=False):
        if task == "slots":
            assert set(obj) == {"text", "intent", "intents", "slots"}
            assert 0.0 <= obj["intent"]["confidence"] <= 1.0
            assert obj["intents"] == [obj["intent"]]  # a single-label model: its best one
            for slot in obj["slots"]:
                assert text[slot["start"] : slot["end"]] == slot["value"]
        else:
            assert set(obj) == {"text", "sentiment"}
            assert obj["sentiment"]["label"] in obj["sentiment"]["scores"]


def test_evaluate_with_the_wrong_kind_of_split(
    trained: tuple[str, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    task, out, _ = trained
    split = DEMO / "sentiment" / "valid.tsv" if task == "slots" else DEMO / "valid"
    assert main(["evaluate", str(out), str(split)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {split}: ")


def _broken_slot_data(root: Path) -> Path:
    shutil.copytree(TESTS_DATA / "malformed" / "count_mismatch", root / "train")
    shutil.copytree(TESTS_DATA / "tiny_slots" / "valid", root / "valid")
    return root / "train" / "seq.out"


def _broken_sentiment_data(root: Path) -> Path:
    root.mkdir()
    shutil.copy(TESTS_DATA / "malformed" / "bad_row.tsv", root / "train.tsv")
    shutil.copy(TESTS_DATA / "tiny_sentiment" / "valid.tsv", root / "valid.tsv")
    return root / "train.tsv"


@pytest.mark.parametrize(
    "task,make,line",
    [("slots", _broken_slot_data, 3), ("sentiment", _broken_sentiment_data, 4)],
    ids=["slots", "sentiment"],
)
def test_train_on_malformed_data_exits_2(
    task: str,
    make: object,
    line: int,
    tmp_path: Path,
    small_config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert callable(make)
    bad_file = make(tmp_path / "data")
    out = tmp_path / "out"
    assert main(train_args(task, tmp_path / "data", out, small_config)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [next(e for e in err if e.startswith("error: "))]  # one line, no traceback
    assert err[0].startswith(f"error: {bad_file}:{line}: ")
    assert not out.exists()


@pytest.mark.parametrize(
    "config,message",
    [
        ({"epochz": 3}, r"epochz"),
        ({"lr": 0}, r"lr"),  # flags (--epochs) would override the file
        ({"cell": "transformer"}, r"cell"),
    ],
)
def test_bad_hyper_parameters_exit_2(
    config: dict[str, object], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert main(train_args("slots", DEMO, tmp_path / "out", path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid hyper-parameters:")
    assert message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content", ['{"epochs": 1,', "[1, 2]", None], ids=["not JSON", "not an object", "missing"]
)
def test_unreadable_config_file_exits_2(
    content: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    assert main(train_args("slots", DEMO, tmp_path / "out", path)) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: ")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["evaluate", "{missing}", str(DEMO / "valid")], "no such artifact directory"),
        (["predict", "{missing}", "hello"], "no such artifact directory"),
        (["evaluate", "{tagger}", str(TESTS_DATA / "malformed" / "bad_encoding")], "seq.in:2:"),
        (["evaluate", "{sentiment}", str(TESTS_DATA / "malformed" / "bad_header.tsv")], "tsv:1:"),
    ],
)
def test_evaluate_and_predict_errors_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    tiny_tagger_dir: Path,
    tiny_sentiment_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dirs = {
        "missing": tmp_path / "nope",
        "tagger": tiny_tagger_dir,
        "sentiment": tiny_sentiment_dir,
    }
    assert main([arg.format(**dirs) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every (sub)command path of the parser, e.g. ``["train", "slots"]``."""
    found: list[list[str]] = [list(prefix)] if prefix else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_commands(sub, (*prefix, name)))
    return found


COMMANDS = _commands(build_parser())


def test_all_expected_commands_exist() -> None:
    expected = [["train"], ["train", "slots"], ["train", "sentiment"], ["evaluate"], ["predict"]]
    assert all(c in COMMANDS for c in expected)


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "slotfill")
def test_help_exits_0(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {' '.join(['slotfill', *command])}")


def test_console_script() -> None:
    script = Path(sys.executable).with_name("slotfill")
    if not script.exists():
        pytest.skip("the slotfill console script is not installed in this environment")
    done = subprocess.run(
        [str(script), "evaluate", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "MODEL_DIR" in done.stdout


@pytest.mark.parametrize("task", ["slots", "sentiment"])
def test_train_help_lists_every_hyper_parameter_with_its_default(task: str) -> None:
    from training.config import SentimentTrainConfig, SlotTrainConfig

    config = SlotTrainConfig if task == "slots" else SentimentTrainConfig
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["train", task, "--help"])
    lines = out.getvalue().splitlines()
    for name, field in config.model_fields.items():
        assert any(
            line.startswith(f"  {name} [{json.dumps(field.default)}]: ") for line in lines
        ), name


def test_training_on_a_busy_machine_without_threads_warns(
    tmp_path: Path,
    small_config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the count it names leaves the busy cores to their processes, at least one thread
    assert "--threads 1 avoids it" in str(busy_cores(None, 2, load=1.2, cores=2))
    assert "--threads 5 avoids it" in str(busy_cores(None, 8, load=3.0, cores=8))
    assert "--threads 1 avoids it" in str(busy_cores(None, 4, load=9.0, cores=4))
    # an explicit count, one thread anyway (torchrun's ranks), a quiet machine, one core
    assert busy_cores(2, 2, load=5.0, cores=2) is None
    assert busy_cores(None, 1, load=5.0, cores=2) is None
    assert busy_cores(None, 2, load=0.3, cores=2) is None
    assert busy_cores(None, 1, load=5.0, cores=1) is None
    # `slotfill train` says it on stderr and trains as asked
    monkeypatch.setattr("os.getloadavg", lambda: (1.5, 1.0, 0.5))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr("torch.get_num_threads", lambda: 2)
    args = train_args("sentiment", TASKS["sentiment"][0], tmp_path / "m", small_config)
    at = args.index("--threads")
    del args[at : at + 2]
    assert main(args) == 0
    assert "warning: load average 1.5 on 2 cores" in capsys.readouterr().err
    assert (tmp_path / "m" / "manifest.json").is_file()
