"""LSTM sentiment classifier: token embedder -> BiLSTM -> attention + max pooling -> logits,
optionally plus a linear bag-of-n-grams term (a "wide" part)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.features import TokenBatch
from models.layers import EncoderConfig, encoder_layers, masked_pool, run_rnn, wide_term
from models.text import TEXT_SCHEMES, TextScheme


@dataclass(frozen=True, kw_only=True)
class SentimentConfig(EncoderConfig):
    """Architecture of an :class:`LSTMSentimentClassifier`; stored in the manifest.

    The defaults of the fields added later are what older manifests meant.
    """

    num_labels: int
    char_filters: int = 32
    dropout: float = 0.4
    text_scheme: TextScheme = "plain"  # models.text.sentiment_words
    wide_buckets: int = 0  # hashed word-bigram buckets of the wide term; 0: no wide term

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_labels < 1:
            raise ValueError("expected a positive label count")
        if self.text_scheme not in TEXT_SCHEMES:
            raise ValueError(f"expected text_scheme in {TEXT_SCHEMES}, got {self.text_scheme!r}")
        if self.wide_buckets < 0:
            raise ValueError("expected wide_buckets >= 0")


class LSTMSentimentClassifier(nn.Module):
    """Classifies a whole utterance; pooling = additive attention ++ max ++ mean.

    With ``wide_buckets`` the logits also get a learned weight vector per word and per hashed
    word bigram, summed over the utterance: a linear model of n-gram counts (NBSVM-like
    lexical evidence) trained jointly with the network. In training its features are dropped
    with the network's dropout rate, so that it cannot simply memorise the training set.
    """

    def __init__(self, config: SentimentConfig) -> None:
        super().__init__()
        self.config = config
        self.embedder, self.dropout, self.rnn = encoder_layers(config)
        dim = 2 * config.hidden_size
        self.attention = nn.Linear(dim, 1)
        self.out = nn.Linear(3 * dim, config.num_labels)
        if config.wide_buckets:
            self.wide_words = nn.Embedding(config.vocab_size, config.num_labels)
            self.wide_bigrams = nn.Embedding(config.wide_buckets, config.num_labels)
            nn.init.zeros_(self.wide_words.weight)
            nn.init.zeros_(self.wide_bigrams.weight)

    def forward(self, batch: TokenBatch) -> Tensor:
        """Label logits ``(batch, num_labels)``."""
        states = self.dropout(run_rnn(self.rnn, self.dropout(self.embedder(batch)), batch.mask))
        scores = self.attention(states).squeeze(2).masked_fill(~batch.mask, -1.0e4)
        weights = torch.softmax(scores, dim=1).unsqueeze(2)  # (batch, seq_len, 1)
        attended = (weights * states).sum(dim=1)
        logits: Tensor = self.out(torch.cat([attended, masked_pool(states, batch.mask)], dim=1))
        if self.config.wide_buckets:
            logits = logits + self.wide(batch)
        return logits

    def wide(self, batch: TokenBatch) -> Tensor:
        """The wide term ``(batch, num_labels)`` (:func:`models.layers.wide_term`)."""
        dropout = self.config.dropout if self.training else 0.0
        return wide_term(self.wide_words, self.wide_bigrams, batch.token_ids, batch.mask, dropout)
