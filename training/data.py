"""Corpus readers: the folder format (seq.in / seq.out / label) and TSV ``text<TAB>label``.

Malformed input stops with a :class:`DataError` naming the file and line. The one defect
repaired instead is an ``I-x`` that does not continue an ``x`` chunk: it becomes ``B-x``,
as conlleval reads it, and the repair is reported, never silent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from models.text import split_whitespace

SLOT_FILES = ("seq.in", "seq.out")
LABEL_FILE = "label"


class DataError(ValueError):
    """A corpus file is malformed; the message names the file and line."""


@dataclass
class SlotDataset:
    """Token sequences with BIO tags and (optionally) one intent per utterance."""

    tokens: list[list[str]]
    tags: list[list[str]]
    intents: list[str] | None
    source: str
    repairs: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class TextDataset:
    """Texts with one class label each."""

    texts: list[str]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file without line endings; bad bytes are reported with their line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8 ({err.reason} at byte {err.start})"
        ) from err
    lines = text.splitlines()
    if not lines or all(not line.strip() for line in lines):
        raise DataError(f"{path}: file is empty")
    return lines


def _check_bio(tags: list[str], path: Path, lineno: int, repairs: list[str]) -> list[str]:
    fixed = []
    prev = "O"
    for i, tag in enumerate(tags):
        if tag != "O" and not (tag.startswith(("B-", "I-")) and len(tag) > 2):
            raise DataError(f"{path}:{lineno}: tag {tag!r} at token {i + 1} is not O, B-x or I-x")
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            repairs.append(
                f"{path}:{lineno}: {tag} at token {i + 1} follows {prev}; read as B-{tag[2:]}"
            )
            tag = "B-" + tag[2:]
        fixed.append(tag)
        prev = tag
    return fixed


def read_slot_folder(folder: Path) -> SlotDataset:
    """Read ``seq.in``, ``seq.out`` and optional ``label`` from ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory with seq.in and seq.out")
    seq_in, seq_out = (folder / name for name in SLOT_FILES)
    in_lines, out_lines = _read_lines(seq_in), _read_lines(seq_out)
    label_path = folder / LABEL_FILE
    label_lines = _read_lines(label_path) if label_path.exists() else None
    for path, lines in ((seq_out, out_lines), (label_path, label_lines)):
        if lines is not None and len(lines) != len(in_lines):
            raise DataError(f"{path}: {len(lines)} lines, but {seq_in} has {len(in_lines)}")
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    repairs: list[str] = []
    for lineno, (line_in, line_out) in enumerate(zip(in_lines, out_lines, strict=True), start=1):
        toks, tgs = split_whitespace(line_in), split_whitespace(line_out)
        if not toks:
            raise DataError(f"{seq_in}:{lineno}: empty utterance")
        if len(toks) != len(tgs):
            raise DataError(
                f"{seq_out}:{lineno}: {len(tgs)} tags for {len(toks)} tokens in {seq_in}"
            )
        tokens.append(toks)
        tags.append(_check_bio(tgs, seq_out, lineno, repairs))
    intents = None
    if label_lines is not None:
        intents = [line.strip() for line in label_lines]
        for lineno, intent in enumerate(intents, start=1):
            if not intent:
                raise DataError(f"{label_path}:{lineno}: empty intent label")
    return SlotDataset(tokens, tags, intents, str(folder), repairs)


def read_tsv(path: Path) -> TextDataset:
    """Read a ``text<TAB>label`` file with that header line and no quoting."""
    path = Path(path)
    lines = _read_lines(path)
    if lines[0].strip().split("\t") != ["text", "label"]:
        raise DataError(f"{path}:1: expected the header 'text<TAB>label', got {lines[0][:60]!r}")
    texts, labels = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # a trailing blank line is not a row
        text, sep, label = line.rpartition("\t")
        if not sep or not text.strip() or not label.strip():
            raise DataError(f"{path}:{lineno}: expected 'text<TAB>label', got {line[:60]!r}")
        texts.append(text.strip())
        labels.append(label.strip())
    if not texts:
        raise DataError(f"{path}: no rows after the header")
    return TextDataset(texts, labels, str(path))


def fingerprint(*paths: Path) -> dict[str, str]:
    """SHA-256 of every data file, recorded in the artifact."""
    out = {}
    for path in paths:
        files = (
            sorted(p for p in Path(path).rglob("*") if p.is_file())
            if Path(path).is_dir()
            else [Path(path)]
        )
        for f in files:
            out[str(f.name if len(files) == 1 else f.relative_to(Path(path).parent))] = (
                hashlib.sha256(f.read_bytes()).hexdigest()
            )
    return out


def batches(n: int, size: int, order: list[int]) -> Iterator[list[int]]:
    """Index batches over a (shuffled) order."""
    for i in range(0, n, size):
        yield order[i : i + size]
