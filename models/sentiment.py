"""LSTM sentiment classifier: token embedder -> BiLSTM -> attention + max pooling -> logits."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from models.features import TokenBatch
from models.layers import CELLS, TokenEmbedder, make_rnn, masked_pool, run_rnn


@dataclass(frozen=True)
class SentimentConfig:
    """Architecture of an :class:`LSTMSentimentClassifier`; stored in the manifest."""

    vocab_size: int
    char_vocab_size: int
    num_labels: int
    word_dim: int = 100
    char_dim: int = 32
    char_filters: int = 32
    shape_dim: int = 8
    hidden_size: int = 128
    num_layers: int = 1
    cell: str = "lstm"
    dropout: float = 0.4

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"expected cell in {CELLS}, got {self.cell!r}")
        if min(self.vocab_size, self.char_vocab_size, self.num_labels) < 1:
            raise ValueError("expected positive vocabulary and label counts")

    def to_dict(self) -> dict[str, object]:
        """JSON form."""
        return asdict(self)


class LSTMSentimentClassifier(nn.Module):
    """Classifies a whole utterance; pooling = additive attention ++ max ++ mean."""

    def __init__(self, config: SentimentConfig) -> None:
        super().__init__()
        self.config = config
        self.embedder = TokenEmbedder(
            config.vocab_size,
            config.char_vocab_size,
            config.word_dim,
            config.char_dim,
            config.char_filters,
            config.shape_dim,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = make_rnn(
            config.cell,
            self.embedder.output_dim,
            config.hidden_size,
            config.num_layers,
            config.dropout,
        )
        dim = 2 * config.hidden_size
        self.attention = nn.Linear(dim, 1)
        self.out = nn.Linear(3 * dim, config.num_labels)

    def forward(self, batch: TokenBatch) -> Tensor:
        """Label logits ``(batch, num_labels)``."""
        states = self.dropout(run_rnn(self.rnn, self.dropout(self.embedder(batch)), batch.mask))
        scores = self.attention(states).squeeze(2).masked_fill(~batch.mask, -1.0e4)
        weights = torch.softmax(scores, dim=1).unsqueeze(2)  # (batch, seq_len, 1)
        attended = (weights * states).sum(dim=1)
        logits: Tensor = self.out(torch.cat([attended, masked_pool(states, batch.mask)], dim=1))
        return logits

    def loss(self, batch: TokenBatch, label_ids: Tensor) -> Tensor:
        """Mean cross-entropy; ``label_ids`` is ``(batch,)``."""
        return nn.functional.cross_entropy(self(batch), label_ids)
