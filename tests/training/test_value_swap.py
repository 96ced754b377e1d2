"""Slot-value substitution (issue 19, ``slot_value_swap``): a span is replaced by another
training value of its own type, the tags stay well-formed BIO, the draws follow the seed,
and a model trains with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.predictor import bio_spans
from training.config import SlotTrainConfig
from training.pipeline import train_folder
from training.value_swap import ValueSwapper

TOKENS = [
    t.split()
    for t in (
        "book a table for two at 7pm",
        "book a table for four people at noon",
        "play the white album by the beatles",
        "play abbey road",
    )
]
TAGS = [
    ["O", "O", "O", "O", "B-party", "O", "B-time"],
    ["O", "O", "O", "O", "B-party", "I-party", "O", "B-time"],
    ["O", "B-album", "I-album", "I-album", "O", "B-artist", "I-artist"],
    ["O", "B-album", "I-album"],
]


def values_of(tokens: list[str], tags: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.slot, tuple(tokens[s.first : s.last + 1])) for s in bio_spans(tags)]


def test_rate_zero_keeps_every_example() -> None:
    swap = ValueSwapper(TOKENS, TAGS, 0.0, seed=1)
    for tokens, tags in zip(TOKENS, TAGS, strict=True):
        assert swap(tokens, tags) == (tokens, tags)


def test_every_span_takes_a_training_value_of_its_own_type() -> None:
    swap = ValueSwapper(TOKENS, TAGS, 1.0, seed=1)
    pool = {
        (slot, value) for t, g in zip(TOKENS, TAGS, strict=True) for slot, value in values_of(t, g)
    }
    changed = 0
    for _ in range(50):
        for tokens, tags in zip(TOKENS, TAGS, strict=True):
            words, out = swap(tokens, tags)
            assert len(words) == len(out)
            assert [s.slot for s in bio_spans(out)] == [s.slot for s in bio_spans(tags)]
            assert all(v in pool for v in values_of(words, out))
            # the words around the spans are the example's own
            assert [w for w, t in zip(words, out, strict=True) if t == "O"] == [
                w for w, t in zip(tokens, tags, strict=True) if t == "O"
            ]
            assert all(t == "O" or t[:2] in ("B-", "I-") for t in out)
            assert all(out[s.first].startswith("B-") for s in bio_spans(out))
            changed += words != tokens
    assert changed > 0  # "artist" has one value only: never swapped, the others are


def test_the_draws_follow_the_seed() -> None:
    def draws(seed: int) -> list[tuple[list[str], list[str]]]:
        swap = ValueSwapper(TOKENS, TAGS, 0.5, seed=seed)
        return [swap(t, g) for _ in range(20) for t, g in zip(TOKENS, TAGS, strict=True)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_a_stray_inside_tag_is_kept_as_it_was() -> None:
    swap = ValueSwapper(TOKENS, TAGS, 1.0, seed=1)
    tokens, tags = ["at", "noon", "sharp"], ["O", "I-time", "I-time"]
    assert swap(tokens, tags) == (tokens, tags)


def test_a_tagger_trains_with_it(
    tiny_train_config: dict[str, Any], test_data_dir: Path, tmp_path: Path
) -> None:
    config = SlotTrainConfig(**{**tiny_train_config, "slot_value_swap": 0.5})
    result = train_folder("slots", test_data_dir / "tiny_slots", config, tmp_path / "a")
    assert result.artifact is not None and (result.artifact / "manifest.json").exists()
