"""A model's slot value resolver: its slot types (from the artifact's manifest) with their
synonym tables built once, resolving each predicted slot for its type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.values.reference import Reference
from models.values.resolve import resolve
from models.values.schema import SlotSpec, schema_from_json
from models.values.synonyms import Synonyms
from models.values.types import Normalized, TextValue, ValueType

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
