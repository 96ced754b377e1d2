"""BiLSTM-CRF slot tagger with a jointly trained intent head.

The intent head reads the encoder's max ++ mean pooled states; two optional direct paths from
the words to the intent logits help rare, keyword-driven intents ("flight number", "meal",
"seating capacity": a dozen training examples among thousands of ``atis_flight``), issue 19:

* a "wide" term: a learned score per (training word, intent) and per (hashed word bigram,
  intent), summed over the utterance (a linear bag-of-n-grams model trained jointly);
* label attention: per intent, a learned query attends over the encoder states and the
  attended state is scored for that intent;
* token votes (Stack-Propagation, Qin et al. 2019): every token predicts the utterance's
  intent (trained by cross-entropy at each token) and the mean of the tokens' log-softmax,
  a soft vote, is added to the logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchcrf import CRF

from models.crf import CRFParams, bio_constraints, log_likelihood, viterbi_decode
from models.features import TokenBatch
from models.layers import EncoderConfig, encoder_layers, masked_pool, run_rnn, wide_term


@dataclass(frozen=True, kw_only=True)
class TaggerConfig(EncoderConfig):
    """Architecture of a :class:`BiLSTMCRFTagger`; stored in the artifact manifest."""

    num_tags: int
    num_intents: int  # 0: data without intents (DSTC8 spans); the model has no intent head
    # Sigmoid per intent (several may hold) instead of a softmax over them; an intent holds
    # when its probability reaches ``intent_threshold``, tuned on valid by the trainer.
    multi_label: bool = False
    intent_threshold: float = 0.5
    # Context input: which of ``num_requested`` slots the dialogue just asked for, embedded
    # in ``requested_dim`` features beside every token's vector (0: no context input).
    num_requested: int = 0
    requested_dim: int = 16
    # Added later; these defaults are what older manifests meant (no extra intent paths).
    intent_wide_buckets: int = 0  # hashed bigram buckets of the wide intent term; 0: none
    intent_label_attention: bool = False
    intent_token_votes: bool = False  # single-label only
    # Weight w of the joint reading of intents and slots (models.joint): each intent's
    # probability times F ** w, F the CRF's mass on labellings of that intent's slot types
    # (0: off; single-label only).
    intent_slot_fit: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_tags < 1 or self.num_intents < 0 or self.num_requested < 0:
            raise ValueError("expected a positive tag count and non-negative intent counts")
        if not 0.0 < self.intent_threshold < 1.0:
            raise ValueError("expected 0 < intent_threshold < 1")
        if self.intent_wide_buckets < 0:
            raise ValueError("expected intent_wide_buckets >= 0")
        if self.intent_token_votes and self.multi_label:
            raise ValueError("intent_token_votes needs single-label intents")
        if not 0.0 <= self.intent_slot_fit <= 10.0:
            raise ValueError("expected 0 <= intent_slot_fit <= 10")


class BiLSTMCRFTagger(nn.Module):
    """Token embedder -> bidirectional RNN -> emissions -> CRF, plus an intent classifier.

    ``torchcrf.CRF`` holds the transition parameters; likelihood and decoding run through
    :mod:`models.crf` with the BIO constraints of ``tags`` applied.
    """

    def __init__(self, config: TaggerConfig, tags: Sequence[str] | None = None) -> None:
        super().__init__()
        self.config = config
        self.tags = list(tags) if tags is not None else None
        context = config.requested_dim if config.num_requested else 0
        self.embedder, self.dropout, self.rnn = encoder_layers(config, context)
        # Multi-hot requested slots times this matrix: the sum of their learned embeddings.
        self.requested = nn.Linear(config.num_requested, context, bias=False) if context else None
        self.emit = nn.Linear(2 * config.hidden_size, config.num_tags)
        self.intent = (
            nn.Linear(4 * config.hidden_size, config.num_intents) if config.num_intents else None
        )
        self.trained_words = self.embedder.trained_words
        self.wide_words: nn.Embedding | None = None
        self.wide_bigrams: nn.Embedding | None = None
        if config.num_intents and config.intent_wide_buckets:
            # Zero at the start: the network begins as it would without the wide term.
            self.wide_words = nn.Embedding(self.trained_words, config.num_intents)
            self.wide_bigrams = nn.Embedding(config.intent_wide_buckets, config.num_intents)
            nn.init.zeros_(self.wide_words.weight)
            nn.init.zeros_(self.wide_bigrams.weight)
        self.intent_queries: nn.Linear | None = None
        self.intent_values: nn.Parameter | None = None
        if config.num_intents and config.intent_label_attention:
            dim = 2 * config.hidden_size
            self.intent_queries = nn.Linear(dim, config.num_intents, bias=False)
            self.intent_values = nn.Parameter(torch.zeros(config.num_intents, dim))
        self.token_intent: nn.Linear | None = None
        # The last forward's token-level intent logits, for :meth:`token_vote_loss`.
        self.token_intent_logits: Tensor | None = None
        if config.num_intents and config.intent_token_votes:
            self.token_intent = nn.Linear(2 * config.hidden_size, config.num_intents)
        self.crf = CRF(config.num_tags, batch_first=True)
        if self.tags is not None and len(self.tags) != config.num_tags:
            raise ValueError(f"expected {config.num_tags} tags, got {len(self.tags)}")
        # Computed once: building the masks costs O(num_tags^2) Python work. Buffers, so that
        # ``.to(device)`` moves them with the parameters (training on CUDA masks CUDA scores);
        # not persistent: the artifact's weights stay as they were.
        self.allowed_start: Tensor
        self.allowed_transitions: Tensor
        if self.tags is not None:
            allowed_start, allowed_transitions = bio_constraints(self.tags)
            self.register_buffer("allowed_start", allowed_start, persistent=False)
            self.register_buffer("allowed_transitions", allowed_transitions, persistent=False)

    def forward(self, batch: TokenBatch) -> tuple[Tensor, Tensor]:
        """Emissions ``(batch, seq_len, num_tags)`` and intent logits ``(batch, num_intents)``."""
        vectors = self.embedder(batch)
        if self.requested is not None:
            asked = batch.requested
            if asked is None:
                asked = vectors.new_zeros(vectors.shape[0], self.config.num_requested)
            context = self.requested(asked.to(vectors.dtype)).unsqueeze(1)
            vectors = torch.cat([vectors, context.expand(-1, vectors.shape[1], -1)], dim=-1)
        states = self.dropout(run_rnn(self.rnn, self.dropout(vectors), batch.mask))
        # Emissions first: autograd then sums the gradients into ``states`` in the order it
        # did before the extra intent paths, so default training keeps its exact weights.
        emissions = self.emit(states)
        if self.intent is None:
            return emissions, states.new_zeros(states.shape[0], 0)
        logits: Tensor = self.intent(masked_pool(states, batch.mask))
        if self.intent_queries is not None and self.intent_values is not None:
            logits = logits + self.label_attention(states, batch.mask)
        if self.wide_words is not None:
            logits = logits + self.wide(batch)
        if self.token_intent is not None:
            token_logits = self.token_intent(states)  # (batch, seq_len, num_intents)
            self.token_intent_logits = token_logits
            votes = torch.log_softmax(token_logits, dim=2) * batch.mask.unsqueeze(2)
            lengths = batch.mask.sum(dim=1, keepdim=True).clamp(min=1)
            logits = logits + votes.sum(dim=1) / lengths
        return emissions, logits

    def token_vote_loss(self, mask: Tensor, intent_ids: Tensor) -> Tensor:
        """Mean cross-entropy of every real token's intent prediction (of the last forward)
        against its utterance's intent ``(batch,)``; 0 without token votes."""
        if self.token_intent_logits is None:
            return mask.new_zeros((), dtype=torch.float)
        logits = self.token_intent_logits[mask]  # (tokens, num_intents)
        per_token = intent_ids.unsqueeze(1).expand_as(mask)[mask]
        return nn.functional.cross_entropy(logits, per_token)

    def label_attention(self, states: Tensor, mask: Tensor) -> Tensor:
        """Per intent: softmax attention of its query over the real positions, the attended
        state dotted with its value vector; ``(batch, num_intents)``."""
        assert self.intent_queries is not None and self.intent_values is not None
        scores = self.intent_queries(states).masked_fill(~mask.unsqueeze(2), -1.0e4)
        weights = torch.softmax(scores, dim=1)  # (batch, seq_len, num_intents)
        attended = torch.einsum("btc,bth->bch", weights, states)
        return (attended * self.intent_values).sum(dim=2)

    def wide(self, batch: TokenBatch) -> Tensor:
        """The wide intent term ``(batch, num_intents)`` (:func:`models.layers.wide_term`)
        over the training words (words known only from pretrained vectors read as ``<unk>``)."""
        assert self.wide_words is not None and self.wide_bigrams is not None
        words = batch.token_ids.masked_fill(batch.token_ids >= self.trained_words, 1)
        dropout = self.config.dropout if self.training else 0.0
        return wide_term(self.wide_words, self.wide_bigrams, words, batch.mask, dropout)

    def intent_probs(self, logits: Tensor) -> Tensor:
        """Per-intent probabilities: sigmoids for a multi-label model, else a softmax."""
        return torch.sigmoid(logits) if self.config.multi_label else torch.softmax(logits, dim=-1)

    def joint_loss(
        self,
        emissions: Tensor,
        intent_logits: Tensor,
        mask: Tensor,
        tag_ids: Tensor,
        intent_ids: Tensor,
        intent_weight: float = 1.0,
    ) -> Tensor:
        """Mean negative log-likelihood of the constrained CRF plus the weighted intent loss,
        from outputs already computed (by the model's forward or its DDP wrapper's).

        ``tag_ids``: ``(batch, seq_len)`` (any valid tag id on padding). Training the
        constrained CRF that the decoder uses keeps span marginals calibrated.

        ``intent_ids``: class ids ``(batch,)``, or for a multi-label model 0/1 targets
        ``(batch, num_intents)`` scored by binary cross-entropy; no intent loss without intents.
        """
        nll = -log_likelihood(emissions, tag_ids, mask, self.crf_params()).mean()
        if self.intent is None:
            return nll
        if self.config.multi_label:
            # Summed over the intents, as the CRF term sums over tokens: a mean over 48
            # intents (NLU++) would scale the intent gradient down 48 times.
            intent_loss = (
                nn.functional.binary_cross_entropy_with_logits(
                    intent_logits, intent_ids.to(intent_logits.dtype), reduction="none"
                )
                .sum(dim=1)
                .mean()
            )
        else:
            intent_loss = nn.functional.cross_entropy(intent_logits, intent_ids)
            if self.token_intent is not None:
                intent_loss = intent_loss + self.token_vote_loss(mask, intent_ids)
        return nll + intent_weight * intent_loss

    def bio_allowed(self) -> tuple[Tensor, Tensor] | None:
        """The BIO masks (allowed first tags, allowed transitions) on the model's device, or
        None for a model built without tag names."""
        if self.tags is None:
            return None
        return self.allowed_start, self.allowed_transitions

    def crf_params(self, constrained: bool = True) -> CRFParams:
        """The CRF scores, with BIO constraints unless ``constrained`` is false."""
        return CRFParams.constrained(
            self.crf.start_transitions,
            self.crf.transitions,
            self.crf.end_transitions,
            self.bio_allowed() if constrained else None,
        )

    def decode(self, batch: TokenBatch) -> tuple[list[list[int]], Tensor]:
        """Constrained Viterbi tag ids per sequence and intent logits; no gradient."""
        with torch.inference_mode():
            emissions, intent_logits = self(batch)
            return viterbi_decode(emissions, batch.mask, self.crf_params()), intent_logits
