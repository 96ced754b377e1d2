"""Training data sets: folders under ``SLOTFILL_DATA_DIR`` (plus the bundled demo data), looked
up by plain name only."""

from __future__ import annotations

import contextlib
from pathlib import Path

from app.config import Settings
from app.errors import DatasetNotFound
from models.store import check_name, inside


def _task_folder(folder: Path, task: str) -> Path | None:
    """The folder holding ``task``'s splits in data set ``folder``, if it has them."""
    if task == "slots":
        ok = all((folder / split / "seq.in").is_file() for split in ("train", "valid"))
        return folder if ok else None
    for candidate in (folder, folder / "sentiment"):
        if all((candidate / f"{split}.tsv").is_file() for split in ("train", "valid")):
            return candidate
    return None


def _dataset_roots(settings: Settings, name: str) -> list[Path]:
    """Folders the data set ``name`` may be: ``<data_dir>/<name>``, and the bundled demo data
    for ``demo``. ``ValueError`` for a name that is not a plain name or escapes the folder."""
    check_name(name)
    roots = [inside(settings.data_dir, name)]
    if name == "demo":
        roots.append(settings.demo_data_dir.resolve())
    return roots


def available_datasets(settings: Settings, task: str) -> list[str]:
    """Names of the data sets that have ``task``'s splits."""
    names = {"demo"} if _task_folder(settings.demo_data_dir, task) else set()
    if settings.data_dir.is_dir():
        for folder in settings.data_dir.iterdir():
            with contextlib.suppress(ValueError):
                if any(_task_folder(r, task) for r in _dataset_roots(settings, folder.name)):
                    names.add(folder.name)
    return sorted(names)


def resolve_dataset(settings: Settings, name: str, task: str) -> Path:
    """Folder of ``task``'s splits of data set ``name``; ``DatasetNotFound`` if there is none.

    Only plain names (``^[a-z0-9][a-z0-9_-]*$``) inside the data directory are looked up;
    ``..``, absolute paths and symlinks that lead outside it are rejected.
    """
    try:
        roots = _dataset_roots(settings, name)
    except ValueError as err:
        raise DatasetNotFound(f"invalid data set name: {err}") from err
    for root in roots:
        found = _task_folder(root, task)
        if found is not None:
            return found
    available = ", ".join(available_datasets(settings, task)) or "none"
    raise DatasetNotFound(
        f"no {task} data set named '{name}' in the data directory; available: {available}"
    )
