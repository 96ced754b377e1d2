"""``slotfill cv``: stratified folds, their early-stopping parts, and a tiny run end to end."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from models.vocab import LabelSet
from slotfill.cli import main
from training.class_losses import intent_loss
from training.config import SentimentTrainConfig, SlotTrainConfig
from training.cv import (
    class_scores,
    cross_validate,
    make_folds,
    pooled_scores,
    stratified_folds,
)
from training.data import DataError

# 40 of a, 13 of b, 7 of c, 3 of d and one e: classes above, near and below 5 folds.
LABELS = ["a"] * 40 + ["b"] * 13 + ["c"] * 7 + ["d"] * 3 + ["e"]
FAST = {  # a few seconds a fold on one core
    "epochs": 1,
    "hidden_size": 16,
    "word_dim": 16,
    "char_dim": 8,
    "char_filters": 8,
    "batch_size": 8,
    "lr": 0.02,
    "threads": 1,
    "device": "cpu",
    "ema_decay": None,
    "pretrained_vectors": "none",
}


def test_folds_are_disjoint_cover_everything_and_keep_the_class_balance() -> None:
    folds = stratified_folds(LABELS, 5, seed=3)
    everything = [i for f in folds for i in f]
    assert sorted(everything) == list(range(len(LABELS)))  # disjoint and covering
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    for label, total in Counter(LABELS).items():
        per_fold = [sum(LABELS[i] == label for i in f) for f in folds]
        assert sum(per_fold) == total
        assert max(per_fold) - min(per_fold) <= 1  # d's 3 examples: 3 different folds


def test_folds_depend_on_the_fold_seed_only() -> None:
    assert stratified_folds(LABELS, 5, seed=3) == stratified_folds(LABELS, 5, seed=3)
    assert stratified_folds(LABELS, 5, seed=3) != stratified_folds(LABELS, 5, seed=4)


def test_early_stopping_never_sees_the_held_out_fold() -> None:
    folds = make_folds(LABELS, 5, stop_fraction=0.1, seed=0)
    for fold in folds:
        train, stop, test = set(fold.train), set(fold.stop), set(fold.test)
        assert not (train & stop or train & test or stop & test)
        assert train | stop | test == set(range(len(LABELS)))
        stopped = Counter(LABELS[i] for i in stop)
        assert stopped["a"] == 3  # 10% of a's 32 training examples, rounded down
        # Classes under 10 training examples keep them all for training.
        assert stopped["c"] == stopped["d"] == stopped["e"] == 0


def test_macro_f1_averages_the_classes_present() -> None:
    gold = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    macro, f1 = class_scores(gold, pred, ["a", "b", "z"])  # z: not in this fold
    assert f1["a"] == pytest.approx(2 / 3) and f1["b"] == pytest.approx(0.8)
    assert macro == pytest.approx((2 / 3 + 0.8) / 2)


def test_pooled_scores_are_of_all_folds_together() -> None:
    # Fold 1: gold a a b, pred a b b; fold 2: gold a b, pred a a. Per fold the rare class
    # swings; pooled, each class's F1 counts every example once.
    gold = ["a", "a", "b", "a", "b"]
    pred = ["a", "b", "b", "a", "a"]
    scores = pooled_scores(gold, pred, ["a", "b"])
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["macro_f1"] == pytest.approx((2 * 2 / 6 + 2 * 1 / 4) / 2)  # a 2/3, b 1/2
    assert scores["errors"] == [["a", "b", 1], ["b", "a", 1]]
    assert pooled_scores(["x"], ["x"], [])["macro_f1"] is None


def test_logit_adjusted_and_smoothed_intent_loss() -> None:
    intents = LabelSet(["rare", "common"])
    rows = [("rare",)] + [("common",)] * 3
    assert intent_loss(SlotTrainConfig(), intents, rows, multi=False) is None  # the default
    config = SlotTrainConfig(intent_logit_adjustment=1.0, intent_label_smoothing=0.1)
    loss = intent_loss(config, intents, rows, multi=False)
    assert loss is not None
    logits, target = torch.tensor([[0.5, -0.2]]), torch.tensor([0])
    shifted = logits + torch.log(torch.tensor([0.25, 0.75]))
    expected = torch.nn.functional.cross_entropy(shifted, target, label_smoothing=0.1)
    assert float(loss(logits, target)) == pytest.approx(float(expected))
    # Adjusted, a rare-intent example that the raw logits get right still costs more.
    plain = torch.nn.functional.cross_entropy(logits, target)
    assert float(loss(logits, target)) > float(plain)
    with pytest.raises(DataError, match="single-label"):
        intent_loss(config, intents, rows, multi=True)


def test_cross_validation_of_a_tiny_tagger(test_data_dir: Path) -> None:
    lines: list[str] = []
    result = cross_validate(
        "slots",
        test_data_dir / "tiny_slots",
        SlotTrainConfig(**FAST),
        folds=2,
        seeds=[13, 1],
        progress=lines.append,
    )
    assert result["examples"] == 80  # 60 train + 20 valid, pooled
    runs = result["runs"]
    assert [(r["seed"], r["fold"]) for r in runs] == [(13, 1), (13, 2), (1, 1), (1, 2)]
    assert sum(r["test"] for r in runs if r["seed"] == 13) == 80  # each example scored once
    assert all(r["stop"] > 0 and r["train"] + r["stop"] + r["test"] == 80 for r in runs)
    # An epoch line each epoch, then the fold's line: one per seed and fold.
    folds = [line for line in lines if ": epoch" not in line]
    assert len(folds) == 4 and folds[0].startswith("seed 13 fold 1/2: train")
    epochs = [line for line in lines if line.startswith("seed 13 fold 1/2: epoch")]
    assert len(epochs) == FAST["epochs"]
    assert "slot_f1=" in epochs[0] and lines.index(epochs[-1]) < lines.index(folds[0])
    for key in ("intent_accuracy", "intent_macro_f1", "slot_f1", "exact_match"):
        s = result["summary"][key]
        values = [r[key] for r in runs]
        assert s["n"] == 4 and s["min"] == min(values) and s["max"] == max(values)
        assert s["min"] <= s["median"] <= s["max"] and not math.isnan(s["std"])
    pooled = result["pooled"]
    assert [s["seed"] for s in pooled["per_seed"]] == [13, 1]
    for s in pooled["per_seed"]:  # every example once: the errors are the recall's misses
        assert 0 <= s["macro_f1"] <= 1
        missed = sum(n for _, _, n in s["errors"])
        assert s["accuracy"] == pytest.approx(1 - missed / 80)
    assert pooled["macro_f1"]["n"] == 2 and pooled["accuracy"]["n"] == 2
    per_class = result["per_class"]
    assert {c: r["n"] for c, r in per_class.items()} == {
        "book_restaurant": 33,
        "complaint": 27,
        "greet": 20,
    }
    for r in per_class.values():
        assert 0 <= r["recall_min"] <= r["recall"] <= r["recall_max"] <= 1


def test_cv_command_prints_a_table_then_json(
    test_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "fast.json"
    config.write_text(json.dumps(FAST))
    args = ["cv", "sentiment", "--data", str(test_data_dir / "tiny_sentiment"), "--folds", "2"]
    assert main([*args, "--config", str(config)]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0].startswith("2-fold cross-validation of ")
    assert any(line.startswith("macro_f1") for line in out)
    result: dict[str, Any] = json.loads(out[-1])
    assert result["task"] == "sentiment" and result["seeds"] == [13]
    assert set(result["summary"]) == {"accuracy", "macro_f1"}
    assert any(line.startswith("seed 13: accuracy=") for line in out)  # pooled, per seed
    assert result["pooled"]["per_seed"][0]["macro_f1"] is not None
    assert "seed 13 fold 2/2:" in captured.err


def test_cv_refuses_more_folds_than_examples(
    test_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(test_data_dir / "tiny_sentiment")
    assert main(["cv", "sentiment", "--data", data, "--folds", "1000"]) == 2
    assert "cannot make 1000 folds" in capsys.readouterr().err


def test_sentiment_config_is_checked(test_data_dir: Path) -> None:
    with pytest.raises(TypeError):
        cross_validate("sentiment", test_data_dir / "tiny_sentiment", SlotTrainConfig(**FAST))
    with pytest.raises(DataError, match="fraction"):
        cross_validate(
            "sentiment",
            test_data_dir / "tiny_sentiment",
            SentimentTrainConfig(**FAST),
            stop_fraction=0.7,
        )


def test_some_folds_only(test_data_dir: Path) -> None:
    data = test_data_dir / "tiny_sentiment"
    config = SentimentTrainConfig(**FAST)
    result = cross_validate("sentiment", data, config, folds=4, only_folds=[3])
    assert [r["fold"] for r in result["runs"]] == [3] and result["only_folds"] == [3]
    held_out = result["runs"][0]["test"]
    assert sum(r["n"] for r in result["per_class"].values()) == held_out  # that fold's only
    with pytest.raises(DataError, match="numbered 1 to 4"):
        cross_validate("sentiment", data, config, folds=4, only_folds=[5])


def _dstc8_split(path: Path, cities: list[str]) -> None:
    """Each city once as a sentence that answers ``from_location``, once with no context."""
    rows = []
    for city in cities:
        text = f"I leave from {city}"
        span = {"startIndex": 13, "endIndex": 13 + len(city)}
        label = {"slot": "from_location", "valueSpan": span}
        rows.append(
            {
                "userInput": {"text": text},
                "context": {"requestedSlots": ["from_location"]},
                "labels": [label],
            }
        )
        rows.append({"userInput": {"text": f"a bus from {city}"}, "context": {}, "labels": []})
    path.write_text(json.dumps(rows))


def test_cv_trains_on_the_bare_answers_of_the_training_folds_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bare_answers`` holds in cv as in ``slotfill train``: each fold's training set gets
    the bare answers of its own examples, never one of the held-out fold's."""
    _dstc8_split(tmp_path / "train.json", ["Fresno", "Reno", "Boise", "Tulsa", "Omaha"])
    _dstc8_split(tmp_path / "valid.json", ["Austin", "Dallas", "Denver"])
    import training.cv as cv_module

    seen: list[list[str]] = []
    real_fit = cv_module.fit_tagger

    def spy(train: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append([" ".join(tokens) for tokens in train.tokens])
        return real_fit(train, *args, **kwargs)

    monkeypatch.setattr(cv_module, "fit_tagger", spy)
    for bare in (False, True):
        seen.clear()
        result = cross_validate(
            "slots",
            tmp_path,
            SlotTrainConfig(**{**FAST, "bare_answers": bare}),
            folds=2,
            stop_fraction=0.2,
        )
        assert len(seen) == 2
        for run, trained in zip(result["runs"], seen, strict=True):
            answers = [t for t in trained if len(t.split()) == 1]
            sentences = [t for t in trained if t.startswith("I leave from")]
            assert len(trained) == run["train"] + len(answers)
            if bare:  # one bare answer per answering sentence the fold trains on
                assert sorted(answers) == sorted(s.split()[-1] for s in sentences)
            else:
                assert answers == []
