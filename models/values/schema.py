"""Each slot's value type: declared in ``slots.yaml``, else inferred from gold values, else
guessed from the slot's name (with a warning that names the guess). Stored in the artifact.

``slots.yaml`` (in the data folder)::

    slots:
      party_size: count
      time: datetime
      cuisine:
        type: category
        synonyms:
          Italian: [italian food, italia]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from models.values.synonyms import Synonyms
from models.values.types import ValueType

Source = Literal["schema", "values", "name"]
Bound = Literal["start", "end"]
_END = re.compile(r"(^|[._-])(to|end|until|till|checkout|check_out|return|arrive|arrival)$")
_START = re.compile(r"(^|[._-])(from|start|begin|since|checkin|check_in|depart|departure)$")
_NAME_RULES: tuple[tuple[str, ValueType], ...] = (
    (r"price|cost|amount|money|fare|budget|fee|salary|balance", ValueType.MONEY),
    (r"duration|length|how_long", ValueType.DURATION),
    (r"period|range|interval|window", ValueType.INTERVAL),
    (
        r"people|party|guests?|persons?|adults?|child|children|kids|rooms?|nights?|tickets?"
        r"|seats?|count|num_|number_of|quantity|size",
        ValueType.COUNT,
    ),
    (r"datetime|when|timestamp", ValueType.DATETIME),
    (r"date|day", ValueType.DATE),
    (r"time|hour|clock", ValueType.TIME),
    (r"number|num", ValueType.NUMBER),
)


@dataclass(frozen=True)
class SlotSpec:
    """How one slot's values are read."""

    type: ValueType
    source: Source = "schema"
    bound: Bound | None = None
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": str(self.type), "source": self.source}
        if self.bound:
            out["bound"] = self.bound
        if self.synonyms:
            out["synonyms"] = {k: list(v) for k, v in self.synonyms.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SlotSpec:
        synonyms = {str(k): tuple(map(str, v)) for k, v in data.get("synonyms", {}).items()}
        return cls(ValueType(data["type"]), data.get("source", "schema"), data.get("bound"),
                   synonyms)  # fmt: skip

    def synonym_table(self) -> Synonyms | None:
        return Synonyms(self.synonyms) if self.synonyms else None


def bound_of(slot: str) -> Bound | None:
    """``date_to`` ends a range, ``date_from`` starts one; None for other names."""
    name = slot.lower()
    if _END.search(name):
        return "end"
    return "start" if _START.search(name) else None


def type_from_name(slot: str) -> ValueType:
    """A guess from the name alone ("party_size" -> count); ``text`` when nothing fits."""
    name = slot.lower()
    for pattern, value_type in _NAME_RULES:
        if re.search(pattern, name):
            return value_type
    return ValueType.TEXT


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "text"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        keys = set(value)
        if {"day", "month", "year"} <= keys:
            return "date"
        if {"hour", "minute"} <= keys:
            return "time"
        if "amount" in keys:
            return "money"
        if value.get("type") == "absolute" or {"from", "to"} & keys:
            return "interval"
        if value.get("type") == "relative":
            return "duration"
    return "other"


def type_from_values(slot: str, pairs: Sequence[tuple[str, Any]]) -> SlotSpec | None:
    """The type that the gold ``(text, value)`` pairs of a slot show (NLU++ value dicts:
    ``{"day","month","year"}`` -> date, ``{"hour","minute"}`` -> time, numbers -> number or,
    for a name that counts, count; strings that differ from the text -> category with those
    synonyms). None without gold values."""
    kinds = Counter(_kind(v) for _, v in pairs if v is not None)
    if not kinds:
        return None
    kind = kinds.most_common(1)[0][0]
    simple = {"date": ValueType.DATE, "time": ValueType.TIME, "money": ValueType.MONEY,
              "interval": ValueType.INTERVAL, "duration": ValueType.DURATION}  # fmt: skip
    if kind in simple:
        return SlotSpec(simple[kind], "values", bound_of(slot))
    if kind == "number":
        counts = type_from_name(slot) is ValueType.COUNT
        return SlotSpec(ValueType.COUNT if counts else ValueType.NUMBER, "values")
    if kind == "string":
        table: dict[str, set[str]] = {}
        for text, value in pairs:
            if isinstance(value, str):
                table.setdefault(value, set())
                if text.strip() != value:
                    table[value].add(text.strip())
        if not any(table.values()):
            return SlotSpec(ValueType.TEXT, "values")
        synonyms = {k: tuple(sorted(v)) for k, v in sorted(table.items())}
        return SlotSpec(ValueType.CATEGORY, "values", synonyms=synonyms)
    return None


def parse_schema(document: Any) -> dict[str, SlotSpec]:
    """``slots.yaml`` as loaded by a YAML reader; ValueError says what is wrong and where."""
    slots = document.get("slots", document) if isinstance(document, Mapping) else None
    if not isinstance(slots, Mapping):
        raise ValueError("slots.yaml: expected a mapping of slot name -> type")
    allowed = ", ".join(t.value for t in ValueType)
    out: dict[str, SlotSpec] = {}
    for name, entry in slots.items():
        spec = entry if isinstance(entry, Mapping) else {"type": entry}
        if spec.get("type") not in {t.value for t in ValueType}:
            raise ValueError(f"slots.yaml: slot {name!r}: type must be one of {allowed}, "
                             f"got {spec.get('type')!r}")  # fmt: skip
        raw = spec.get("synonyms") or {}
        if not isinstance(raw, Mapping) or not all(isinstance(v, list) for v in raw.values()):
            raise ValueError(f"slots.yaml: slot {name!r}: synonyms must map a value to a list")
        bound = spec.get("bound", bound_of(str(name)))
        if bound not in (None, "start", "end"):
            raise ValueError(f"slots.yaml: slot {name!r}: bound must be start or end")
        synonyms = {str(k): tuple(str(x) for x in v) for k, v in raw.items()}
        out[str(name)] = SlotSpec(ValueType(spec["type"]), "schema", bound, synonyms)
    return out


def build_schema(
    slots: Iterable[str],
    declared: Mapping[str, SlotSpec] | None = None,
    gold: Mapping[str, Sequence[tuple[str, Any]]] | None = None,
) -> tuple[dict[str, SlotSpec], list[str]]:
    """Every slot's spec, and a warning per slot whose type is only a guess from its name."""
    declared, gold = declared or {}, gold or {}
    specs: dict[str, SlotSpec] = {}
    warnings: list[str] = []
    for slot in sorted(set(slots)):
        spec = declared.get(slot) or type_from_values(slot, gold.get(slot, ()))
        if spec is None:
            spec = SlotSpec(type_from_name(slot), "name", bound_of(slot))
            warnings.append(
                f"slot {slot!r}: no type in slots.yaml and no gold values; "
                f"guessed {spec.type.value!r} from its name"
            )
        specs[slot] = spec
    return specs, warnings


def schema_to_json(specs: Mapping[str, SlotSpec]) -> dict[str, Any]:
    return {name: spec.to_json() for name, spec in sorted(specs.items())}


def schema_from_json(data: Mapping[str, Any] | None) -> dict[str, SlotSpec]:
    return {str(name): SlotSpec.from_json(spec) for name, spec in (data or {}).items()}
