"""Knowledge distillation of a sentiment classifier (training/distill.py): the copies, the
loss, the teacher's checks, and a student that learns what its teacher says."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from models.artifact import load_artifact
from models.predictor import SentimentPredictor
from training.config import SentimentTrainConfig
from training.data import DataError, read_tsv
from training.distill import (
    _LOADED,
    Teacher,
    augment,
    distilled_loss,
    ensemble_probabilities,
    soft_cross_entropy,
)
from training.pipeline import train_folder
from training.teacher_cache import LogitCache, default_folder, resolve_folder

TEXTS = [
    "my flight to denver was cancelled again",
    "thanks for the great service",
    "ok",
    "where is my bag",
]


@pytest.fixture(autouse=True)
def _own_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default teacher cache (``auto``) in the test's folder, not the user's, for this
    process and the commands it starts."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _is_subsequence(part: list[str], whole: list[str]) -> bool:
    it = iter(whole)
    return all(word in it for word in part)


def test_copies_are_parts_of_their_text_in_order_and_repeat_with_the_seed() -> None:
    copies = augment(TEXTS, 5, seed=3)
    assert len(copies) == 5 * len(TEXTS)
    for i, text in enumerate(TEXTS):
        for copy in copies[5 * i : 5 * i + 5]:
            assert copy, "a copy is never empty"
            assert _is_subsequence(copy.split(), text.split())
    # A text of several words gets copies that differ from it; a one-word text stays itself.
    assert all(c != TEXTS[0] for c in copies[:5])
    assert copies[10:15] == ["ok"] * 5
    assert augment(TEXTS, 5, seed=3) == copies
    assert augment(TEXTS, 5, seed=4) != copies
    assert augment(TEXTS, 0, seed=3) == []


def test_soft_cross_entropy_of_one_hot_targets_is_cross_entropy() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.3, -0.2]])
    target = torch.tensor([0, 2])
    one_hot = torch.nn.functional.one_hot(target, 3).float()
    expected = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    assert torch.allclose(soft_cross_entropy(logits, one_hot, 1.0), expected)
    # At temperature T the logits are divided by T and the loss scaled by T**2.
    hot = torch.nn.functional.cross_entropy(logits / 2, target, reduction="none") * 4
    assert torch.allclose(soft_cross_entropy(logits, one_hot, 2.0), hot)


def test_an_original_text_mixes_gold_and_teacher_a_copy_has_the_teacher_alone() -> None:
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    soft_target = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    hard = torch.tensor([10.0, 10.0])  # per-row gold losses
    soft = soft_cross_entropy(logits, soft_target, 1.0)
    original = torch.tensor([True, False])
    got = distilled_loss(logits, hard, soft_target, original, 0.25, 1.0)
    want = ((0.75 * 10.0 + 0.25 * soft[0]) + soft[1]) / 2
    assert torch.isclose(got, want)


def test_a_teacher_must_be_a_sentiment_artifact_with_the_same_labels(
    tiny_sentiment_dir: Path, tiny_tagger_dir: Path, tmp_path: Path
) -> None:
    teacher = Teacher.load(tiny_sentiment_dir, ["negative", "neutral", "positive"])
    probs = teacher.probabilities(TEXTS, 1.0)
    assert probs.shape == (len(TEXTS), 3)
    assert probs.sum(axis=1) == pytest.approx([1.0] * len(TEXTS), abs=1e-5)
    # A higher temperature flattens the distribution.
    assert (teacher.probabilities(TEXTS, 4.0).max(axis=1) < probs.max(axis=1)).all()
    assert len(teacher.source["weights_sha256"]) == 64
    with pytest.raises(DataError, match="labels"):
        Teacher.load(tiny_sentiment_dir, ["negative", "positive"])
    with pytest.raises(DataError, match="not a tagger"):
        Teacher.load(tiny_tagger_dir, ["negative", "neutral", "positive"])
    with pytest.raises(DataError, match="teacher"):
        Teacher.load(tmp_path / "missing", ["negative", "neutral", "positive"])


def _flipped(src: Path, dst: Path) -> Path:
    """A copy of a sentiment folder with positive and negative swapped in both splits."""
    dst.mkdir()
    swap = {"positive": "negative", "negative": "positive"}
    for name in ("train.tsv", "valid.tsv"):
        rows = read_tsv(src / name)
        with (dst / name).open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f, delimiter="\t", lineterminator="\n")
            out.writerow(["text", "label"])
            for text, label in zip(rows.texts, rows.labels, strict=True):
                out.writerow([text, swap.get(label, label)])
    return dst


def _agreement(a: SentimentPredictor, b: SentimentPredictor, texts: list[str]) -> float:
    ours = [r.label for r in a.classify(texts)]
    theirs = [r.label for r in b.classify(texts)]
    return sum(x == y for x, y in zip(ours, theirs, strict=True)) / len(texts)


def test_a_student_learns_what_its_teacher_says_not_only_the_gold_labels(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    # The teacher learnt the sentiment backwards; a student taught by it alone (weight 1)
    # says what the teacher says on the training texts, against its own gold labels.
    data = test_data_dir / "tiny_sentiment"
    config = {**tiny_train_config, "epochs": 8}
    teacher_dir = train_folder(
        "sentiment", _flipped(data, tmp_path / "flipped"), SentimentTrainConfig(**config),
        tmp_path / "teacher",
    ).artifact  # fmt: skip
    assert teacher_dir is not None
    student = SentimentTrainConfig(
        **config, distill_from=str(teacher_dir), distill_weight=1.0, distill_copies=2
    )
    fit = train_folder("sentiment", data, student, tmp_path / "student")
    assert fit.artifact is not None
    teacher = load_artifact(teacher_dir).predictor
    learnt = load_artifact(fit.artifact).predictor
    assert isinstance(teacher, SentimentPredictor) and isinstance(learnt, SentimentPredictor)
    texts = list(read_tsv(data / "train.tsv").texts)
    assert _agreement(teacher, teacher, texts) == 1.0
    assert _agreement(learnt, teacher, texts) >= 0.8
    plain = train_folder("sentiment", data, SentimentTrainConfig(**config), tmp_path / "plain")
    assert plain.artifact is not None
    alone = load_artifact(plain.artifact).predictor
    assert isinstance(alone, SentimentPredictor)
    assert _agreement(alone, teacher, texts) <= 0.5
    manifest = json.loads((fit.artifact / "manifest.json").read_text())
    record = manifest["training"]["distilled_from"]
    [source] = record["teachers"]
    assert source["path"] == str(teacher_dir) and len(source["weights_sha256"]) == 64
    assert record["copies"] == 2 and record["weight"] == 1.0


def test_several_teachers_teach_their_mean_probabilities(
    test_data_dir: Path,
    tiny_train_config: dict[str, Any],
    tiny_sentiment_dir: Path,
    tmp_path: Path,
) -> None:
    # Two teachers that disagree (one learnt the sentiment backwards): the soft targets are
    # the mean of their probabilities, and the manifest names both.
    data = test_data_dir / "tiny_sentiment"
    flipped = train_folder(
        "sentiment", _flipped(data, tmp_path / "flipped"),
        SentimentTrainConfig(**{**tiny_train_config, "epochs": 4}), tmp_path / "teacher",
    ).artifact  # fmt: skip
    assert flipped is not None
    labels = read_tsv(data / "train.tsv").labels
    teachers = [Teacher.load(p, sorted(set(labels))) for p in (tiny_sentiment_dir, flipped)]
    texts = list(read_tsv(data / "valid.tsv").texts)
    each = [t.probabilities(texts, 2.0) for t in teachers]
    assert not np.allclose(each[0], each[1], atol=0.05)
    mean = ensemble_probabilities(teachers, texts, 2.0)
    assert np.allclose(mean, (each[0] + each[1]) / 2, atol=1e-6)
    assert np.allclose(mean.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(ensemble_probabilities(teachers[:1], texts, 2.0), each[0])

    config = SentimentTrainConfig(
        **tiny_train_config, distill_from=[str(tiny_sentiment_dir), str(flipped)]
    )
    fit = train_folder("sentiment", data, config, tmp_path / "student")
    assert fit.artifact is not None
    record = json.loads((fit.artifact / "manifest.json").read_text())["training"]
    paths = [t["path"] for t in record["distilled_from"]["teachers"]]
    assert paths == [str(tiny_sentiment_dir), str(flipped)]
    # One path, in a config file or on the command line, is a list of one teacher.
    assert SentimentTrainConfig(distill_from="t").distill_from == ["t"]


def _slotfill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slotfill.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_a_missing_teacher_is_a_one_line_error_and_nothing_is_written(
    test_data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    run = _slotfill(
        "train", "sentiment", "--data", str(test_data_dir / "tiny_sentiment"), "--out",
        str(out), "--distill-from", str(tmp_path / "nowhere"), "--epochs", "1", "--threads", "1",
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "teacher" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() or not any(out.iterdir())


def test_the_command_line_takes_several_teachers_and_shows_their_labelling(
    test_data_dir: Path, tiny_sentiment_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    run = _slotfill(
        "train", "sentiment", "--data", str(test_data_dir / "tiny_sentiment"), "--out",
        str(out), "--distill-from", str(tiny_sentiment_dir), str(tiny_sentiment_dir),
        "--epochs", "1", "--threads", "1",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "teacher 1/2 labels" in run.stderr and "teacher 2/2 labels" in run.stderr
    record = json.loads((out / "manifest.json").read_text())["training"]["distilled_from"]
    assert [t["path"] for t in record["teachers"]] == [str(tiny_sentiment_dir)] * 2


def test_cross_validation_refuses_one_teacher_for_every_fold(
    test_data_dir: Path, tiny_sentiment_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(test_data_dir / "tiny_sentiment", data)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"distill_from": str(tiny_sentiment_dir), "epochs": 1}))
    run = _slotfill(
        "cv", "sentiment", "--data", str(data), "--folds", "2", "--config", str(config),
        "--threads", "1",
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "held-out fold" in run.stderr and "Traceback" not in run.stderr


def test_an_encoder_teacher_is_fine_tuned_on_the_training_folds_of_each_fold(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    # distill_encoder trains the teacher in the run: in cross-validation one per fold, on
    # that fold's training part only, so no teacher has read the fold it is scored on.
    from tiny_bert import write_encoder

    from training import loop
    from training.cv import cross_validate

    write_encoder(tmp_path / "encoder")
    taught: list[set[str]] = []
    real = loop._teachers

    def spy(train: Any, valid: Any, config: Any, labels: Any, on_epoch: Any) -> list[Teacher]:
        taught.append(set(train.texts))
        return real(train, valid, config, labels, on_epoch)

    config = SentimentTrainConfig(
        **{**tiny_train_config, "epochs": 2}, distill_encoder=str(tmp_path / "encoder")
    )
    data = test_data_dir / "tiny_sentiment"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "_teachers", spy)
        lines: list[str] = []
        result = cross_validate(
            "sentiment", data, config, folds=2, seeds=[13], progress=lines.append
        )
    assert len(result["runs"]) == 2 and len(taught) == 2
    # Each fold's teacher and student say each epoch, before the fold's own line.
    for fold in (1, 2):
        said = [line for line in lines if line.startswith(f"seed 13 fold {fold}/2:")]
        teacher = [line for line in said if ": teacher epoch" in line]
        student = [line for line in said if ": epoch" in line]
        assert teacher and student and "macro_f1=" in teacher[0]
        assert said.index(teacher[-1]) < said.index(student[0]) and "test" in said[-1]
    pooled = [*read_tsv(data / "train.tsv").texts, *read_tsv(data / "valid.tsv").texts]
    for run, texts in zip(result["runs"], taught, strict=True):
        assert 0 <= run["macro_f1"] <= 1
        assert len(texts) < len(pooled) / 2 + 5  # a training part, not the whole pool
    assert taught[0].isdisjoint(taught[1])  # with two folds, each trains on the other

    fit = train_folder("sentiment", data, config, tmp_path / "student")
    assert fit.artifact is not None
    manifest = json.loads((fit.artifact / "manifest.json").read_text())
    record = manifest["training"]["distilled_from"]
    assert record["teachers"][0]["path"] == str(tmp_path / "encoder") and record["copies"] == 4
    # The served model is the LSTM, not the encoder.
    assert manifest["model_config"].get("hidden_size") == tiny_train_config["hidden_size"]


def test_a_model_has_at_most_one_teacher(tiny_sentiment_dir: Path) -> None:
    with pytest.raises(ValueError, match="set one"):
        SentimentTrainConfig(distill_from=str(tiny_sentiment_dir), distill_encoder="enc")


def _words(predictor: SentimentPredictor) -> list[str]:
    return [w for w in ("zeppelin", "quixotic", "crew") if w in predictor.words]


def test_texts_to_distil_on_come_from_a_tsv_or_a_plain_file(tmp_path: Path) -> None:
    from training.distill import read_transfer_texts

    tsv = tmp_path / "more.tsv"
    tsv.write_text("text\tlabel\na gripping film\tpositive\ndull and slow\tnegative\n")
    read = read_transfer_texts([tsv])
    assert read.texts == ["a gripping film", "dull and slow"]
    [record] = read.record
    assert record["path"] == str(tsv) and len(record["sha256"]) == 64
    plain = tmp_path / "more.txt"
    plain.write_text("  lovely crew \n\nseat was broken\n")
    assert read_transfer_texts([plain]).texts == ["lovely crew", "seat was broken"]
    both = read_transfer_texts([plain, tsv])  # in the order given, each file recorded
    assert both.texts == ["lovely crew", "seat was broken", "a gripping film", "dull and slow"]
    assert [r["path"] for r in both.record] == [str(plain), str(tsv)]
    assert both.record[0]["sha256"] != both.record[1]["sha256"]
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(DataError, match=r"empty\.txt: no texts"):
        read_transfer_texts([plain, tmp_path / "empty.txt"])
    with pytest.raises(DataError, match=r"missing\.txt: cannot read"):
        read_transfer_texts([tsv, tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match="needs a teacher"):
        SentimentTrainConfig(distill_texts=str(plain))
    one = SentimentTrainConfig(distill_from="t", distill_texts=str(plain))
    assert one.distill_texts == [str(plain)]  # one path stands for a list of one
    with pytest.raises(ValueError, match="at least 1"):
        SentimentTrainConfig(distill_from="t", distill_texts=[])


def test_the_teachers_texts_bring_their_words_into_the_students_vocabulary(
    test_data_dir: Path,
    tiny_train_config: dict[str, Any],
    tiny_sentiment_dir: Path,
    tmp_path: Path,
) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("the zeppelin was magnificent\n")
    more = tmp_path / "more.txt"
    more.write_text("quixotic refund policy\n")
    config = SentimentTrainConfig(
        **tiny_train_config,
        distill_from=str(tiny_sentiment_dir),
        distill_texts=[str(extra), str(more)],
    )
    fit = train_folder("sentiment", test_data_dir / "tiny_sentiment", config, tmp_path / "s")
    assert fit.artifact is not None
    predictor = load_artifact(fit.artifact).predictor
    assert isinstance(predictor, SentimentPredictor)
    assert {"zeppelin", "quixotic"} <= set(_words(predictor))
    record = json.loads((fit.artifact / "manifest.json").read_text())["training"]
    texts = record["distilled_from"]["texts"]
    assert [t["path"] for t in texts] == [str(extra), str(more)]
    plain = train_folder(
        "sentiment", test_data_dir / "tiny_sentiment", SentimentTrainConfig(**tiny_train_config),
        tmp_path / "p",
    ).artifact  # fmt: skip
    assert plain is not None
    alone = load_artifact(plain).predictor
    assert isinstance(alone, SentimentPredictor)
    assert "zeppelin" not in set(_words(alone))


def test_distillation_defaults_apply_to_what_the_config_leaves_unset() -> None:
    plain = SentimentTrainConfig()
    taught = SentimentTrainConfig(distill_from="teacher")
    assert (taught.lr, taught.distill_temperature, taught.distill_copies) == (1e-3, 2.0, 4)
    assert plain.lr == 2e-3  # the LSTM alone keeps its own
    with_texts = SentimentTrainConfig(distill_encoder="enc", distill_texts="more.tsv")
    assert (with_texts.distill_copies, with_texts.distill_temperature) == (0, 4.0)
    mine = SentimentTrainConfig(
        distill_from="teacher", distill_texts="t.txt", distill_copies=3, lr=0.01
    )
    assert (mine.lr, mine.distill_copies) == (0.01, 3)
    cooler = SentimentTrainConfig(distill_from="t", distill_texts="t.txt", distill_temperature=2)
    assert cooler.distill_temperature == 2.0


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS has one thread anyway")
def test_the_teacher_reads_on_the_threads_the_run_is_given(
    test_data_dir: Path,
    tiny_train_config: dict[str, Any],
    tiny_sentiment_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A NumPy-engine teacher labels through NumPy's BLAS, which otherwise takes a thread per
    # core: `--threads 1` runs, two at a time on two cores, each ran two threads.
    seen: list[int] = []
    probabilities = Teacher.probabilities

    def counted(self: Teacher, *args: Any, **kwargs: Any) -> np.ndarray:
        seen.extend(pool["num_threads"] for pool in threadpool_info())
        return probabilities(self, *args, **kwargs)

    monkeypatch.setattr(Teacher, "probabilities", counted)
    config = SentimentTrainConfig(**tiny_train_config, distill_from=str(tiny_sentiment_dir))
    assert config.threads == 1
    with threadpool_limits(2):  # as a fresh process on two cores starts
        fit = train_folder("sentiment", test_data_dir / "tiny_sentiment", config, tmp_path / "s")
    assert fit.artifact is not None
    assert seen and set(seen) == {1}


def _sqlite_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sqlite3")) if folder.exists() else []


def test_a_teachers_logits_are_kept_on_disk_and_not_computed_again(
    tiny_sentiment_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    labels = ["negative", "neutral", "positive"]
    _LOADED.clear()  # a teacher that earlier tests loaded knows these texts already
    first = Teacher.load(tiny_sentiment_dir, labels)
    want = first.probabilities(TEXTS, 2.0, cache=cache)
    [kept] = _sqlite_files(cache)
    assert first.cache_key is not None and kept.stem == first.cache_key
    # A new process's teacher (nothing in memory) reads the kept logits and labels only the
    # texts it has not met.
    _LOADED.clear()
    again = Teacher.load(tiny_sentiment_dir, labels)
    assert again is not first and not again.seen
    read: list[str] = []
    predictor = again.predictor
    encode = predictor.encode
    monkeypatch.setattr(predictor, "encode", lambda tokens: read.extend(tokens) or encode(tokens))
    got = again.probabilities(TEXTS, 2.0, cache=cache)
    assert read == [] and np.array_equal(got, want)
    more = again.probabilities([*TEXTS, "lost my bag twice"], 2.0, cache=cache)
    assert len(read) == 1 and np.array_equal(more[:-1], want)
    # Without the cache the teacher labels again, and says the same.
    _LOADED.clear()
    fresh = Teacher.load(tiny_sentiment_dir, labels)
    assert np.allclose(fresh.probabilities(TEXTS, 2.0), want, atol=1e-6)
    # Rows that are not one logit per label are labelled again, not read.
    cached = LogitCache(cache, first.cache_key, 3)
    assert len(cached.get(TEXTS)) == len(TEXTS)
    LogitCache(cache, first.cache_key, 2).put([(TEXTS[0], np.zeros(2, np.float32))])
    assert len(LogitCache(cache, first.cache_key, 2).get(TEXTS)) == 0


def test_the_teachers_key_is_its_weights_and_manifest(
    tiny_sentiment_dir: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    shutil.copytree(tiny_sentiment_dir, other)
    labels = ["negative", "neutral", "positive"]
    same = Teacher.load(other, labels).cache_key
    assert same == Teacher.load(tiny_sentiment_dir, labels).cache_key  # a copy is the same
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["labels"] = manifest["labels"]  # rewritten: other bytes, another key
    (other / "manifest.json").write_text(json.dumps(manifest, indent=1))
    _LOADED.clear()
    assert Teacher.load(other, labels).cache_key != same


def test_a_broken_cache_is_reported_and_the_teacher_labels_without_it(
    tiny_sentiment_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _LOADED.clear()
    teacher = Teacher.load(tiny_sentiment_dir, ["negative", "neutral", "positive"])
    assert teacher.cache_key is not None
    want = teacher.probabilities(TEXTS, 2.0)
    teacher.seen.clear()
    # A damaged file is moved aside and a new one kept in its place.
    broken = tmp_path / "broken"
    broken.mkdir()
    junk = b"not a database " * 100
    (broken / f"{teacher.cache_key}.sqlite3").write_bytes(junk)
    assert np.allclose(teacher.probabilities(TEXTS, 2.0, cache=broken), want)
    assert "damaged" in caplog.text and "labelling without it" not in caplog.text
    assert (broken / f"{teacher.cache_key}.sqlite3.damaged").read_bytes() == junk
    [fresh] = _sqlite_files(broken)
    with sqlite3.connect(fresh) as db:
        assert db.execute("SELECT COUNT(*) FROM logits").fetchone() == (len(set(TEXTS)),)
    teacher.seen.clear()
    caplog.clear()
    # Damaged pages found only when read: this run labels without it, the next starts anew.
    page = 4096
    with sqlite3.connect(fresh) as db:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(fresh.read_bytes())
    data[page:] = b"\xff" * (len(data) - page)  # the header page whole, the rest garbage
    fresh.write_bytes(bytes(data))
    assert np.allclose(teacher.probabilities(TEXTS, 2.0, cache=broken), want)
    assert "labelling without it" in caplog.text and "damaged" in caplog.text
    assert not fresh.exists()
    teacher.seen.clear()
    caplog.clear()
    blocked = tmp_path / "a-file"
    blocked.write_text("a file where the folder would be")
    assert np.allclose(teacher.probabilities(TEXTS, 2.0, cache=blocked), want)
    assert "cannot open" in caplog.text


def test_a_student_from_kept_logits_is_the_student_from_fresh_ones(
    test_data_dir: Path,
    tiny_train_config: dict[str, Any],
    tiny_sentiment_dir: Path,
    tmp_path: Path,
) -> None:
    data = test_data_dir / "tiny_sentiment"
    cache = tmp_path / "cache"

    def student(name: str, **settings: Any) -> str:
        _LOADED.clear()  # as a new process: the teacher's logits only on disk
        config = SentimentTrainConfig(
            **tiny_train_config, distill_from=str(tiny_sentiment_dir), **settings
        )
        fit = train_folder("sentiment", data, config, tmp_path / name)
        assert fit.artifact is not None
        return str(json.loads((fit.artifact / "manifest.json").read_text())["weights_sha256"])

    computed = student("computed", distill_cache=str(cache))
    [kept] = _sqlite_files(cache)
    assert student("read", distill_cache=str(cache)) == computed
    assert student("off", distill_cache="off") == computed
    # The second run read the file: with other logits in it, another student.
    with sqlite3.connect(kept) as db:
        db.execute("UPDATE logits SET logits = ?", (np.array([9, 0, -9], "<f4").tobytes(),))
    db.close()
    assert student("tampered", distill_cache=str(cache)) != computed
    # By default the cache is the user's cache folder.
    assert (
        resolve_folder("auto")
        == default_folder()
        == tmp_path / "xdg-cache" / "slotfill" / ("teacher-logits")
    )
    assert resolve_folder("off") is None
    student("default")
    assert [p.name for p in _sqlite_files(default_folder())] == [kept.name]
