"""A model's slot value resolver: its slot types (from the artifact's manifest) with their
synonym tables built once, resolving each predicted slot for its type."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from models.values.reference import Reference
from models.values.resolve import resolve
from models.values.schema import SlotSpec, schema_from_json
from models.values.synonyms import Synonyms
from models.values.temporal import on_day
from models.values.types import (
    DateTimeValue,
    DateValue,
    IntervalValue,
    Normalized,
    TextValue,
    ValueType,
)

MANIFEST_KEY = "slot_types"


class SlotValueResolver:
    """Resolves ``(slot, text)`` pairs; a slot the model has no type for resolves to None."""

    def __init__(self, specs: Mapping[str, SlotSpec]) -> None:
        self.specs = dict(specs)
        self._synonyms: dict[str, Synonyms | None] = {
            slot: spec.synonym_table() for slot, spec in self.specs.items()
        }

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> SlotValueResolver:
        """From ``manifest["slot_types"]``; a model trained before slot types has none."""
        return cls(schema_from_json(manifest.get(MANIFEST_KEY)))

    def types(self) -> dict[str, str]:
        """Slot -> type name, for listings."""
        return {slot: spec.type.value for slot, spec in sorted(self.specs.items())}

    def resolve(self, slot: str, text: str, reference: Reference) -> Normalized | None:
        spec = self.specs.get(slot)
        if spec is None:
            return None
        if spec.type is ValueType.TEXT:  # no engine call for free text
            stripped = text.strip()
            return TextValue(stripped) if stripped else None
        return resolve(text, spec.type, reference, self._synonyms[slot], spec.bound)

    def resolve_all(
        self, slots: Sequence[tuple[str, str]], reference: Reference
    ) -> tuple[Normalized | None, ...]:
        """The ``(slot, text)`` pairs of one utterance, each resolved for its type; then a
        datetime slot that names only a time of day takes its day from the date slot it pairs
        with: "at 7pm tomorrow" tagged as time "7pm" and date "tomorrow" is tomorrow at 19:00,
        not today (the date slot keeps its own value)."""
        values = [self.resolve(slot, text, reference) for slot, text in slots]
        for i, j in self._day_pairs([slot for slot, _ in slots]):
            moment, day = values[i], values[j]
            if isinstance(moment, DateTimeValue | IntervalValue) and isinstance(day, DateValue):
                values[i] = on_day(moment, day, reference) or moment
        return tuple(values)

    def _day_pairs(self, names: Sequence[str]) -> Iterator[tuple[int, int]]:
        """(datetime slot, date slot) positions that belong together: the date slot named like
        the datetime one with "time" read as "date" (``depart_time`` -> ``depart_date``), else
        the only date slot when there is one datetime slot. Anything else is left apart."""
        kinds = [self.specs[n].type if n in self.specs else None for n in names]
        dates = [j for j, kind in enumerate(kinds) if kind is ValueType.DATE]
        moments = [i for i, kind in enumerate(kinds) if kind is ValueType.DATETIME]
        for i in moments:
            named = [j for j in dates if names[j] == names[i].replace("time", "date")]
            if len(named) == 1:
                yield i, named[0]
            elif not named and len(dates) == 1 and len(moments) == 1:
                yield i, dates[0]
