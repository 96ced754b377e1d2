"""Model store layout: ``<store>/<name>/<version>/`` holds one immutable artifact.

Names and versions are checked here, once, so no caller can build a path that escapes the
store (``..``, absolute paths, symlinks pointing elsewhere).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from models.artifact import MANIFEST

# The patterns as text too: the API's request schemas check names with the same ones.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
VERSION_PATTERN = r"^[0-9]{8}T[0-9]{12}Z$"
NAME_RE = re.compile(NAME_PATTERN)
VERSION_RE = re.compile(VERSION_PATTERN)


def check_name(name: str) -> str:
    """``name`` if it is a valid model or data set name, else ``ValueError``."""
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"invalid name {name!r}: expected lower-case letters, digits, '_' or '-'")
    return name


def new_version() -> str:
    """A sortable, timestamped version id such as ``20261126T171500123456Z``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def inside(root: Path, *parts: str) -> Path:
    """``root/parts...`` resolved, or ``ValueError`` if it is not inside ``root``."""
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise ValueError(f"{'/'.join(parts)!r} escapes {root}")
    return path


def version_dir(store: Path, name: str, version: str) -> Path:
    """Directory of one artifact version."""
    if not VERSION_RE.fullmatch(version):
        raise ValueError(f"invalid version {version!r}")
    return inside(store, check_name(name), version)


def list_models(store: Path) -> list[str]:
    """Names in the store that have at least one complete version."""
    if not store.is_dir():
        return []
    return sorted(
        p.name
        for p in store.iterdir()
        if NAME_RE.fullmatch(p.name) and list_versions(store, p.name)
    )


def list_versions(store: Path, name: str) -> list[str]:
    """Complete versions of ``name`` (those with a manifest), oldest first."""
    folder = inside(store, check_name(name))
    if not folder.is_dir():
        return []
    return sorted(
        p.name
        for p in folder.iterdir()
        if VERSION_RE.fullmatch(p.name) and (p / MANIFEST).is_file()
    )


def latest_version(store: Path, name: str) -> str | None:
    """Newest complete version of ``name``, if any."""
    versions = list_versions(store, name)
    return versions[-1] if versions else None
