"""Inference on raw text: what the server and ``slotfill predict`` call."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.crf import CRFArrays, forward_backward_arrays, span_log_prob, viterbi_decode
from models.features import TokenBatch, encode_tokens
from models.sentiment import LSTMSentimentClassifier
from models.slot_tagger import BiLSTMCRFTagger
from models.text import Token, sentiment_tokens, tagger_tokens
from models.vocab import LabelSet, Vocab


@dataclass(frozen=True)
class Span:
    """A slot: tokens ``first..last`` (inclusive) labelled ``slot``."""

    slot: str
    first: int
    last: int


@dataclass(frozen=True)
class SlotValue:
    """A slot in the raw text; ``text[start:end] == value``."""

    slot: str
    value: str
    start: int
    end: int
    confidence: float


@dataclass(frozen=True)
class Parse:
    """Tagger output for one utterance."""

    tokens: list[Token]
    tags: list[str]
    intent_ranking: list[tuple[str, float]]  # best first
    slots: list[SlotValue]


@dataclass(frozen=True)
class SentimentResult:
    """Classifier output for one utterance."""

    label: str
    confidence: float
    scores: dict[str, float]


def bio_spans(tags: Sequence[str]) -> list[Span]:
    """Chunks of a BIO sequence; a stray ``I-x`` opens a chunk as conlleval does."""
    spans: list[Span] = []
    current: tuple[str, int] | None = None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, slot = tag.partition("-")
        continues = prefix == "I" and current is not None and current[0] == slot
        if current is not None and not continues:
            spans.append(Span(current[0], current[1], i - 1))
            current = None
        if prefix == "B" or (prefix == "I" and current is None):
            current = (slot, i)
    return spans


# The tagger's tokenizer under its former name, for the modules that still import it here.
model_tokens = tagger_tokens


class SlotTaggerPredictor:
    """Raw text -> intent ranking and slots with character offsets and confidences."""

    def __init__(
        self, model: BiLSTMCRFTagger, words: Vocab, chars: Vocab, tags: LabelSet, intents: LabelSet
    ) -> None:
        self.model = model.eval()
        self.words, self.chars, self.tags, self.intents = words, chars, tags, intents
        self._arrays: CRFArrays | None = None
        self._arrays_key: tuple[int, ...] = ()

    def encode(self, sentences: Sequence[Sequence[str]]) -> TokenBatch:
        """Token strings -> network input."""
        return encode_tokens(sentences, self.words, self.chars)

    def tag_tokens(
        self, sentences: Sequence[Sequence[str]]
    ) -> tuple[list[list[str]], list[list[tuple[str, float]]]]:
        """BIO tags and intent ranking for pre-tokenised sentences (evaluation path)."""
        paths, intent_logits = self.model.decode(self.encode(sentences))
        tags = [[self.tags.labels[i] for i in path] for path in paths]
        return tags, self._rankings(intent_logits)

    def parse(self, texts: Sequence[str], top_k: int = 5) -> list[Parse]:
        """Parse every text in one batch; raises ``ValueError`` for a text with no tokens."""
        token_lists = [tagger_tokens(t) for t in texts]
        if any(not toks for toks in token_lists):
            raise ValueError("expected every text to contain at least one token")
        batch = self.encode([[t.text for t in toks] for toks in token_lists])
        with torch.inference_mode():
            emissions_t, intent_logits = self.model(batch)
            rankings = self._rankings(intent_logits, top_k)
        arrays = self._crf_arrays()
        paths = viterbi_decode(emissions_t, batch.mask, arrays)
        emissions = emissions_t.double().numpy()
        alpha, beta, log_z = forward_backward_arrays(emissions, batch.mask.numpy(), arrays)
        return [
            self._result(
                text,
                toks,
                path,
                emissions[b],
                alpha[b],
                beta[b],
                float(log_z[b]),
                arrays,
                rankings[b],
            )
            for b, (text, toks, path) in enumerate(zip(texts, token_lists, paths, strict=True))
        ]

    def _crf_arrays(self) -> CRFArrays:
        """Constrained CRF scores as arrays, converted again only after the weights change."""
        crf = self.model.crf
        key = tuple(
            p._version for p in (crf.start_transitions, crf.transitions, crf.end_transitions)
        )
        if self._arrays is None or self._arrays_key != key:
            with torch.inference_mode():
                self._arrays = CRFArrays.of(self.model.crf_params())
            self._arrays_key = key
        return self._arrays

    def _result(
        self,
        text: str,
        toks: list[Token],
        path: list[int],
        emissions: np.ndarray,
        alpha: np.ndarray,
        beta: np.ndarray,
        log_z: float,
        params: CRFArrays,
        ranking: list[tuple[str, float]],
    ) -> Parse:
        """Spans with character offsets and marginal confidences for one utterance."""
        tags = [self.tags.labels[i] for i in path]
        slots = []
        for span in bio_spans(tags):
            inside = self.tags.index_of.get(f"I-{span.slot}")
            outside = [k for k in range(len(self.tags)) if k != inside]
            logp = span_log_prob(
                emissions,
                alpha,
                beta,
                log_z,
                params,
                len(toks),
                path[span.first : span.last + 1],
                span.first,
                span.last + 1,
                outside,
            )
            start, end = toks[span.first].start, toks[span.last].end
            confidence = min(1.0, max(0.0, math.exp(logp)))
            slots.append(SlotValue(span.slot, text[start:end], start, end, confidence))
        return Parse(toks, tags, ranking, slots)

    def _rankings(
        self, logits: torch.Tensor, top_k: int | None = None
    ) -> list[list[tuple[str, float]]]:
        probs = torch.softmax(logits, dim=-1)
        k = min(top_k or len(self.intents), len(self.intents))
        values, indices = probs.topk(k, dim=-1)
        return [
            [(self.intents.labels[i], float(v)) for v, i in zip(vs, ix, strict=True)]
            for vs, ix in zip(values.tolist(), indices.tolist(), strict=True)
        ]


class SentimentPredictor:
    """Raw text -> sentiment label with a probability per label."""

    def __init__(
        self, model: LSTMSentimentClassifier, words: Vocab, chars: Vocab, labels: LabelSet
    ) -> None:
        self.model = model.eval()
        self.words, self.chars, self.labels = words, chars, labels

    def classify_tokens(self, sentences: Sequence[Sequence[str]]) -> list[SentimentResult]:
        """Classify pre-tokenised sentences in one batch."""
        batch = encode_tokens(sentences, self.words, self.chars)
        with torch.inference_mode():
            probs = torch.softmax(self.model(batch), dim=-1).tolist()
        results = []
        for row in probs:
            best = max(range(len(row)), key=row.__getitem__)
            scores = {label: float(p) for label, p in zip(self.labels.labels, row, strict=True)}
            results.append(SentimentResult(self.labels.labels[best], float(row[best]), scores))
        return results

    def classify(self, texts: Sequence[str]) -> list[SentimentResult]:
        """Classify raw texts; raises ``ValueError`` for a text with no tokens."""
        token_lists = [[t.text for t in sentiment_tokens(text)] for text in texts]
        if any(not toks for toks in token_lists):
            raise ValueError("expected every text to contain at least one token")
        return self.classify_tokens(token_lists)
