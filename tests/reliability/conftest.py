"""Reliability tests: fuzzing, load with a database outage, SIGTERM, backpressure, nasty inputs,
secrets. They run a real ``slotfill serve`` (uvicorn) against 127.0.0.1 only.

Sizes: the tests run scaled down in ``make test``; their full sizes are marked ``stress`` and
run only when the ``-m`` expression names ``stress`` (``make stress`` runs everything here).

Figures: tests record what they measured with the ``figures`` fixture; the terminal summary
prints them as a table, and ``build/reliability-figures.json`` keeps them.
"""

from __future__ import annotations

import gc
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Reuse the app and admin tests' helpers (store layout, migrations, settings, waiting for
# jobs) instead of copying them.
for _helpers in ("app", "admin"):
    _path = str(Path(__file__).resolve().parents[1] / _helpers)
    if _path not in sys.path:
        sys.path.append(_path)

from app_support import build_store, migrate  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
FIGURES_FILE = REPO_ROOT / "build" / "reliability-figures.json"
_FIGURES = pytest.StashKey[dict[str, dict[str, Any]]]()


@pytest.fixture(autouse=True)
def _collect_what_the_test_left() -> Iterator[None]:
    """Collect garbage as each test ends. A socket or transport a test (or the in-process
    server it runs) leaves open warns when it is collected, and pytest makes that an error
    of whichever test is running then: collected here, it is the error of the test that
    left it (CI at b0086fa blamed the next test, in another file)."""
    yield
    gc.collect()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FIGURES] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the full-size (``stress``) tests unless ``-m`` asks about them."""
    if "stress" in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("stress") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class Figures:
    """``figures.record("fault run (1,000 @ 16)", sent=..., failed=...)``."""

    def __init__(self, store: dict[str, dict[str, Any]]) -> None:
        self._store = store

    def record(self, section: str, **values: Any) -> None:
        self._store.setdefault(section, {}).update(values)


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    return Figures(pytestconfig.stash[_FIGURES])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    found = config.stash.get(_FIGURES, {})
    if not found:
        return
    FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    FIGURES_FILE.write_text(json.dumps(found, indent=2, default=str) + "\n")
    terminalreporter.section("reliability figures")
    width = max(len(k) for values in found.values() for k in values)
    for section in sorted(found):
        terminalreporter.write_line(section)
        for key, value in found[section].items():
            terminalreporter.write_line(f"  {key:<{width}}  {value}")
    terminalreporter.write_line(f"(also in {FIGURES_FILE.relative_to(REPO_ROOT)})")


@pytest.fixture(scope="session")
def reliability_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_tagger_dir: Path, tiny_sentiment_dir: Path
) -> Path:
    """``tiny``, ``tiny2`` and ``tiny-sentiment`` (real tiny artifacts); read-only."""
    return build_store(tmp_path_factory.mktemp("store"), tiny_tagger_dir, tiny_sentiment_dir)


@pytest.fixture
def pg_log_url(pg_schema_url: str) -> str:
    """A fresh PostgreSQL schema, migrated with alembic like a deployment."""
    migrate(pg_schema_url)
    return pg_schema_url


@pytest.fixture
def admin_secret() -> str:
    """A random admin token: it must never show up in a log or a stored row."""
    return f"s3cret-{secrets.token_hex(16)}"


from admin_support import queue_name  # noqa: E402, F401  (fixture shared with the other suite)
