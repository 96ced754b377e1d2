"""A pretrained BERT-family encoder fine-tuned as a sentiment classifier.

Word pieces -> [CLS] pieces [SEP] -> embeddings (word + position + segment 0, layer norm)
-> post-norm self-attention layers -> mean over the real positions -> dropout -> logits:
the architecture of sentence-transformers' all-MiniLM-L6-v2 with a linear head, so a
fine-tuned copy starts from its weights (``training.pretrained_encoder`` reads them).

The classifier takes the same :class:`TokenBatch` as the LSTM: ``token_ids`` index the
artifact's word-piece vocabulary (``<pad>`` and ``<unk>`` first, then the encoder's pieces);
the [CLS] and [SEP] ids are added here, so the predictor, evaluation and calibration code is
the one the LSTM classifier uses. The NumPy engine (models.engine.NumpyTransformerSentiment)
computes the same forward pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from models.features import TokenBatch

ARCHITECTURE = "transformer"


@dataclass(frozen=True, kw_only=True)
class TransformerSentimentConfig:
    """Shape of a :class:`TransformerSentimentClassifier`; stored in the manifest."""

    num_labels: int
    vocab_size: int
    cls_index: int  # [CLS] and [SEP] in the artifact's word-piece vocabulary
    sep_index: int
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_positions: int = 512
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    max_wordpieces: int = 64  # pieces read per text, [CLS] and [SEP] included
    architecture: str = ARCHITECTURE

    def __post_init__(self) -> None:
        if self.architecture != ARCHITECTURE:
            raise ValueError(f"expected architecture {ARCHITECTURE!r}, got {self.architecture!r}")
        if min(self.num_labels, self.vocab_size, self.num_layers, self.num_heads) < 1:
            raise ValueError("expected positive sizes")
        if self.hidden_size % self.num_heads:
            raise ValueError("expected hidden_size divisible by num_heads")
        if not 3 <= self.max_wordpieces <= self.max_positions:
            raise ValueError("expected 3 <= max_wordpieces <= max_positions")
        if not (0 <= self.cls_index < self.vocab_size and 0 <= self.sep_index < self.vocab_size):
            raise ValueError("expected [CLS] and [SEP] inside the vocabulary")

    def to_dict(self) -> dict[str, object]:
        """JSON form, as stored in the artifact manifest."""
        return asdict(self)


class _Layer(nn.Module):
    """One post-norm encoder layer: self-attention, then a GELU feed-forward block."""

    def __init__(self, c: TransformerSentimentConfig) -> None:
        super().__init__()
        h = c.hidden_size
        self.heads = c.num_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attention_out = nn.Linear(h, h)
        self.attention_norm = nn.LayerNorm(h, eps=c.layer_norm_eps)
        self.intermediate = nn.Linear(h, c.intermediate_size)
        self.output = nn.Linear(c.intermediate_size, h)
        self.output_norm = nn.LayerNorm(h, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.dropout)

    def _split(self, x: Tensor) -> Tensor:  # (b, t, h) -> (b, heads, t, h / heads)
        b, t, h = x.shape
        return x.view(b, t, self.heads, h // self.heads).transpose(1, 2)

    def forward(self, x: Tensor, key_bias: Tensor) -> Tensor:
        """``x`` ``(batch, seq, hidden)``; ``key_bias`` ``(batch, 1, 1, seq)``: 0 on real
        positions, a large negative number on padding."""
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5) + key_bias
        attended = self.dropout(torch.softmax(scores, dim=-1)) @ v
        attended = attended.transpose(1, 2).reshape(x.shape)
        x = self.attention_norm(x + self.dropout(self.attention_out(attended)))
        inner = nn.functional.gelu(self.intermediate(x))
        out: Tensor = self.output_norm(x + self.dropout(self.output(inner)))
        return out


def with_specials(
    token_ids: Tensor, mask: Tensor, cls_index: int, sep_index: int
) -> tuple[Tensor, Tensor]:
    """``[CLS] ids [SEP]`` per row, right-padded with 0, and its mask."""
    b, t = token_ids.shape
    lengths = mask.sum(dim=1)
    ids = torch.zeros(b, t + 2, dtype=token_ids.dtype, device=token_ids.device)
    ids[:, 0] = cls_index
    ids[:, 1 : t + 1] = token_ids * mask
    rows = torch.arange(b, device=ids.device)
    ids[rows, lengths + 1] = sep_index
    positions = torch.arange(t + 2, device=ids.device)
    return ids, positions[None, :] <= (lengths + 1)[:, None]


class TransformerSentimentClassifier(nn.Module):
    """Label logits of a whole utterance from a (pretrained) self-attention encoder."""

    def __init__(self, config: TransformerSentimentConfig) -> None:
        super().__init__()
        self.config = c = config
        h = c.hidden_size
        self.word_embeddings = nn.Embedding(c.vocab_size, h)
        self.position_embeddings = nn.Embedding(c.max_positions, h)
        # Segment 0's embedding: every text is one segment.
        self.segment_embedding = nn.Parameter(torch.zeros(h))
        self.embedding_norm = nn.LayerNorm(h, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c.num_layers))
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(h, c.num_labels)

    def encode(self, batch: TokenBatch) -> tuple[Tensor, Tensor]:
        """The last layer's states ``(batch, seq + 2, hidden)`` and their mask."""
        c = self.config
        ids, mask = with_specials(batch.token_ids, batch.mask, c.cls_index, c.sep_index)
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.segment_embedding
        x = self.dropout(self.embedding_norm(x))
        key_bias = (~mask).to(x.dtype)[:, None, None, :] * -1.0e4
        for layer in self.layers:
            x = layer(x, key_bias)
        return x, mask

    def forward(self, batch: TokenBatch) -> Tensor:
        """Label logits ``(batch, num_labels)``."""
        states, mask = self.encode(batch)
        weights = mask.to(states.dtype).unsqueeze(2)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1)
        logits: Tensor = self.out(self.dropout(pooled))
        return logits
