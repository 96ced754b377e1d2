"""BiLSTM-CRF slot tagger with a jointly trained intent head."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchcrf import CRF

from models.crf import CRFParams, bio_constraints, log_likelihood, viterbi_decode
from models.features import TokenBatch
from models.layers import EncoderConfig, encoder_layers, masked_pool, run_rnn


@dataclass(frozen=True, kw_only=True)
class TaggerConfig(EncoderConfig):
    """Architecture of a :class:`BiLSTMCRFTagger`; stored in the artifact manifest."""

    num_tags: int
    num_intents: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if min(self.num_tags, self.num_intents) < 1:
            raise ValueError("expected positive tag and intent counts")


class BiLSTMCRFTagger(nn.Module):
    """Token embedder -> bidirectional RNN -> emissions -> CRF, plus an intent classifier.

    ``torchcrf.CRF`` holds the transition parameters; likelihood and decoding run through
    :mod:`models.crf` with the BIO constraints of ``tags`` applied.
    """

    def __init__(self, config: TaggerConfig, tags: Sequence[str] | None = None) -> None:
        super().__init__()
        self.config = config
        self.tags = list(tags) if tags is not None else None
        self.embedder, self.dropout, self.rnn = encoder_layers(config)
        self.emit = nn.Linear(2 * config.hidden_size, config.num_tags)
        self.intent = nn.Linear(4 * config.hidden_size, config.num_intents)
        self.crf = CRF(config.num_tags, batch_first=True)
        if self.tags is not None and len(self.tags) != config.num_tags:
            raise ValueError(f"expected {config.num_tags} tags, got {len(self.tags)}")
        # Computed once: building the masks costs O(num_tags^2) Python work.
        self.allowed = bio_constraints(self.tags) if self.tags is not None else None

    def forward(self, batch: TokenBatch) -> tuple[Tensor, Tensor]:
        """Emissions ``(batch, seq_len, num_tags)`` and intent logits ``(batch, num_intents)``."""
        vectors = self.dropout(self.embedder(batch))
        states = self.dropout(run_rnn(self.rnn, vectors, batch.mask))
        return self.emit(states), self.intent(masked_pool(states, batch.mask))

    def loss(
        self, batch: TokenBatch, tag_ids: Tensor, intent_ids: Tensor, intent_weight: float = 1.0
    ) -> Tensor:
        """Mean negative log-likelihood of the constrained CRF plus weighted intent cross-entropy.

        ``tag_ids``: ``(batch, seq_len)`` (any valid tag id on padding);
        ``intent_ids``: ``(batch,)``.
        Training the constrained CRF that the decoder uses keeps span marginals calibrated.
        """
        emissions, intent_logits = self(batch)
        return self.joint_loss(
            emissions, intent_logits, batch.mask, tag_ids, intent_ids, intent_weight
        )

    def joint_loss(
        self,
        emissions: Tensor,
        intent_logits: Tensor,
        mask: Tensor,
        tag_ids: Tensor,
        intent_ids: Tensor,
        intent_weight: float = 1.0,
    ) -> Tensor:
        """:meth:`loss` from outputs already computed (e.g. by a DDP wrapper's forward)."""
        nll = -log_likelihood(emissions, tag_ids, mask, self.crf_params()).mean()
        return nll + intent_weight * nn.functional.cross_entropy(intent_logits, intent_ids)

    def crf_params(self, constrained: bool = True) -> CRFParams:
        """The CRF scores, with BIO constraints unless ``constrained`` is false."""
        return CRFParams.constrained(
            self.crf.start_transitions,
            self.crf.transitions,
            self.crf.end_transitions,
            self.allowed if constrained else None,
        )

    def decode(self, batch: TokenBatch) -> tuple[list[list[int]], Tensor]:
        """Constrained Viterbi tag ids per sequence and intent logits; no gradient."""
        with torch.inference_mode():
            emissions, intent_logits = self(batch)
            return viterbi_decode(emissions, batch.mask, self.crf_params()), intent_logits
