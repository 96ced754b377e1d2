"""training.vectors: the GloVe table and the vocabulary it extends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.vocab import Vocab
from training.vectors import WordVectors, extend_vocab, load_vectors

TABLE = WordVectors(
    ["the", "Denver", "denver", "flight", "boston", "3pm"],
    np.arange(12, dtype=np.float32).reshape(6, 2),
)


def test_training_words_come_first_then_the_most_frequent_table_words() -> None:
    vocab, vectors = extend_vocab(Vocab(["flight", "zzqx"]), TABLE, extra_words=2)
    assert vocab.itos == ["<pad>", "<unk>", "flight", "zzqx", "the", "denver"]
    assert vectors.tolist() == [[0, 0], [0, 0], [6, 7], [0, 0], [0, 1], [2, 3]]


def test_keys_are_normalised_and_the_more_frequent_spelling_wins() -> None:
    vocab, vectors = extend_vocab(Vocab(["denver", "0pm"]), TABLE, extra_words=0)
    assert vocab.itos == ["<pad>", "<unk>", "denver", "0pm"]
    assert vectors[2].tolist() == [2, 3]  # "Denver" (row 1) before "denver" (row 2)
    assert vectors[3].tolist() == [10, 11]  # digits become 0, as in every token


def test_unknown_vectors_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown pretrained vectors 'word2vec'"):
        load_vectors("word2vec")


def test_glove_6b_50d_is_the_published_table() -> None:
    glove = load_vectors("glove-6b-50d")
    assert (len(glove.words), glove.dim) == (400_000, 50)
    assert glove.words[:3] == ["the", ",", "."]
    # First values of "the" in the glove.6B.50d.txt of the Stanford release.
    assert np.allclose(glove.vectors[0, :3], [0.418, 0.24968, -0.41242])


def test_a_fit_keeps_the_vectors_frozen_and_in_the_artifact(
    test_data_dir: Path, tiny_train_config: dict[str, Any], tmp_path: Path
) -> None:
    from models.artifact import load_artifact
    from training.config import SlotTrainConfig
    from training.data import read_slot_folder
    from training.loop import build_vocabs, fit_tagger
    from training.pipeline import save_fit

    data = test_data_dir / "tiny_slots"
    train, valid = read_slot_folder(data / "train"), read_slot_folder(data / "valid")
    config = SlotTrainConfig(**tiny_train_config)
    expected = build_vocabs(train.tokens, config)
    assert expected.vectors is not None
    assert len(expected.words) == expected.trained_words + config.pretrained_words
    result = fit_tagger(train, valid, config, show_progress=False)
    model = result.predictor.model
    assert torch.equal(model.embedder.vectors, expected.vectors)
    assert model.embedder.word_dropout == config.word_dropout  # the config reaches the model
    loaded = load_artifact(save_fit(tmp_path / "m", "slots", result, config, {"name": "t"}))
    reloaded = loaded.predictor.model
    assert torch.equal(reloaded.embedder.vectors, expected.vectors)
    assert loaded.manifest.model_config["trained_words"] == expected.trained_words


def test_no_vectors_means_a_vocabulary_of_training_words_only(
    test_data_dir: Path, tiny_train_config: dict[str, Any]
) -> None:
    from training.config import SlotTrainConfig
    from training.data import read_slot_folder
    from training.loop import build_vocabs

    train = read_slot_folder(test_data_dir / "tiny_slots" / "train")
    config = SlotTrainConfig(**(tiny_train_config | {"pretrained_vectors": "none"}))
    vocabs = build_vocabs(train.tokens, config)
    assert vocabs.vectors is None
    assert len(vocabs.words) == vocabs.trained_words
    assert vocabs.embedder_fields()["pretrained_dim"] == 0


def test_vader_gives_each_rated_word_its_valence_and_its_sign_apart() -> None:
    vader = load_vectors("vader")
    assert vader.dim == 4 and len(vader.words) > 7000
    # vader_lexicon.txt: "love" 3.2, "worst" -3.1, ":(" -1.9 (emoticons are words there).
    assert vader.vectors[vader.rows["love"]].tolist() == pytest.approx([0.8, 0.8, 0.0, 0.25])
    assert vader.vectors[vader.rows["worst"]].tolist() == pytest.approx([-0.775, 0, 0.775, 0.25])
    assert vader.vectors[vader.rows[":("]][0] < 0


def test_glove_and_vader_side_by_side_keep_both_tables() -> None:
    glove, vader = load_vectors("glove-6b-50d"), load_vectors("vader")
    both = load_vectors("glove-6b-50d+vader")
    assert both.dim == glove.dim + vader.dim
    love = both.vectors[both.rows["love"]]
    assert np.array_equal(love[: glove.dim], glove.vectors[glove.rows["love"]])
    assert np.array_equal(love[glove.dim :], vader.vectors[vader.rows["love"]])
    assert not both.vectors[both.rows["the"], glove.dim :].any()  # not rated: zeros
    emoticon = both.rows[":-("]  # rated by VADER, unknown to GloVe
    assert not both.vectors[emoticon, : glove.dim].any() and both.vectors[emoticon, -1] > 0
