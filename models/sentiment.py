"""LSTM sentiment classifier: token embedder -> BiLSTM -> attention + max pooling -> logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.features import TokenBatch
from models.layers import EncoderConfig, encoder_layers, masked_pool, run_rnn


@dataclass(frozen=True, kw_only=True)
class SentimentConfig(EncoderConfig):
    """Architecture of an :class:`LSTMSentimentClassifier`; stored in the manifest."""

    num_labels: int
    char_filters: int = 32
    dropout: float = 0.4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_labels < 1:
            raise ValueError("expected a positive label count")


class LSTMSentimentClassifier(nn.Module):
    """Classifies a whole utterance; pooling = additive attention ++ max ++ mean."""

    def __init__(self, config: SentimentConfig) -> None:
        super().__init__()
        self.config = config
        self.embedder, self.dropout, self.rnn = encoder_layers(config)
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
