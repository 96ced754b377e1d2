"""Fine-tuned pretrained encoders for sentiment (models.transformer, training.pretrained_encoder).

A tiny random BERT written as Hugging Face writes one (config.json, vocab.txt,
model.safetensors under BERT's tensor names) stands in for all-MiniLM-L6-v2, which is not in
the repository: the reader, the word pieces, both engines and a fine-tuning run on it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from tiny_bert import PIECES, write_encoder

from models.artifact import load_artifact
from models.engine import NumpyTransformerSentiment, _erf, _gelu
from models.wordpiece import WordPieces, piece_arrays
from training.config import FINE_TUNING_DEFAULTS, SentimentTrainConfig
from training.data import DataError
from training.pipeline import train_folder
from training.pretrained_encoder import read_encoder


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("encoders") / "tiny-bert"
    write_encoder(folder)
    return folder


def test_the_reader_keeps_each_pieces_row_under_its_new_index(encoder_dir: Path) -> None:
    hf = load_file(str(encoder_dir / "model.safetensors"))
    encoder = read_encoder(encoder_dir)
    model = encoder.build(num_labels=3, dropout=0.1, max_wordpieces=16)
    rows = model.word_embeddings.weight.detach().numpy()
    table = hf["embeddings.word_embeddings.weight"]
    for piece in ("good", "##aff", "[CLS]", "[SEP]", "!"):
        assert np.array_equal(rows[encoder.words.stoi[piece]], table[PIECES.index(piece)])
    assert np.array_equal(rows[0], table[PIECES.index("[PAD]")])  # <pad>
    assert np.array_equal(rows[1], table[PIECES.index("[UNK]")])  # <unk>
    assert len(encoder.words) == len(PIECES)
    layer = model.layers[1]
    assert np.array_equal(
        layer.intermediate.weight.detach().numpy(),
        hf["encoder.layer.1.intermediate.dense.weight"],
    )
    assert np.array_equal(
        model.segment_embedding.detach().numpy(), hf["embeddings.token_type_embeddings.weight"][0]
    )
    assert encoder.source["weights_sha256"] and model.config.max_wordpieces == 16


def test_word_pieces_as_bert_reads_text(encoder_dir: Path) -> None:
    words = read_encoder(encoder_dir).words
    pieces = WordPieces(words, max_pieces=62)
    assert pieces(["Unaffable CREW!!", "Héllo, world", "zzz good"]) == [
        ["un", "##aff", "##able", "crew", "!", "!"],
        ["hello", ",", "world"],
        ["<unk>", "good"],
    ]
    assert WordPieces(words, max_pieces=2)(["my bag was lost"]) == [["my", "bag"]]
    arrays = piece_arrays([["un", "##aff"], ["good"]], words)
    assert arrays.token_ids.tolist() == [
        [words.stoi["un"], words.stoi["##aff"]],
        [words.stoi["good"], 0],
    ]
    assert arrays.mask.tolist() == [[True, True], [True, False]]


def test_numpy_engine_matches_torch_and_padding_changes_nothing(encoder_dir: Path) -> None:
    torch.manual_seed(0)
    model = read_encoder(encoder_dir).build(num_labels=3, dropout=0.1, max_wordpieces=16).eval()
    words = read_encoder(encoder_dir).words
    sentences = [["good", "flight"], ["my", "bag", "was", "lost", "!", "!"], ["late"]]
    batch = piece_arrays(sentences, words)
    with torch.inference_mode():
        expected = model(batch.tensors()).numpy()
    engine = NumpyTransformerSentiment(model)
    assert np.abs(engine.arrays(batch) - expected).max() < 1e-5
    for i, sentence in enumerate(sentences):  # alone, without padding
        alone = piece_arrays([sentence], words)
        assert np.abs(engine.arrays(alone)[0] - expected[i]).max() < 1e-5


def test_the_engines_gelu_is_torchs_exact_one_and_leaves_its_input_alone() -> None:
    x = np.concatenate(
        [np.array([0.0, -0.0, 1e-30, 6.0, -6.0, 40.0], np.float32), np.linspace(-5, 5, 2001)]
    ).astype(np.float32)
    before = x.copy()
    exact = torch.erf(torch.from_numpy(x).double()).numpy()
    assert np.abs(_erf(x) - exact).max() < 5e-7 and _erf(x).dtype == np.float32
    expected = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    assert np.abs(_gelu(x) - expected).max() < 1e-6
    assert _gelu(x[:2]).tolist() == [0.0, 0.0]
    assert np.array_equal(x, before)


def test_fine_tuning_defaults_apply_only_to_what_the_config_leaves_unset() -> None:
    tuned = SentimentTrainConfig(pretrained_encoder="somewhere", lr=1e-4)
    assert tuned.lr == 1e-4
    assert tuned.epochs == FINE_TUNING_DEFAULTS["epochs"]
    assert tuned.lr_schedule == "linear" and tuned.label_smoothing == 0.0
    plain = SentimentTrainConfig()
    assert plain.lr == 2e-3 and plain.lr_schedule == "constant" and plain.label_smoothing == 0.1


def test_an_encoder_folder_that_cannot_be_read_names_its_file(tmp_path: Path) -> None:
    folder = tmp_path / "enc"
    write_encoder(folder)
    (folder / "vocab.txt").unlink()
    with pytest.raises(DataError, match=r"vocab\.txt"):
        read_encoder(folder)
    write_encoder(tmp_path / "cased")
    (tmp_path / "cased" / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    with pytest.raises(DataError, match="uncased"):
        read_encoder(tmp_path / "cased")


def test_a_fine_tuned_encoder_learns_saves_and_serves_on_both_engines(
    encoder_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    good = ["good flight", "great crew", "love you", "thanks crew", "happy good flight"]
    bad = ["bad flight", "awful crew", "hate the bag", "flight was late", "lost my bag"]
    rows = [f"{t}\tpositive" for t in good] + [f"{t}\tnegative" for t in bad]
    (data / "train.tsv").write_text("text\tlabel\n" + "\n".join(rows * 4) + "\n")
    (data / "valid.tsv").write_text(
        "text\tlabel\ngreat flight\tpositive\nawful flight\tnegative\n"
        "thanks you\tpositive\nlate bag\tnegative\n"
    )
    config = SentimentTrainConfig(
        pretrained_encoder=str(encoder_dir),
        lr=3e-3,
        epochs=12,
        patience=12,
        batch_size=8,
        threads=1,
        seed=3,
    )
    trained = train_folder("sentiment", data, config, tmp_path / "out")
    assert trained.result.metrics["accuracy"] == 1.0
    manifest = load_artifact(tmp_path / "out").manifest
    assert manifest.model_config["architecture"] == "transformer"
    assert manifest.training["config"]["lr_schedule"] == "linear"
    weights = encoder_dir / "model.safetensors"
    assert manifest.training["pretrained_encoder"] == {
        "path": str(encoder_dir),
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
    texts = ["great crew", "awful bag", "LOVE you!!", "my flight was delayed"]
    by_torch = load_artifact(tmp_path / "out", engine="torch").predictor.classify(texts)
    by_numpy = load_artifact(tmp_path / "out", engine="numpy").predictor.classify(texts)
    assert [r.label for r in by_torch] == [r.label for r in by_numpy]
    assert [r.label for r in by_numpy][:2] == ["positive", "negative"]
    for a, b in zip(by_torch, by_numpy, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-5)
    with pytest.raises(ValueError, match="at least one token"):
        load_artifact(tmp_path / "out", engine="numpy").predictor.classify(["   "])


def test_the_cli_fine_tunes_evaluates_and_refuses_a_bad_encoder_folder(
    encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from slotfill.cli import main

    data = Path(__file__).resolve().parents[1] / "data" / "tiny_sentiment"
    args = ["train", "sentiment", "--data", str(data), "--progress", "none", "--threads", "1"]
    missing = tmp_path / "no-encoder"
    assert main([*args, "--out", str(tmp_path / "bad"), "--pretrained-encoder", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "model"
    flags = ["--out", str(out), "--pretrained-encoder", str(encoder_dir), "--epochs", "1"]
    assert main([*args, *flags]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), str(data / "valid.tsv"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert scores["n"] == 20 and 0.0 <= scores["macro_f1"] <= 1.0
