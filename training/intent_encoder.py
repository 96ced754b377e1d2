"""A pretrained encoder fine-tuned for a tagger's intents (``SlotTrainConfig.intent_encoder``).

The BiLSTM-CRF keeps the slots; the intents are a blend (``intent_encoder_weight``) of its
head's and those of the encoder classifier that the sentiment trainer fine-tunes
(``--pretrained-encoder``, models.transformer), trained here on the tagging set's utterances
and intent labels with the same fine-tuning defaults. On SNIPS
the tagger's errors are ``SearchCreativeWork`` against ``SearchScreeningEvent``, which the
training set's words alone do not separate and a pretrained encoder's reading of them does
(docs/results/intents.md, ``benchmarks.intent_encoder_probe``).
"""

from __future__ import annotations

from models.predictor import SentimentPredictor
from training.calibration import calibrate_sentiment
from training.config import SentimentTrainConfig, SlotTrainConfig
from training.data import DataError, TextDataset
from training.loop import EpochCallback, FitResult, fit_sentiment
from training.tagging import TaggingSet


def intent_texts(data: TaggingSet, name: str, known: set[str] | None = None) -> TextDataset:
    """``data``'s utterances (tokens joined by spaces) and their one intent each; with
    ``known``, only the examples whose intent is in it (a valid intent the training split
    lacks cannot be predicted, nor calibrated on)."""
    texts, labels = [], []
    for tokens, intents in zip(data.tokens, data.intents, strict=True):
        if len(intents) != 1:
            raise DataError(
                f"{data.source}: intent_encoder needs exactly one intent per example, "
                f"got {list(intents)} for {' '.join(tokens)[:60]!r}"
            )
        if known is None or intents[0] in known:
            texts.append(" ".join(tokens))
            labels.append(intents[0])
    return TextDataset(texts, labels, name)


def encoder_config(config: SlotTrainConfig) -> SentimentTrainConfig:
    """The fine-tuning config: the encoder's defaults (FINE_TUNING_DEFAULTS), with the
    tagger config's seed, threads, device and time limit."""
    return SentimentTrainConfig(
        pretrained_encoder=config.intent_encoder,
        seed=config.seed,
        threads=config.threads,
        device=config.device,
        max_minutes=config.max_minutes,
    )


def fit_intent_encoder(
    train: TaggingSet,
    valid: TaggingSet,
    config: SlotTrainConfig,
    on_epoch: EpochCallback | None = None,
    show_progress: bool = False,
) -> tuple[FitResult, dict[str, float]]:
    """Fine-tune ``config.intent_encoder`` on ``train``'s intents, early-stopped on
    ``valid``'s, its temperature fitted on them; the fit and the valid ECEs."""
    if not config.intent_encoder:
        raise ValueError("the config names no intent_encoder")
    train_t = intent_texts(train, f"{train.source} intents")
    valid_t = intent_texts(valid, f"{valid.source} intents", set(train_t.labels))
    if not valid_t.texts:
        raise DataError(f"{valid.source}: no valid example has an intent of the training split")
    fitted = fit_sentiment(train_t, valid_t, encoder_config(config), on_epoch, show_progress)
    if not isinstance(fitted.predictor, SentimentPredictor):
        raise TypeError("the intent encoder's fit gave no text classifier")
    return fitted, calibrate_sentiment(fitted.predictor, valid_t)
