"""A worker's version poll must not undo an activation or rollback made in that worker after
the poll read the active pointers (the poll would swap the version it read back in, and serve
it until its next poll: the console's browser test once got the rolled-back version)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import migrate

from app.db import make_engine, make_session_factory
from app.operating import versions
from app.operating.versions import Sessions, VersionPoller, activate_version
from app.serving.registry import ModelRegistry

OLD, NEW = "20260101T000000000001Z", "20260101T000000000002Z"


@pytest.fixture
def two_versions(tmp_path: Path, tiny_tagger_dir: Path) -> Path:
    store = tmp_path / "store"
    for version in (OLD, NEW):
        shutil.copytree(tiny_tagger_dir, store / "tiny" / version)
    return store


@pytest.fixture
def serving_old(two_versions: Path, tmp_path: Path) -> Iterator[tuple[ModelRegistry, Sessions]]:
    """A worker's registry serving ``tiny@OLD``, the active version in a fresh database."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    registry = ModelRegistry(two_versions, "tiny", ["tiny"], None, engine="numpy")
    registry.load_all({"tiny": OLD})
    activate_version(sessions, two_versions, "tiny", OLD, registry)
    yield registry, sessions
    engine.dispose()


def test_a_poll_that_read_the_pointers_before_a_rollback_does_not_undo_it(
    serving_old: tuple[ModelRegistry, Sessions],
    two_versions: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, sessions = serving_old
    activate_version(sessions, two_versions, "tiny", NEW, registry)
    assert registry.get("tiny").version == NEW
    poller = VersionPoller(registry, sessions, period_s=60, stale_s=60)

    real = versions.list_pointers

    def read_then_roll_back(session: Any) -> Any:
        found = real(session)  # the pointer still says NEW
        versions.rollback_version(sessions, two_versions, "tiny", registry)  # an admin call
        assert registry.get("tiny").version == OLD
        return found

    monkeypatch.setattr(versions, "list_pointers", read_then_roll_back)
    poller.poll_once()
    assert registry.get("tiny").version == OLD
    monkeypatch.setattr(versions, "list_pointers", real)
    poller.poll_once()  # reads the pointer again: OLD, nothing to do
    assert registry.get("tiny").version == OLD


def test_a_poll_follows_a_pointer_moved_by_another_worker(
    serving_old: tuple[ModelRegistry, Sessions], two_versions: Path
) -> None:
    registry, sessions = serving_old
    activate_version(sessions, two_versions, "tiny", NEW)  # another worker: no registry
    assert registry.get("tiny").version == OLD
    generation = registry.generation
    VersionPoller(registry, sessions, period_s=60, stale_s=60).poll_once()
    assert registry.get("tiny").version == NEW
    assert registry.generation == generation + 1
