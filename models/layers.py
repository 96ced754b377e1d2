"""Building blocks shared by the tagger and the sentiment classifier."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from models.features import BIGRAM_PRIME, TokenBatch
from models.text import SHAPES

CELLS: tuple[str, ...] = ("lstm", "gru", "irnn")


@dataclass(frozen=True, kw_only=True)
class EncoderConfig:
    """Token embedder and recurrent encoder shape, shared by both model configs."""

    vocab_size: int
    char_vocab_size: int
    word_dim: int = 100
    char_dim: int = 32
    char_filters: int = 64
    shape_dim: int = 8
    hidden_size: int = 128
    num_layers: int = 1
    cell: str = "lstm"
    dropout: float = 0.3
    # Frozen pretrained word vectors (0: none). Ids below ``trained_words`` also have a
    # trained embedding; the ids after them are words known only from the vectors.
    pretrained_dim: int = 0
    trained_words: int = 0

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"expected cell in {CELLS}, got {self.cell!r}")
        if min(self.vocab_size, self.char_vocab_size) < 1:
            raise ValueError("expected positive vocabulary sizes")
        if not 0 <= self.trained_words <= self.vocab_size:
            raise ValueError("expected 0 <= trained_words <= vocab_size")
        if self.pretrained_dim < 0:
            raise ValueError("expected pretrained_dim >= 0")

    def to_dict(self) -> dict[str, object]:
        """JSON form, as stored in the artifact manifest."""
        return asdict(self)


class TokenEmbedder(nn.Module):
    """Per token: trained word embedding ++ frozen pretrained vector ++ character CNN (max
    over characters) ++ shape embedding.

    Word ids at or above ``trained_words`` are words that only the pretrained vectors know:
    their trained embedding is ``<unk>``'s, their vector their own. ``word_dropout`` (set by
    the trainer, used in training mode only) sends trained embeddings to ``<unk>`` but keeps
    the pretrained vector, which is exactly what such a word looks like at inference.
    """

    vectors: Tensor  # (vocab_size, pretrained_dim) buffer, present when pretrained_dim > 0

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.vocab_size = config.vocab_size
        self.trained_words = config.trained_words or config.vocab_size
        self.words = nn.Embedding(self.trained_words, config.word_dim, padding_idx=0)
        self.pretrained_dim = config.pretrained_dim
        if self.pretrained_dim:
            # A buffer, not a parameter: saved with the weights, never updated.
            self.register_buffer("vectors", torch.zeros(config.vocab_size, self.pretrained_dim))
        self.use_chars = config.char_filters > 0
        if self.use_chars:
            self.chars = nn.Embedding(config.char_vocab_size, config.char_dim, padding_idx=0)
            self.char_conv = nn.Conv1d(
                config.char_dim, config.char_filters, kernel_size=3, padding=1
            )
        self.shapes = (
            nn.Embedding(len(SHAPES), config.shape_dim, padding_idx=0) if config.shape_dim else None
        )
        self.output_dim = (
            config.word_dim + self.pretrained_dim + max(config.char_filters, 0) + config.shape_dim
        )
        self.word_dropout = 0.0

    def forward(self, batch: TokenBatch) -> Tensor:
        """``(batch, seq_len, output_dim)`` token vectors."""
        ids = batch.token_ids
        trained = ids
        if self.trained_words < self.vocab_size:
            trained = ids.masked_fill(ids >= self.trained_words, 1)
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(ids.shape, device=ids.device) < self.word_dropout) & batch.mask
            trained = trained.masked_fill(drop, 1)
        parts = [self.words(trained)]
        if self.pretrained_dim:
            parts.append(nn.functional.embedding(ids, self.vectors))
        if self.use_chars:
            b, t, c = batch.char_ids.shape
            chars = self.chars(batch.char_ids.view(b * t, c)).transpose(1, 2)  # (b*t, dim, c)
            conv = torch.relu(self.char_conv(chars))  # (b*t, filters, c)
            conv = conv.masked_fill((batch.char_ids.view(b * t, 1, c) == 0), 0.0)
            parts.append(conv.max(dim=2).values.view(b, t, -1))
        if self.shapes is not None:
            parts.append(self.shapes(batch.shape_ids))
        return torch.cat(parts, dim=-1)


def make_rnn(
    cell: str, input_size: int, hidden_size: int, num_layers: int, dropout: float
) -> nn.RNNBase:
    """A bidirectional, batch-first recurrent encoder with ``hidden_size`` units per direction.

    ``irnn`` is a ReLU RNN whose recurrent weights start as the identity (Le et al., 2015).
    """
    kwargs = {
        "input_size": input_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "batch_first": True,
        "bidirectional": True,
        "dropout": dropout if num_layers > 1 else 0.0,
    }
    if cell == "lstm":
        return nn.LSTM(**kwargs)
    if cell == "gru":
        return nn.GRU(**kwargs)
    if cell == "irnn":
        rnn = nn.RNN(nonlinearity="relu", **kwargs)
        with torch.no_grad():
            for name, param in rnn.named_parameters():
                if name.startswith("weight_hh"):
                    param.copy_(torch.eye(hidden_size))
                elif name.startswith("weight_ih"):
                    nn.init.normal_(param, std=0.001**0.5)
                else:
                    nn.init.zeros_(param)
        return rnn
    raise ValueError(f"expected cell in {CELLS}, got {cell!r}")


def encoder_layers(
    config: EncoderConfig, extra_input: int = 0
) -> tuple[TokenEmbedder, nn.Dropout, nn.RNNBase]:
    """The embedder, dropout and recurrent encoder described by ``config``; the encoder reads
    ``extra_input`` more features per token after the embedder's (a tagger's context)."""
    embedder = TokenEmbedder(config)
    rnn = make_rnn(
        config.cell,
        embedder.output_dim + extra_input,
        config.hidden_size,
        config.num_layers,
        config.dropout,
    )
    return embedder, nn.Dropout(config.dropout), rnn


def run_rnn(rnn: nn.RNNBase, inputs: Tensor, mask: Tensor) -> Tensor:
    """Run ``rnn`` over padded ``inputs`` ``(batch, seq_len, dim)``; padding stays zero.

    Sequences are packed so the backward direction starts at each sequence's real end.
    """
    lengths = mask.sum(dim=1).cpu()
    if bool((lengths == inputs.shape[1]).all()):
        unpacked: Tensor
        unpacked, _ = rnn(inputs)  # no padding (a sentence encoded alone): packing is overhead
        return unpacked
    packed = nn.utils.rnn.pack_padded_sequence(
        inputs, lengths, batch_first=True, enforce_sorted=False
    )
    out, _ = rnn(packed)
    padded, _ = nn.utils.rnn.pad_packed_sequence(
        out, batch_first=True, total_length=inputs.shape[1]
    )
    return padded


def masked_pool(states: Tensor, mask: Tensor) -> Tensor:
    """Concatenated max and mean over real positions: ``(batch, 2 * dim)``."""
    m = mask.unsqueeze(2)
    maxed = states.masked_fill(~m, -1.0e4).max(dim=1).values
    mean = (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
    return torch.cat([maxed, mean], dim=1)


def wide_term(
    words: nn.Embedding, bigrams: nn.Embedding, token_ids: Tensor, mask: Tensor, dropout: float
) -> Tensor:
    """A linear bag-of-n-grams model ``(batch, classes)`` trained with the network (the
    intent head's and the sentiment classifier's "wide" term): a weight per (word, class) and
    per (hashed word bigram, class), summed over the real tokens. ``dropout`` > 0 (training)
    drops whole n-grams, so that the term cannot simply memorise the training utterances."""
    real = mask.unsqueeze(2).to(words.weight.dtype)
    pairs = real[:, 1:] * real[:, :-1]
    hashed = (token_ids[:, :-1] * BIGRAM_PRIME + token_ids[:, 1:]) % bigrams.num_embeddings
    word_scores = words(token_ids) * real
    pair_scores = bigrams(hashed) * pairs
    if dropout > 0:
        keep = 1.0 - dropout
        word_scores = word_scores * (torch.rand_like(real) < keep) / keep
        pair_scores = pair_scores * (torch.rand_like(pairs) < keep) / keep
    total: Tensor = word_scores.sum(dim=1) + pair_scores.sum(dim=1)
    return total
