"""App fixtures: a model store of the real tiny artifacts, migrated log databases, clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from app_support import MakeSettings, build_store, migrate, settings_factory
from fastapi.testclient import TestClient

from app.main import create_app


@pytest.fixture(scope="session")
def model_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_tagger_dir: Path, tiny_sentiment_dir: Path
) -> Path:
    """A read-only store shared by the session; copy it before changing anything in it."""
    return build_store(tmp_path_factory.mktemp("store"), tiny_tagger_dir, tiny_sentiment_dir)


@pytest.fixture(scope="module")
def module_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite log database shared by one test module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'log.db'}"
    migrate(url)
    return url


@pytest.fixture
def make_settings(model_store: Path, tmp_path: Path) -> MakeSettings:
    """``make_settings(**overrides)``: settings on the shared store and a migrated SQLite DB."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    return settings_factory(model_store, url, tmp_path / "spill")


@pytest.fixture(scope="module")
def client(
    model_store: Path, module_sqlite_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One started app per module, for tests that only read (parse, list, errors)."""
    settings = settings_factory(model_store, module_sqlite_url, tmp_path_factory.mktemp("spill"))
    with TestClient(create_app(settings())) as test_client:
        yield test_client
