"""Inference on raw text: what the server and ``slotfill predict`` call."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from models.calibration import Temperatures, scale_crf_arrays, scale_logits
from models.crf import CRFArrays, forward_backward_arrays, span_log_prob, viterbi_decode
from models.crf_kbest import kbest_paths
from models.features import TokenBatch, encode_tokens
from models.sentiment import LSTMSentimentClassifier
from models.slot_tagger import BiLSTMCRFTagger
from models.text import TextScheme, Token, sentiment_words, tagger_tokens
from models.vocab import LabelSet, Vocab

# A forward pass: the torch model itself, or an engine running its weights (models.engine).
TaggerNet = Callable[[TokenBatch], tuple[torch.Tensor, torch.Tensor]]
SentimentNet = Callable[[TokenBatch], torch.Tensor]


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
    canonical: str | None = None  # the synonym's canonical value (Rasa ``synonym:``), if any


@dataclass(frozen=True)
class SlotSpan:
    """A slot of a hypothesis; ``text[start:end] == value``."""

    slot: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class SlotHypothesis:
    """One of the k most probable whole-utterance labellings (k-best Viterbi)."""

    probability: float  # of this exact tag sequence under the CRF
    tags: list[str]
    slots: list[SlotSpan]


@dataclass(frozen=True)
class Parse:
    """Tagger output for one utterance."""

    tokens: list[Token]
    tags: list[str]
    intent_ranking: list[tuple[str, float]]  # best first
    slots: list[SlotValue]
    # The intents that hold, best first: a multi-label model's above its threshold (maybe
    # none), a single-label model's best one.
    intents: tuple[tuple[str, float], ...] = ()
    hypotheses: list[SlotHypothesis] = field(default_factory=list)  # best first; n_best


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


def span_confidences(
    tags: LabelSet,
    path: Sequence[int],
    emissions: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    log_z: float,
    arrays: CRFArrays,
) -> list[tuple[Span, float]]:
    """Each span of one utterance's tag ``path`` with its marginal probability of being
    exactly that span (``models.crf.span_log_prob``) under the CRF of ``emissions`` and
    ``arrays`` (one utterance's ``(seq_len, num_tags)`` slices of the forward-backward pass)."""
    out = []
    for span in bio_spans([tags.labels[i] for i in path]):
        inside = tags.index_of.get(f"I-{span.slot}")
        outside = [k for k in range(len(tags)) if k != inside]
        logp = span_log_prob(
            emissions,
            alpha,
            beta,
            log_z,
            arrays,
            len(path),
            path[span.first : span.last + 1],
            span.first,
            span.last + 1,
            outside,
        )
        out.append((span, min(1.0, max(0.0, math.exp(logp)))))
    return out


def on_device(batch: TokenBatch, model: torch.nn.Module) -> TokenBatch:
    """``batch`` where ``model``'s weights are (serving: the CPU, so no copy)."""
    device = next(model.parameters()).device
    return batch if device.type == "cpu" else batch.to(device)


class SlotTaggerPredictor:
    """Raw text -> intent ranking and slots with character offsets and confidences."""

    def __init__(
        self,
        model: BiLSTMCRFTagger,
        words: Vocab,
        chars: Vocab,
        tags: LabelSet,
        intents: LabelSet,
        requested: LabelSet | None = None,
        synonyms: dict[str, str] | None = None,
        temperatures: Temperatures | None = None,
    ) -> None:
        """``requested``: the slot names a request's context may name (the model reads them
        when it has a context input); ``synonyms``: lower-cased slot text -> canonical value;
        ``temperatures``: the calibration of intent and span confidences (default: none)."""
        self.model = model.eval()
        self.net: TaggerNet = self.model  # emissions and intent logits; models.engine swaps it
        self.words, self.chars, self.tags, self.intents = words, chars, tags, intents
        self.requested = requested if requested is not None else LabelSet([])
        self.synonyms = dict(synonyms or {})
        self.temperatures = temperatures or Temperatures()
        self._arrays: CRFArrays | None = None
        self._arrays_key: tuple[int, ...] = ()

    @property
    def reads_context(self) -> bool:
        """True when the model takes the requested slots as an input."""
        return self.model.requested is not None

    def encode(
        self,
        sentences: Sequence[Sequence[str]],
        requested: Sequence[Sequence[str]] | None = None,
    ) -> TokenBatch:
        """Token strings (and, for a model with a context input, the slots requested before
        each sentence) -> network input; an unknown slot name raises ``ValueError``."""
        batch = encode_tokens(sentences, self.words, self.chars)
        if not self.reads_context or requested is None or not any(requested):
            return batch
        unknown = sorted({s for row in requested for s in row} - set(self.requested.index_of))
        if unknown:
            raise ValueError(f"unknown requested slots {unknown}")
        rows = [[self.requested.index_of[s] for s in row] for row in requested]
        return batch.with_requested(rows, len(self.requested))

    def tag_tokens(
        self,
        sentences: Sequence[Sequence[str]],
        requested: Sequence[Sequence[str]] | None = None,
    ) -> tuple[list[list[str]], list[list[tuple[str, float]]]]:
        """BIO tags and intent ranking for pre-tokenised sentences (evaluation path)."""
        tags, probs = self.tag_probs(sentences, requested)
        return tags, self._rank_probs(torch.from_numpy(probs))

    def tag_probs(
        self,
        sentences: Sequence[Sequence[str]],
        requested: Sequence[Sequence[str]] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """BIO tags and every intent's probability ``(batch, num_intents)``, intent order;
        on the model's device (a GPU while training evaluates), only the outputs copied back."""
        batch = on_device(self.encode(sentences, requested), self.model)
        with torch.inference_mode():
            emissions, intent_logits = self.net(batch)
        paths = viterbi_decode(emissions, batch.mask, self.model.crf_params())
        tags = [[self.tags.labels[i] for i in path] for path in paths]
        return tags, self._intent_probs(intent_logits).double().cpu().numpy()

    def parse(
        self,
        texts: Sequence[str],
        top_k: int = 5,
        n_best: int | Sequence[int] = 0,
        requested: Sequence[Sequence[str]] | None = None,
    ) -> list[Parse]:
        """Parse every text in one batch; raises ``ValueError`` for a text with no tokens.

        ``requested``: per text, the slots the dialogue asked for just before it.

        ``n_best`` (one for all texts, or one per text): how many of the most probable
        whole-utterance labellings to list in ``Parse.hypotheses`` (0: none).
        """
        token_lists = [tagger_tokens(t) for t in texts]
        if any(not toks for toks in token_lists):
            raise ValueError("expected every text to contain at least one token")
        ks = [n_best] * len(texts) if isinstance(n_best, int) else list(n_best)
        if len(ks) != len(texts) or any(k < 0 for k in ks):
            raise ValueError(f"expected n_best >= 0 for each of the {len(texts)} texts, got {ks}")
        batch = self.encode([[t.text for t in toks] for toks in token_lists], requested)
        with torch.inference_mode():
            emissions_t, intent_logits = self.net(batch)
            rankings = self._rankings(intent_logits, top_k)
            chosen = self._chosen(intent_logits)
        paths = viterbi_decode(emissions_t, batch.mask, self._crf_arrays())
        # Marginals and hypotheses' probabilities from the calibrated (temperature-scaled) CRF;
        # the path above is the same at any positive temperature.
        arrays = scale_crf_arrays(self._crf_arrays(), self.temperatures.spans)
        emissions = scale_logits(emissions_t.double().numpy(), self.temperatures.spans)
        alpha, beta, log_z = forward_backward_arrays(emissions, batch.mask.numpy(), arrays)
        parses = [
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
                chosen[b],
            )
            for b, (text, toks, path) in enumerate(zip(texts, token_lists, paths, strict=True))
        ]
        for b, k in enumerate(ks):
            if k:
                em = emissions[b, : len(token_lists[b])]
                hyps = self._hypotheses(texts[b], token_lists[b], em, float(log_z[b]), arrays, k)
                parses[b] = replace(parses[b], hypotheses=hyps)
        return parses

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
        intents: tuple[tuple[str, float], ...],
    ) -> Parse:
        """Spans with character offsets and marginal confidences for one utterance."""
        tags = [self.tags.labels[i] for i in path]
        slots = []
        marginals = span_confidences(self.tags, path, emissions, alpha, beta, log_z, params)
        for span, confidence in marginals:
            start, end = toks[span.first].start, toks[span.last].end
            value = text[start:end]
            canonical = self.synonyms.get(value.lower())
            slots.append(SlotValue(span.slot, value, start, end, confidence, canonical))
        return Parse(toks, tags, ranking, slots, intents)

    def _hypotheses(
        self,
        text: str,
        toks: list[Token],
        emissions: np.ndarray,
        log_z: float,
        arrays: CRFArrays,
        k: int,
    ) -> list[SlotHypothesis]:
        """The ``k`` most probable tag sequences of one utterance as slots in the raw text.

        The first is the parse's own labelling, barring near-ties that Viterbi's float32 sums
        cannot separate.
        """
        out = []
        for hyp in kbest_paths(emissions, arrays, k, log_z):
            tags = [self.tags.labels[i] for i in hyp.path]
            slots = []
            for span in bio_spans(tags):
                start, end = toks[span.first].start, toks[span.last].end
                slots.append(SlotSpan(span.slot, text[start:end], start, end))
            out.append(SlotHypothesis(hyp.probability, tags, slots))
        return out

    def _intent_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated intent probabilities: the logits scaled by the intent temperature."""
        return self.model.intent_probs(scale_logits(logits, self.temperatures.intent))

    def _rankings(
        self, logits: torch.Tensor, top_k: int | None = None
    ) -> list[list[tuple[str, float]]]:
        return self._rank_probs(self._intent_probs(logits), top_k)

    def _chosen(self, logits: torch.Tensor) -> list[tuple[tuple[str, float], ...]]:
        """The intents that hold per sentence (see :attr:`Parse.intents`)."""
        if not len(self.intents):
            return [() for _ in range(logits.shape[0])]
        if not self.model.config.multi_label:
            return [tuple(r) for r in self._rankings(logits, 1)]
        threshold = self.model.config.intent_threshold
        return [
            tuple((n, p) for n, p in ranking if p >= threshold)
            for ranking in self._rankings(logits)
        ]

    def _rank_probs(
        self, probs: torch.Tensor, top_k: int | None = None
    ) -> list[list[tuple[str, float]]]:
        if not len(self.intents):
            return [[] for _ in range(probs.shape[0])]
        k = min(top_k or len(self.intents), len(self.intents))
        values, indices = probs.topk(k, dim=-1)
        return [
            [(self.intents.labels[i], float(v)) for v, i in zip(vs, ix, strict=True)]
            for vs, ix in zip(values.tolist(), indices.tolist(), strict=True)
        ]


class SentimentPredictor:
    """Raw text -> sentiment label with a probability per label."""

    def __init__(
        self,
        model: LSTMSentimentClassifier,
        words: Vocab,
        chars: Vocab,
        labels: LabelSet,
        temperatures: Temperatures | None = None,
    ) -> None:
        """``temperatures.labels`` calibrates the probabilities (default: unscaled)."""
        self.model = model.eval()
        self.net: SentimentNet = self.model  # label logits; models.engine swaps it
        self.words, self.chars, self.labels = words, chars, labels
        self.temperatures = temperatures or Temperatures()
        self.scheme: TextScheme = model.config.text_scheme  # how the model reads text

    def classify_tokens(self, sentences: Sequence[Sequence[str]]) -> list[SentimentResult]:
        """Classify pre-tokenised sentences in one batch."""
        batch = on_device(encode_tokens(sentences, self.words, self.chars), self.model)
        with torch.inference_mode():
            logits = scale_logits(self.net(batch), self.temperatures.labels)
            probs = torch.softmax(logits, dim=-1).tolist()
        results = []
        for row in probs:
            best = max(range(len(row)), key=row.__getitem__)
            scores = {label: float(p) for label, p in zip(self.labels.labels, row, strict=True)}
            results.append(SentimentResult(self.labels.labels[best], float(row[best]), scores))
        return results

    def classify(self, texts: Sequence[str]) -> list[SentimentResult]:
        """Classify raw texts; raises ``ValueError`` for a text with no tokens."""
        token_lists = [sentiment_words(text, self.scheme) for text in texts]
        if any(not toks for toks in token_lists):
            raise ValueError("expected every text to contain at least one token")
        return self.classify_tokens(token_lists)
