"""Inference on raw text: what the server and ``slotfill predict`` call.

A predictor runs its network on torch (the model itself) or on an :class:`ArrayTagger` /
:class:`ArraySentiment` (models.engine, NumPy); everything after the network (CRF decoding,
marginals, rankings, confidences) is NumPy, so a predictor built on an engine alone (a
torch-free serving worker, models.artifact) never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, cast

import numpy as np

from models.calibration import Temperatures, scale_crf_arrays, scale_logits, softmax
from models.crf import (
    FORBIDDEN,
    CRFArrays,
    Lattice,
    decode_lattice,
    span_log_prob,
    viterbi_arrays,
)
from models.crf_kbest import kbest_paths
from models.features import TokenArrays, TokenBatch, encode_arrays
from models.joint import intent_tag_mask, joint_logits
from models.lexical import LexicalIntents
from models.text import TextScheme, Token, sentiment_words, tagger_tokens
from models.vocab import UNK, LabelSet, Vocab

if TYPE_CHECKING:
    import torch

    from models.sentiment import LSTMSentimentClassifier, SentimentConfig
    from models.slot_tagger import BiLSTMCRFTagger, TaggerConfig
    from models.transformer import TransformerSentimentClassifier, TransformerSentimentConfig
    from models.wordpiece import WordPieces

    SentimentModel = LSTMSentimentClassifier | TransformerSentimentClassifier


class ArrayTagger:
    """A tagger's forward pass in NumPy (models.engine.NumpyTagger): emissions
    ``(batch, seq_len, num_tags)`` and intent logits ``(batch, num_intents)``, float32; its
    ``config`` and the constrained CRF scores ``crf``."""

    config: TaggerConfig
    crf: CRFArrays

    def arrays(self, batch: TokenBatch | TokenArrays) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class ArraySentiment:
    """A sentiment model's forward pass in NumPy (models.engine.NumpySentiment,
    NumpyTransformerSentiment): label logits ``(batch, num_labels)``, float32; its ``config``."""

    config: SentimentConfig | TransformerSentimentConfig

    def arrays(self, batch: TokenBatch | TokenArrays) -> np.ndarray:
        raise NotImplementedError


def is_transformer(config: object) -> bool:
    """Whether a sentiment model config (or the manifest's view of one) is a pretrained
    transformer's (models.transformer) rather than the LSTM's."""
    return getattr(config, "architecture", "lstm") == "transformer"


def _no_torch_model(name: str) -> RuntimeError:
    return RuntimeError(f"this {name} serves a NumPy engine without torch: it has no torch model")


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


def on_device(batch: TokenBatch | TokenArrays, model: torch.nn.Module) -> TokenBatch:
    """``batch`` as tensors where ``model``'s weights are (serving: the CPU, so no copy)."""
    if isinstance(batch, TokenArrays):
        batch = batch.tensors()
    device = next(model.parameters()).device
    return batch if device.type == "cpu" else batch.to(device)


class SlotTaggerPredictor:
    """Raw text -> intent ranking and slots with character offsets and confidences."""

    def __init__(
        self,
        model: BiLSTMCRFTagger | ArrayTagger,
        words: Vocab,
        chars: Vocab,
        tags: LabelSet,
        intents: LabelSet,
        requested: LabelSet | None = None,
        synonyms: dict[str, str] | None = None,
        temperatures: Temperatures | None = None,
        intent_slots: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``requested``: the slot names a request's context may name (the model reads them
        when it has a context input); ``synonyms``: lower-cased slot text -> canonical value;
        ``temperatures``: the calibration of intent and span confidences (default: none);
        ``intent_slots``: each intent's slot types in training, for the joint reading of
        intents and slots (:mod:`models.joint`; the config's ``intent_slot_fit`` weighs it).
        ``model``: the torch model, or a NumPy engine alone (no torch model: :attr:`model`
        raises)."""
        self._model = None if isinstance(model, ArrayTagger) else model.eval()
        # What runs the network: the torch model, or an engine (models.engine swaps it in).
        self.net: BiLSTMCRFTagger | ArrayTagger = model
        self.config: TaggerConfig = model.config
        self.words, self.chars, self.tags, self.intents = words, chars, tags, intents
        self.requested = requested if requested is not None else LabelSet([])
        self.synonyms = dict(synonyms or {})
        self.temperatures = temperatures or Temperatures()
        self.intent_slots = {k: list(v) for k, v in (intent_slots or {}).items()}
        self._joint_mask: np.ndarray | None = None
        self._arrays: CRFArrays | None = None
        self._arrays_key: tuple[int, ...] = ()
        self._scaled: tuple[CRFArrays, float, CRFArrays] | None = None
        # A fine-tuned encoder whose intent probabilities are blended with the head's
        # (training.intent_encoder); its label columns in this tagger's intent order.
        self.intent_classifier: SentimentPredictor | None = None
        self.intent_classifier_weight = 1.0
        self._intent_columns: list[int] = []
        # A bag-of-n-grams intent model (models.lexical) blended into the head's share.
        self.lexical: LexicalIntents | None = None
        self.lexical_weight = 0.0
        self._lexical_columns: list[int] = []

    def _intent_columns_of(self, labels: Sequence[str], what: str) -> list[int]:
        """Per intent of this tagger, its column in a second model's ``labels`` (-1: the
        model lacks it); a multi-label tagger or an intent the tagger lacks is refused."""
        if self.config.multi_label:
            raise ValueError(f"{what} joins a single-label intent head only")
        unknown = sorted(set(labels) - set(self.intents.labels))
        if unknown:
            raise ValueError(f"{what} predicts intents the tagger lacks: {unknown}")
        index = {name: j for j, name in enumerate(labels)}
        return [index.get(name, -1) for name in self.intents.labels]

    def _in_intent_order(self, probs: np.ndarray, columns: list[int]) -> np.ndarray:
        """A second model's ``probs`` rearranged to this tagger's intents (one it lacks: 0)."""
        out = np.zeros((len(probs), len(self.intents)), dtype=np.float64)
        for j, column in enumerate(columns):
            if column >= 0:
                out[:, j] = probs[:, column]
        return out

    def attach_intent_classifier(self, classifier: SentimentPredictor, weight: float = 1.0) -> None:
        """Take the intents from ``classifier``, a text classifier over this tagger's intent
        names: ``weight`` times its calibrated probabilities (an intent it lacks: 0) plus
        ``1 - weight`` times the tagger head's; single-label taggers only."""
        if not 0 < weight <= 1:
            raise ValueError(f"an intent classifier's weight is in (0, 1], not {weight}")
        columns = self._intent_columns_of(classifier.labels.labels, "an intent classifier")
        self._intent_columns = columns
        self.intent_classifier, self.intent_classifier_weight = classifier, weight

    def attach_lexical(self, lexical: LexicalIntents, weight: float) -> None:
        """Blend ``weight`` times ``lexical``'s calibrated probabilities (an intent it
        lacks: 0) into the head's share of the served intents; single-label taggers only."""
        if not 0 < weight < 1:
            raise ValueError(f"a lexical intent model's weight is in (0, 1), not {weight}")
        self._lexical_columns = self._intent_columns_of(lexical.labels, "a lexical intent model")
        self.lexical, self.lexical_weight = lexical, weight

    def _lexical_probs(self, token_texts: Sequence[str]) -> np.ndarray:
        """The lexical model's calibrated probabilities in this tagger's intent order."""
        assert self.lexical is not None
        return self._in_intent_order(self.lexical.probs(token_texts), self._lexical_columns)

    def _served_intent_probs(
        self,
        logits: np.ndarray,
        emissions: np.ndarray,
        lengths: Sequence[int],
        texts: Sequence[str],
        token_texts: Sequence[str],
    ) -> np.ndarray:
        """The intent probabilities a parse reports, from the head's raw ``logits``: the
        head's calibrated probabilities with the slots' fit in its logits
        (:meth:`joint_intent_logits`). With a lexical model or an intent classifier attached,
        a blend of calibrated probabilities: the head's read apart, ``lexical_weight`` of
        the lexical model's in the head's share (it reads ``token_texts``, the tagger's tokens
        joined by spaces, as in training), ``intent_classifier_weight`` of the classifier's
        (it reads ``texts``); the fit is then weighed on the blend: inside the head it would
        count only by the head's share."""
        if self.intent_classifier is None and self.lexical is None:
            return self._intent_probs(self.joint_intent_logits(logits, emissions, lengths))
        blend = self._intent_probs(logits)
        if self.lexical is not None:
            w = self.lexical_weight
            blend = w * self._lexical_probs(token_texts) + (1.0 - w) * blend
        if self.intent_classifier is not None:
            w = self.intent_classifier_weight
            blend = w * self._classifier_probs(texts) + (1.0 - w) * blend
        if self.joint_mask is None:
            return blend
        log_blend = np.log(np.maximum(blend, np.finfo(np.float64).tiny))
        return softmax(self.joint_intent_logits(log_blend, emissions, lengths))

    def _classifier_probs(self, texts: Sequence[str]) -> np.ndarray:
        """The intent classifier's calibrated probabilities ``(batch, num_intents)``."""
        classifier = self.intent_classifier
        assert classifier is not None
        # A text the tagger reads but BERT's normaliser empties (a lone combining accent)
        # is read as one unknown piece: the tagger still answers for it.
        pieces = [row or [UNK] for row in classifier.inputs(texts)]
        logits = classifier.logits(classifier.encode(pieces))
        probs = softmax(scale_logits(logits.astype(np.float64), classifier.temperatures.labels))
        return self._in_intent_order(probs, self._intent_columns)

    @property
    def model(self) -> BiLSTMCRFTagger:
        """The torch model (training, evaluation, quantisation)."""
        if self._model is None:
            raise _no_torch_model("tagger")
        return self._model

    @property
    def reads_context(self) -> bool:
        """True when the model takes the requested slots as an input."""
        return self.config.num_requested > 0

    def outputs(self, batch: TokenBatch | TokenArrays) -> tuple[np.ndarray, np.ndarray]:
        """Emissions and intent logits as float32 arrays on the CPU, from whichever runs the
        network (a model on a GPU: only the outputs are copied back)."""
        if isinstance(self.net, ArrayTagger):
            return self.net.arrays(batch)
        import torch

        with torch.inference_mode():
            emissions, logits = self.net(on_device(batch, self.net))
        return emissions.float().cpu().numpy(), logits.float().cpu().numpy()

    def encode(
        self,
        sentences: Sequence[Sequence[str]],
        requested: Sequence[Sequence[str]] | None = None,
    ) -> TokenBatch:
        """Token strings (and, for a model with a context input, the slots requested before
        each sentence) -> the torch network's input; an unknown slot name raises
        ``ValueError``."""
        return self.encode_arrays(sentences, requested).tensors()

    def encode_arrays(
        self,
        sentences: Sequence[Sequence[str]],
        requested: Sequence[Sequence[str]] | None = None,
    ) -> TokenArrays:
        """:meth:`encode` as NumPy arrays (what the predictor runs; no torch)."""
        batch = encode_arrays(sentences, self.words, self.chars)
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
        return tags, self._rank_probs(probs)

    def tag_probs(
        self,
        sentences: Sequence[Sequence[str]],
        requested: Sequence[Sequence[str]] | None = None,
    ) -> tuple[list[list[str]], np.ndarray]:
        """BIO tags and every intent's probability ``(batch, num_intents)``, intent order;
        on the model's device (a GPU while training evaluates), only the outputs copied back."""
        batch = self.encode_arrays(sentences, requested)
        emissions, intent_logits = self.outputs(batch)
        lengths = [len(s) for s in sentences]
        texts = [" ".join(s) for s in sentences]
        probs = self._served_intent_probs(intent_logits, emissions, lengths, texts, texts)
        mask = self.joint_mask
        if mask is not None and probs.shape[1]:  # Viterbi within each row's intent's types
            allowed = mask[probs.argmax(axis=1)][:, None, :]
            emissions = np.where(allowed, emissions, np.float32(FORBIDDEN))
        paths = viterbi_arrays(emissions, batch.mask, self._crf_arrays())
        tags = [[self.tags.labels[i] for i in path] for path in paths]
        return tags, probs

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
        batch = self.encode_arrays([[t.text for t in toks] for toks in token_lists], requested)
        emissions, intent_logits = self.outputs(batch)
        lengths = [len(toks) for toks in token_lists]
        joined = [" ".join(t.text for t in toks) for toks in token_lists]
        probs = self._served_intent_probs(intent_logits, emissions, lengths, texts, joined)
        paths, lattice = self._decode(emissions, lengths, probs)
        rankings = self._rank_probs(probs, top_k)
        chosen = self._chosen(probs)
        parses = self._results(texts, token_lists, paths, lattice, rankings, chosen)
        for b, k in enumerate(ks):
            if k:
                em = lattice.emissions[b, : lengths[b]]
                log_z = float(lattice.log_z[b])
                hyps = self._hypotheses(texts[b], token_lists[b], em, log_z, lattice.arrays, k)
                parses[b] = replace(parses[b], hypotheses=hyps)
        return parses

    @property
    def joint_mask(self) -> np.ndarray | None:
        """Which tags go with which intent ``(num_intents, num_tags)`` when the joint reading
        of intents and slots is on (a single-label model with ``intent_slot_fit`` > 0 and
        the intents' slot types); else None."""
        config = self.config
        on = getattr(config, "intent_slot_fit", 0.0) > 0 and not config.multi_label
        if not (on and self.intent_slots and len(self.intents) > 1):
            return None
        if self._joint_mask is None:
            self._joint_mask = intent_tag_mask(
                self.intents.labels, self.tags.labels, self.intent_slots
            )
        return self._joint_mask

    def joint_intent_logits(
        self, logits: np.ndarray, emissions: np.ndarray, lengths: Sequence[int]
    ) -> np.ndarray:
        """The intent head's logits, plus each intent's fit to the slot labellings when the
        joint reading is on (:func:`models.joint.joint_logits`); what calibration scales."""
        mask = self.joint_mask
        if mask is None or not len(logits):
            return logits
        weight = self.config.intent_slot_fit
        return joint_logits(logits, emissions, lengths, mask, weight, self._crf_arrays())

    def _decode(
        self, emissions: np.ndarray, lengths: Sequence[int], probs: np.ndarray
    ) -> tuple[list[list[int]], Lattice]:
        """Viterbi paths and the calibrated lattice; with the joint reading on, a row whose
        best path has a tag outside the types of its most probable intent (``probs``) is
        decoded again within them."""
        # One pass: Viterbi paths, and the marginals and hypotheses' probabilities of the
        # calibrated (temperature-scaled) CRF; the path is the same at any positive temperature.
        arrays, scaled, temperature = (
            self._crf_arrays(),
            self._scaled_arrays(),
            self.temperatures.spans,
        )
        paths, lattice = decode_lattice(emissions, lengths, arrays, scaled, temperature)
        mask = self.joint_mask
        if mask is None or not probs.shape[1]:
            return paths, lattice
        allowed = mask[probs.argmax(axis=1)]
        redo = [b for b, path in enumerate(paths) if not allowed[b, path].all()]
        if redo:
            # Rows that keep their path keep the CRF's marginals over all labellings: their
            # best labelling is one of the intent's, and the mass outside it is small.
            n = max(lengths[b] for b in redo)
            em = np.where(allowed[redo, None, :], emissions[redo, :n], np.float32(FORBIDDEN))
            sub_paths, sub = decode_lattice(
                em, [lengths[b] for b in redo], arrays, scaled, temperature
            )
            for b, path in zip(redo, sub_paths, strict=True):
                paths[b] = path
            lattice = lattice.with_rows(redo, sub)
        return paths, lattice

    def _crf_arrays(self) -> CRFArrays:
        """Constrained CRF scores as arrays, converted again only after the weights change."""
        if isinstance(self.net, ArrayTagger):
            return self.net.crf
        import torch

        crf = self.model.crf
        key = tuple(
            p._version for p in (crf.start_transitions, crf.transitions, crf.end_transitions)
        )
        if self._arrays is None or self._arrays_key != key:
            with torch.inference_mode():
                self._arrays = CRFArrays.of(self.model.crf_params())
            self._arrays_key = key
        return self._arrays

    def _scaled_arrays(self) -> CRFArrays:
        """:meth:`_crf_arrays` scaled by the span temperature, computed once for those arrays
        and that temperature (a fresh copy costs more than the forward-backward pass)."""
        arrays, temperature = self._crf_arrays(), self.temperatures.spans
        cached = self._scaled
        if cached is None or cached[0] is not arrays or cached[1] != temperature:
            cached = self._scaled = (arrays, temperature, scale_crf_arrays(arrays, temperature))
        return cached[2]

    def _results(
        self,
        texts: Sequence[str],
        token_lists: Sequence[list[Token]],
        paths: Sequence[list[int]],
        lattice: Lattice,
        rankings: Sequence[list[tuple[str, float]]],
        chosen: Sequence[tuple[tuple[str, float], ...]],
    ) -> list[Parse]:
        """Each utterance's slots: spans with character offsets and marginal confidences
        (rows of ``lattice``, in batch order)."""
        tag_lists = [[self.tags.labels[i] for i in path] for path in paths]
        spans = [bio_spans(tags) for tags in tag_lists]
        # Every span of the batch in one vectorised pass: it costs about what one row's do.
        inside = self.tags.index_of
        confidences = lattice.rows_span_probs(
            range(len(paths)),
            paths,
            [[(s.first, s.last + 1, inside.get(f"I-{s.slot}", -1)) for s in row] for row in spans],
        )
        parses = []
        for b, (text, toks) in enumerate(zip(texts, token_lists, strict=True)):
            slots = []
            for span, confidence in zip(spans[b], confidences[b], strict=True):
                start, end = toks[span.first].start, toks[span.last].end
                value = text[start:end]
                canonical = self.synonyms.get(value.lower())
                slots.append(SlotValue(span.slot, value, start, end, confidence, canonical))
            parses.append(Parse(toks, tag_lists[b], rankings[b], slots, chosen[b]))
        return parses

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

    def _intent_probs(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated intent probabilities ``(batch, num_intents)`` float64: the logits scaled
        by the intent temperature, then sigmoids (a multi-label model) or a softmax."""
        scaled = scale_logits(logits.astype(np.float64), self.temperatures.intent)
        if self.config.multi_label:
            out: np.ndarray = 1.0 / (1.0 + np.exp(-scaled))
            return out
        return softmax(scaled)

    def _chosen(self, probs: np.ndarray) -> list[tuple[tuple[str, float], ...]]:
        """The intents that hold per sentence (see :attr:`Parse.intents`)."""
        if not len(self.intents):
            return [() for _ in range(probs.shape[0])]
        if not self.config.multi_label:  # the best one (argmax: the first of equals, as ranked)
            best = probs.argmax(axis=-1)
            top = probs[np.arange(len(best)), best].tolist()
            return [((self.intents.labels[i], p),) for i, p in zip(best.tolist(), top, strict=True)]
        threshold = self.config.intent_threshold
        return [
            tuple((n, p) for n, p in ranking if p >= threshold)
            for ranking in self._rank_probs(probs)
        ]

    def _rank_probs(
        self, probs: np.ndarray, top_k: int | None = None
    ) -> list[list[tuple[str, float]]]:
        if not len(self.intents):
            return [[] for _ in range(probs.shape[0])]
        k = min(top_k or len(self.intents), len(self.intents))
        indices = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        values = probs[np.arange(len(probs))[:, None], indices]
        return [
            [(self.intents.labels[i], v) for v, i in zip(vs, ix, strict=True)]
            for vs, ix in zip(values.tolist(), indices.tolist(), strict=True)
        ]


class SentimentPredictor:
    """Raw text -> sentiment label with a probability per label.

    The model is the LSTM classifier, which reads the words of its text scheme
    (:func:`models.text.sentiment_words`), or a fine-tuned transformer, which reads word
    pieces (:class:`models.wordpiece.WordPieces`); :meth:`inputs` is what either reads.
    """

    def __init__(
        self,
        model: SentimentModel | ArraySentiment,
        words: Vocab,
        chars: Vocab,
        labels: LabelSet,
        temperatures: Temperatures | None = None,
    ) -> None:
        """``temperatures.labels`` calibrates the probabilities (default: unscaled).
        ``model``: the torch model, or a NumPy engine alone (:attr:`model` raises)."""
        self._model = None if isinstance(model, ArraySentiment) else model.eval()
        # What runs the network: the torch model, or an engine (models.engine swaps it in).
        self.net: SentimentModel | ArraySentiment = model
        self.config: SentimentConfig | TransformerSentimentConfig = model.config
        self.words, self.chars, self.labels = words, chars, labels
        self.temperatures = temperatures or Temperatures()
        self.scheme: TextScheme = "plain"
        self._pieces: WordPieces | None = None
        if is_transformer(model.config):
            from models.wordpiece import WordPieces

            # [CLS] and [SEP] take two of the encoder's positions.
            pieces = cast("TransformerSentimentConfig", model.config).max_wordpieces - 2
            self._pieces = WordPieces(words, pieces)
        else:
            self.scheme = cast("SentimentConfig", model.config).text_scheme  # how it reads text

    def encode(self, sentences: Sequence[Sequence[str]]) -> TokenArrays:
        """The network input of tokenised sentences (as :meth:`inputs` gives them)."""
        if self._pieces is not None:
            from models.wordpiece import piece_arrays

            return piece_arrays(sentences, self.words)
        return encode_arrays(sentences, self.words, self.chars)

    @property
    def model(self) -> SentimentModel:
        """The torch model (training, evaluation)."""
        if self._model is None:
            raise _no_torch_model("sentiment predictor")
        return self._model

    def inputs(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens the model reads of each text (an empty list for a text without any)."""
        if self._pieces is not None:
            return self._pieces(texts)
        return [sentiment_words(text, self.scheme) for text in texts]

    def logits(self, batch: TokenBatch | TokenArrays) -> np.ndarray:
        """Label logits ``(batch, num_labels)`` float32 on the CPU, from whichever runs the
        network."""
        if isinstance(self.net, ArraySentiment):
            return self.net.arrays(batch)
        import torch

        with torch.inference_mode():
            out: np.ndarray = self.net(on_device(batch, self.net)).float().cpu().numpy()
        return out

    def classify_tokens(self, sentences: Sequence[Sequence[str]]) -> list[SentimentResult]:
        """Classify pre-tokenised sentences in one batch."""
        logits = self.logits(self.encode(sentences))
        scaled = scale_logits(logits.astype(np.float64), self.temperatures.labels)
        probs = softmax(scaled).tolist()
        results = []
        for row in probs:
            best = max(range(len(row)), key=row.__getitem__)
            scores = {label: float(p) for label, p in zip(self.labels.labels, row, strict=True)}
            results.append(SentimentResult(self.labels.labels[best], float(row[best]), scores))
        return results

    def classify(self, texts: Sequence[str]) -> list[SentimentResult]:
        """Classify raw texts; raises ``ValueError`` for a text with no tokens."""
        token_lists = self.inputs(texts)
        if any(not toks for toks in token_lists):
            raise ValueError("expected every text to contain at least one token")
        return self.classify_tokens(token_lists)
