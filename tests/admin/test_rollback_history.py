"""Rollback is a history, not a toggle: rolling back twice goes two versions back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from admin_support import V1
from sqlalchemy.orm import Session, sessionmaker

from app.errors import NoPreviousVersion
from app.operating.versions import activate_version, rollback_version

pytestmark = pytest.mark.timeout(120)
V2, V3 = "20260101T000000000002Z", "20260101T000000000003Z"


def test_rolling_back_twice_goes_two_versions_back(
    store: Path, sessions: sessionmaker[Session]
) -> None:
    activate_version(sessions, store, "demo", V1)
    for version in (V2, V3):  # same weights, other versions: enough for the pointer
        shutil.copytree(store / "demo" / V1, store / "demo" / version)
    activate_version(sessions, store, "demo", V2)
    pointer = activate_version(sessions, store, "demo", V3)
    assert (pointer.version, pointer.previous_version) == (V3, V2)

    first = rollback_version(sessions, store, "demo")
    assert (first.version, first.previous_version) == (V2, V1)
    second = rollback_version(sessions, store, "demo")
    assert (second.version, second.previous_version) == (V1, None)
    with pytest.raises(NoPreviousVersion):
        rollback_version(sessions, store, "demo")

    # Activating after a rollback starts the history again from there.
    again = activate_version(sessions, store, "demo", V3)
    assert (again.version, again.previous_version) == (V3, V1)
    assert rollback_version(sessions, store, "demo").version == V1
