"""Fit the bag-of-n-grams intent model (``models.lexical``) that a tagger serves beside its
head when ``SlotTrainConfig.intent_lexical_weight`` is above 0 (an option, off by default:
docs/results/intents.md, "A lexical model beside the head").

scikit-learn fits it (a ``TfidfVectorizer`` per block, ``LogisticRegression`` with L-BFGS:
deterministic, seconds on SNIPS); the temperature is fitted on valid, as the head's.
"""

from __future__ import annotations

import numpy as np

from models.lexical import CHAR_NGRAMS, WORD_NGRAMS, LexicalIntents
from training import distributed
from training.calibration import fit_scale, softmax_nll
from training.config import SlotTrainConfig
from training.data import DataError
from training.tagging import TaggingSet


def fit_lexical_intents(
    train: TaggingSet, valid: TaggingSet, c: float = 10.0
) -> LexicalIntents | None:
    """Fit on ``train``'s utterances (tokens joined by spaces) and single intents, the
    temperature on ``valid``'s; ``None`` when ``train`` has fewer than two intents."""
    from scipy.sparse import hstack  # type: ignore[import-untyped]
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = [" ".join(t) for t in train.tokens]
    labels = ["#".join(i) for i in train.intents]
    if len(set(labels)) < 2:
        return None
    words = TfidfVectorizer(ngram_range=WORD_NGRAMS, token_pattern=r"\S+", sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True)
    x_words, x_chars = words.fit_transform(texts), chars.fit_transform(texts)
    model = LogisticRegression(C=c, max_iter=3000).fit(hstack([x_words, x_chars]).tocsr(), labels)
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # two intents: scikit-learn keeps one row, the second's logit
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-1, 1]) * intercept / 2
    lexical = LexicalIntents(
        labels=[str(name) for name in model.classes_],
        word_index={str(g): int(i) for g, i in words.vocabulary_.items()},
        char_index={str(g): int(i) for g, i in chars.vocabulary_.items()},
        idf=np.concatenate([words.idf_, chars.idf_]),
        coef=coef.T.copy(),
        intercept=intercept,
    )
    lexical.temperature = fit_lexical_temperature(lexical, valid)
    return lexical


def fit_lexical_temperature(lexical: LexicalIntents, valid: TaggingSet) -> float:
    """The temperature minimising the NLL of ``valid``'s intents (one the model lacks: left
    out)."""
    index = {name: j for j, name in enumerate(lexical.labels)}
    gold = np.array([index.get("#".join(i), -1) for i in valid.intents])
    logits = lexical.logits([" ".join(t) for t in valid.tokens])
    return fit_scale(lambda t: softmax_nll(logits, gold, t))


def check_lexical(config: SlotTrainConfig, data: TaggingSet) -> None:
    """Refuse ``intent_lexical_weight`` before any training when ``data`` makes the intent head
    multi-label (``intent_mode``, or ``auto`` with examples of several intents)."""
    if not config.intent_lexical_weight:
        return
    multi = config.intent_mode == "multi_label" or (
        config.intent_mode == "auto" and data.multi_intent
    )
    if multi:
        raise DataError(
            f"{data.source}: intent_lexical_weight needs one intent per example; "
            "these examples have several (a multi-label intent head)"
        )


def fit_lexical(
    train: TaggingSet, valid: TaggingSet, config: SlotTrainConfig
) -> tuple[LexicalIntents, float] | None:
    """The lexical intent model a tagger serves beside its head, and its weight
    (``intent_lexical_weight``); ``None`` where the weight is 0 or the data has fewer than
    two intents (a multi-label head: :func:`check_lexical` refused it before training)."""
    weight = config.intent_lexical_weight
    if not weight or not distributed.is_main():
        return None
    lexical = fit_lexical_intents(train, valid, config.intent_lexical_c)
    return None if lexical is None else (lexical, weight)
