"""models.layers.TokenEmbedder: trained embeddings beside frozen pretrained vectors."""

from __future__ import annotations

import torch

from models.features import TokenBatch
from models.layers import EncoderConfig, TokenEmbedder

# ids 0-3: <pad>, <unk>, two training words; 4-5: words only the vectors know.
CONFIG = EncoderConfig(
    vocab_size=6,
    char_vocab_size=4,
    word_dim=3,
    char_filters=0,
    shape_dim=0,
    pretrained_dim=2,
    trained_words=4,
)


def _embedder() -> TokenEmbedder:
    torch.manual_seed(0)
    embedder = TokenEmbedder(CONFIG)
    embedder.vectors.copy_(torch.arange(12, dtype=torch.float).view(6, 2))
    return embedder


def _batch(ids: list[int]) -> TokenBatch:
    n = len(ids)
    return TokenBatch(
        torch.tensor([ids]),
        torch.zeros(1, n, 2, dtype=torch.long),
        torch.zeros(1, n, dtype=torch.long),
        torch.ones(1, n, dtype=torch.bool),
    )


def test_words_known_only_to_the_vectors_get_unk_embedding_and_own_vector() -> None:
    embedder = _embedder().eval()
    out = embedder(_batch([2, 4, 5]))[0]
    unk = embedder.words.weight[1]
    assert torch.equal(out[0, :3], embedder.words.weight[2])
    assert torch.equal(out[1, :3], unk) and torch.equal(out[2, :3], unk)
    assert out[:, 3:].tolist() == [[4.0, 5.0], [8.0, 9.0], [10.0, 11.0]]
    assert embedder.words.num_embeddings == 4  # no trained rows for words never trained


def test_vectors_are_saved_but_never_trained() -> None:
    embedder = _embedder()
    assert "vectors" in embedder.state_dict()
    assert all(p is not embedder.vectors for p in embedder.parameters())


def test_word_dropout_drops_the_trained_embedding_and_keeps_the_vector() -> None:
    embedder = _embedder()
    embedder.word_dropout = 0.999999
    batch = _batch([2, 3, 3, 2])
    dropped = embedder.train()(batch)[0]
    unk = embedder.words.weight[1]
    assert all(torch.equal(row[:3], unk) for row in dropped)
    assert dropped[:, 3:].tolist() == [[4.0, 5.0], [6.0, 7.0], [6.0, 7.0], [4.0, 5.0]]
    kept = embedder.eval()(batch)[0]  # inference never drops
    assert torch.equal(kept[0, :3], embedder.words.weight[2])


def test_without_vectors_every_word_is_trained() -> None:
    config = EncoderConfig(vocab_size=5, char_vocab_size=4, word_dim=3, char_filters=0)
    embedder = TokenEmbedder(config).eval()
    assert embedder.words.num_embeddings == 5
    assert "vectors" not in embedder.state_dict()
    assert embedder(_batch([4])).shape == (1, 1, 3 + config.shape_dim)
