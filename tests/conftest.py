"""Fixtures shared by every test directory.

``tiny_tagger_dir`` and ``tiny_sentiment_dir`` are real artifacts (``manifest.json`` +
``model.safetensors``) trained once per session from ``tests/data/`` with tiny settings
(hidden size 16, 3 epochs, one thread: about a second each). They are shared: treat them as
read-only and copy one (``shutil.copytree``) before corrupting it. The tiny tagger does
predict some slots (e.g. ``party_size`` for "two" in "book a table for two at 7pm"), but
its scores mean nothing beyond "a trained model loads and runs".

``pg_database`` is a throwaway PostgreSQL database (``slotfill_test_<hex>``) on
127.0.0.1:5432, created for the session and dropped after it; ``pg_schema_url`` is a fresh,
empty schema in it per test. Without a reachable server these tests are skipped locally and
fail when the ``CI`` environment variable is set.

Torch runs single-threaded (``OMP_NUM_THREADS=1`` unless set): the tensors in tests are tiny,
and on a busy machine thread hand-offs made small CRF calls 40 times slower.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from benchmarks.servers import scratch_database
from models import native

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before anything imports torch

TEST_DATA = Path(__file__).resolve().parent / "data"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_URL = URL.create(
    "postgresql+psycopg", username="postgres", host=PG_HOST, port=PG_PORT, database="postgres"
)


# What a server selects by default: the compiled kernels where built, half-precision
# recurrent weights (app.config.Settings).
NATIVE_BASELINE: tuple[native.Kernels, native.Recurrent] = (native.selected()[0], "float16")


@pytest.fixture(autouse=True)
def _baseline_native_selection() -> Iterator[None]:
    """The engine's loops and recurrent precision are process-wide and a server's start-up
    selects them: every test starts from what a default server selects and leaves it so, so
    that an app of a module-scoped fixture and the tests after it agree."""
    native.select(*NATIVE_BASELINE)
    yield
    native.select(*NATIVE_BASELINE)


@pytest.fixture
def float32_weights() -> None:
    """The artifact's own recurrent weights, for a test that holds the numpy engine to torch
    to float32 rounding (the halves are held to the serving rule in test_engine.py)."""
    native.select(NATIVE_BASELINE[0], "float32")


# Small and fast on one core; lr is high so that 3 epochs learn something.
TINY_TRAIN_CONFIG: dict[str, Any] = {
    "epochs": 3,
    "hidden_size": 16,
    "word_dim": 16,
    "char_dim": 8,
    "char_filters": 8,
    "batch_size": 8,
    "lr": 0.02,
    "threads": 1,
    "device": "cpu",
    "seed": 13,
    # 3 epochs of a few steps each: an average over ~100 steps would still be mostly the
    # random initialisation.
    "ema_decay": None,
    # The real GloVe vectors, as by default, but only 200 words beyond the training ones.
    "pretrained_words": 200,
}


@pytest.fixture
def tiny_train_config() -> dict[str, Any]:
    """A copy of the tiny training settings the shared artifacts use."""
    return dict(TINY_TRAIN_CONFIG)


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    """``tests/data``: ``tiny_slots/``, ``tiny_sentiment/``, ``malformed/``."""
    return TEST_DATA


@pytest.fixture(scope="session")
def tiny_tagger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact directory (task ``slots``) of a tagger trained on ``tests/data/tiny_slots``."""
    from training.config import SlotTrainConfig
    from training.pipeline import train_folder

    out = tmp_path_factory.mktemp("artifacts") / "tiny_tagger"
    # The API tests read this tagger's slots ("7pm" a time, "tomorrow" a date); after 3
    # epochs with label attention and token votes (the defaults) it reads "7pm tomorrow" as
    # one time. Both have tests of their own (tests/training/test_intent_paths.py,
    # tests/models/test_engine.py).
    config = SlotTrainConfig(
        **TINY_TRAIN_CONFIG, intent_label_attention=False, intent_token_votes=False
    )
    artifact = train_folder("slots", TEST_DATA / "tiny_slots", config, out).artifact
    assert artifact is not None
    return artifact


@pytest.fixture(scope="session")
def tiny_sentiment_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact directory (task ``sentiment``) trained on ``tests/data/tiny_sentiment``."""
    from training.config import SentimentTrainConfig
    from training.pipeline import train_folder

    out = tmp_path_factory.mktemp("artifacts") / "tiny_sentiment"
    config = SentimentTrainConfig(**TINY_TRAIN_CONFIG)
    artifact = train_folder("sentiment", TEST_DATA / "tiny_sentiment", config, out).artifact
    assert artifact is not None
    return artifact


# The slot types each tiny intent takes (tests/data/tiny_slots), as a tagger trained on more
# examples an intent records them (models.joint).
TINY_INTENT_SLOTS: dict[str, list[str]] = {
    "book_restaurant": ["date", "party_size", "time"],
    "complaint": ["issue", "to_city"],
    "greet": [],
}


@pytest.fixture(scope="session")
def joint_tagger_dir(tiny_tagger_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny tagger (its 15-25 examples an intent are below ``intent_slot_min_examples``,
    so it reads intents and slots apart) with :data:`TINY_INTENT_SLOTS` in its manifest: the
    same weights, reading them together."""
    import json
    import shutil

    out = tmp_path_factory.mktemp("joint") / "tagger"
    shutil.copytree(tiny_tagger_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_config"]["intent_slot_fit"] == 1.0
    manifest["intent_slots"] = TINY_INTENT_SLOTS
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def _pg_unavailable(reason: str) -> None:
    message = f"PostgreSQL at {PG_HOST}:{PG_PORT} (user postgres) is not usable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[URL]:
    """URL of a database created for this test session and dropped after it."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(PG_ADMIN_URL, "slotfill_test"))
        except OperationalError as exc:
            _pg_unavailable(str(exc.orig).strip().splitlines()[0])
        yield url


@pytest.fixture
def pg_schema_url(pg_database: URL) -> str:
    """URL (as a string) of a new empty schema in ``pg_database``, first on its search_path."""
    schema = f"t_{secrets.token_hex(6)}"
    engine = create_engine(pg_database, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    url = pg_database.set(query={"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)
