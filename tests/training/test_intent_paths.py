"""The intent head's optional direct paths (issue 19): a wide bag-of-n-grams term and label
attention are trained, stored in the artifact, served the same after loading, by either
engine; without them a model has exactly the parameters it had before."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from models.artifact import load_artifact
from models.engine import NumpyTagger
from models.features import encode_tokens
from models.predictor import SlotTaggerPredictor
from models.slot_tagger import BiLSTMCRFTagger, TaggerConfig
from training.config import SlotTrainConfig
from training.pipeline import train_folder

TEXTS = ["book a table for two at 7pm tomorrow", "hello there", "my flight was delayed"]


def test_without_the_options_the_parameters_are_the_old_ones() -> None:
    config = TaggerConfig(vocab_size=10, char_vocab_size=5, num_tags=3, num_intents=2)
    names = {n for n, _ in BiLSTMCRFTagger(config).named_parameters()}
    assert not any(
        n.startswith(("wide_", "intent_queries", "intent_values", "token_intent")) for n in names
    )


@pytest.mark.usefixtures("float32_weights")  # held to torch to float32 rounding
def test_wide_term_and_label_attention_train_save_and_serve(
    tiny_train_config: dict[str, Any], test_data_dir: Path, tmp_path: Path
) -> None:
    config = SlotTrainConfig(
        **{
            **tiny_train_config,
            "intent_wide_buckets": 64,
            "intent_label_attention": True,
            "intent_token_votes": True,
        }
    )
    out = train_folder("slots", test_data_dir / "tiny_slots", config, tmp_path / "a").artifact
    assert out is not None
    predictor = load_artifact(out).predictor
    assert isinstance(predictor, SlotTaggerPredictor)
    model = predictor.model
    assert model.config.intent_wide_buckets == 64 and model.config.intent_label_attention
    assert model.wide_words is not None and model.intent_values is not None
    assert model.token_intent is not None
    # Both started at zero; training moved them.
    assert float(model.wide_words.weight.detach().abs().sum()) > 0
    assert float(model.intent_values.detach().abs().sum()) > 0
    # The wide term reads training words only: one row per trained word.
    assert model.wide_words.num_embeddings == model.embedder.trained_words
    batch = encode_tokens([t.split() for t in TEXTS], predictor.words, predictor.chars)
    with torch.inference_mode():
        want = model(batch)[1]
    torch.testing.assert_close(NumpyTagger(model)(batch)[1], want, atol=1e-5, rtol=1e-5)
    again = load_artifact(out).predictor
    assert isinstance(again, SlotTaggerPredictor)
    assert again.parse(TEXTS) == predictor.parse(TEXTS)


def test_token_votes_train_every_token_towards_the_utterance_intent() -> None:
    config = TaggerConfig(
        vocab_size=10, char_vocab_size=5, num_tags=3, num_intents=2, intent_token_votes=True
    )
    model = BiLSTMCRFTagger(config)
    token_ids = torch.tensor([[2, 3, 4], [5, 6, 0]])
    mask = token_ids > 0
    model.token_intent_logits = torch.zeros(2, 3, 2)
    model.token_intent_logits[0, :, 1] = 5.0  # utterance 0: every token sure of intent 1
    model.token_intent_logits[1, 2] = torch.tensor([-50.0, 50.0])  # padding: ignored
    loss = model.token_vote_loss(mask, torch.tensor([1, 0]))
    # 3 confident right tokens, 2 undecided ones (log 2 each), averaged over the 5 tokens.
    right = float(torch.nn.functional.cross_entropy(torch.tensor([[0.0, 5.0]]), torch.tensor([1])))
    assert float(loss) == pytest.approx((3 * right + 2 * math.log(2)) / 5, rel=1e-5)
    with pytest.raises(ValueError, match="single-label"):
        TaggerConfig(
            vocab_size=10,
            char_vocab_size=5,
            num_tags=3,
            num_intents=2,
            intent_token_votes=True,
            multi_label=True,
        )
