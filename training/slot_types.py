"""The slot types a model is trained with: ``slots.yaml`` in the data folder, else the gold
values of the training examples, else a guess from the slot's name (warned about)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from models.values.schema import SlotSpec, build_schema, parse_schema, schema_to_json
from training.data import DataError

SCHEMA_FILE = "slots.yaml"


def read_slots_yaml(folder: Path) -> dict[str, SlotSpec]:
    """``folder/slots.yaml`` if there is one (else no declarations); DataError when bad."""
    path = Path(folder) / SCHEMA_FILE
    if not path.is_file():
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        return parse_schema(document)
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: {message}") from None


def gold_pairs(examples: Iterable[Any]) -> dict[str, list[tuple[str, Any]]]:
    """Slot -> ``(text, gold value)`` of every span that carries a value (``Example`` objects
    of ``training.formats``: ``text`` and ``spans`` with ``start``, ``end``, ``slot``,
    ``value``)."""
    pairs: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for example in examples:
        for span in example.spans:
            if span.value is not None:
                pairs[span.slot].append((example.text[span.start : span.end], span.value))
    return dict(pairs)


def slot_schema(
    folder: Path,
    slots: Sequence[str],
    examples: Iterable[Any] = (),
    synonyms: Mapping[str, str] | None = None,
) -> tuple[dict[str, SlotSpec], list[str]]:
    """Every slot's spec, and warnings for types guessed from names.

    ``synonyms`` (surface text -> canonical value, as Rasa's ``synonym:`` items give) join the
    table of each category slot that has that canonical value.
    """
    specs, warnings = build_schema(slots, read_slots_yaml(folder), gold_pairs(examples))
    for slot, spec in specs.items():
        if spec.synonyms and synonyms:
            table = {k: set(v) for k, v in spec.synonyms.items()}
            for surface, canonical in synonyms.items():
                if canonical in table and surface != canonical:
                    table[canonical].add(surface)
            merged = {k: tuple(sorted(v)) for k, v in table.items()}
            specs[slot] = SlotSpec(spec.type, spec.source, spec.bound, merged)
    return specs, warnings


def slot_names(tag_rows: Iterable[Sequence[str]]) -> list[str]:
    """The slots of BIO tag sequences (``B-time`` -> ``time``)."""
    return sorted({tag[2:] for row in tag_rows for tag in row if tag[:2] in ("B-", "I-")})


def folder_slot_types(
    folder: Path,
    slots: Sequence[str],
    examples: Iterable[Any] | None = None,
    synonyms: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The manifest's ``slot_types`` for a training folder, and one warning naming every type
    guessed from a slot's name. ``examples`` (the training split, with gold values where the
    format has them) and ``synonyms`` as a reader gave them; None: read the folder."""
    if examples is None:
        from training.formats import read_data

        splits = read_data(folder)
        examples, synonyms = splits.train, splits.synonyms
    specs, _ = slot_schema(folder, slots, examples, synonyms)
    guessed = {slot: spec.type.value for slot, spec in specs.items() if spec.source == "name"}
    warnings = []
    if guessed:
        where = (
            f"{folder / SCHEMA_FILE} has no type for them"
            if (folder / SCHEMA_FILE).is_file()
            else f"no {SCHEMA_FILE} in {folder}"
        )
        warnings.append(
            f"slot types guessed from slot names ({where}, no gold values): "
            + ", ".join(f"{slot}={kind}" for slot, kind in sorted(guessed.items()))
        )
    return schema_to_json(specs), warnings
