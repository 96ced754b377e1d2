"""Dynamic int8 quantisation of a slot tagger for serving (``SLOTFILL_QUANTIZE=int8``).

The recurrent and linear layers keep int8 weights and quantise their inputs per call; the
embeddings, the character CNN and the CRF stay float32. Checked against the float model in
``tests/models/test_quantize.py`` (same tags on >= 99.5% of valid utterances, slot F1 within
0.002); measured in ``benchmarks.profile_parse --quantize int8``.
"""

from __future__ import annotations

import copy
import warnings
from typing import Literal, cast

import torch
from torch import nn

from models.predictor import SlotTaggerPredictor
from models.slot_tagger import BiLSTMCRFTagger

QuantizeMode = Literal["none", "int8"]


def quantized_tagger(predictor: SlotTaggerPredictor) -> SlotTaggerPredictor:
    """A copy of ``predictor`` with int8 LSTM/GRU and linear layers; ``predictor`` is left as
    it is."""
    # torch.ao.quantization is deprecated in favour of torchao, whose dynamic int8 covers
    # linear layers only; for the LSTMs the torch API is still the one there is.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", ".*quantize_per_tensor.*", UserWarning)
        model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            copy.deepcopy(predictor.model), {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8
        )
    quantized = SlotTaggerPredictor(
        cast(BiLSTMCRFTagger, model),
        predictor.words,
        predictor.chars,
        predictor.tags,
        predictor.intents,
        predictor.requested,
        predictor.synonyms,
        predictor.temperatures,
        predictor.intent_slots,
    )
    if predictor.intent_classifier is not None:  # the tagger's network only is quantised
        quantized.attach_intent_classifier(
            predictor.intent_classifier, predictor.intent_classifier_weight
        )
    if predictor.lexical is not None:
        quantized.attach_lexical(predictor.lexical, predictor.lexical_weight)
    return quantized


def for_serving(predictor: SlotTaggerPredictor, mode: QuantizeMode) -> SlotTaggerPredictor:
    """``predictor`` as ``mode`` says: unchanged (``none``) or :func:`quantized_tagger`."""
    return quantized_tagger(predictor) if mode == "int8" else predictor
