"""Training data formats: every reader yields :class:`Example` objects (text, character
spans, intents, requested slots) for a folder holding a train and a valid split.

========  ==================================================================
format    folder holds
========  ==================================================================
bio       ``train/`` and ``valid/`` with ``seq.in``, ``seq.out``, ``label``
nlupp     ``train.json`` and ``valid.json``: NLU++ lists
dstc8     ``train.json`` and ``valid.json``: PolyAI span-extraction lists
jsonl     ``train.jsonl`` and ``valid.jsonl``: slotfill's JSON lines (README)
rasa      ``train.yml`` and ``valid.yml``, or any ``*.yml`` (a split is made)
========  ==================================================================
"""

from __future__ import annotations

from pathlib import Path

from training.data import DataError
from training.formats.bio import read_bio, read_bio_split
from training.formats.example import FORMATS, DataSplits, Example, SlotSpan
from training.formats.rasa import rasa_files, read_rasa, read_rasa_files
from training.formats.spanjson import load_json_list, read_json_examples

__all__ = [
    "FORMATS",
    "DataError",
    "DataSplits",
    "Example",
    "SlotSpan",
    "detect_format",
    "read_data",
    "read_split",
]


def json_kind(path: Path) -> str:
    """``dstc8`` or ``nlupp``, from the first example of a JSON list."""
    items = load_json_list(path)
    first = items[0] if items else None
    if isinstance(first, dict) and "userInput" in first:
        return "dstc8"
    if isinstance(first, dict) and "text" in first:
        return "nlupp"
    raise DataError(
        f"{path}: example 1 is neither NLU++ ('text') nor DSTC8 ('userInput'); pass --format"
    )


def detect_format(folder: Path) -> str:
    """The format of a data folder, from the files it holds."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    if (folder / "train" / "seq.in").is_file():
        return "bio"
    if (folder / "train.jsonl").is_file():
        return "jsonl"
    if (folder / "train.json").is_file():
        return json_kind(folder / "train.json")
    if rasa_files(folder):
        return "rasa"
    raise DataError(
        f"{folder}: unknown data format: expected train/ and valid/ BIO folders, "
        "train.json/valid.json (NLU++, DSTC8), train.jsonl/valid.jsonl or Rasa *.yml"
    )


def read_data(folder: Path, fmt: str | None = None, split_intents: bool = False) -> DataSplits:
    """Read ``folder`` in ``fmt`` (``None``: detected). ``split_intents``: BIO ``a#b`` labels
    are two intents (multi-label training) instead of one label."""
    folder = Path(folder)
    fmt = fmt or detect_format(folder)
    if fmt not in FORMATS:
        raise DataError(f"{folder}: unknown format {fmt!r}; expected one of {FORMATS}")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    if fmt == "bio":
        return read_bio(folder, split_intents)
    if fmt == "rasa":
        return read_rasa(folder)
    suffix = ".jsonl" if fmt == "jsonl" else ".json"
    train, valid = folder / f"train{suffix}", folder / f"valid{suffix}"
    return DataSplits(
        fmt, read_json_examples(train, fmt), read_json_examples(valid, fmt), [train], [valid]
    )


def read_split(
    path: Path, fmt: str | None = None, split_intents: bool = False
) -> tuple[str, list[Example], list[str]]:
    """(format, examples, notes) to score a model on: a BIO split folder (``seq.in``...),
    a data folder (its valid split), or one file (``.json``, ``.jsonl``, ``.yml``: all of
    its examples)."""
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"{path}: unknown format {fmt!r}; expected one of {FORMATS}")
    if path.is_dir():
        if (path / "seq.in").is_file() and fmt in (None, "bio"):
            examples, notes = read_bio_split(path, split_intents)
            return "bio", examples, notes
        data = read_data(path, fmt, split_intents)
        return data.format, data.valid, data.notes
    if not path.is_file():
        raise DataError(f"{path}: no such file or directory")
    if fmt is None:
        kinds = {".jsonl": "jsonl", ".yml": "rasa", ".yaml": "rasa"}
        fmt = kinds.get(path.suffix) or (json_kind(path) if path.suffix == ".json" else None)
    if fmt == "rasa":
        examples, _, extra = read_rasa_files([path])
        return fmt, examples, extra["notes"]
    if fmt in ("nlupp", "dstc8", "jsonl"):
        return fmt, read_json_examples(path, fmt), []
    raise DataError(
        f"{path}: unknown data format: expected a BIO folder, a data folder, "
        "or a .json, .jsonl or .yml file"
    )
