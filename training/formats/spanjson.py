"""Span-annotated JSON: NLU++ lists, PolyAI's DSTC8 span-extraction lists, and slotfill's
own JSON lines (what ``slotfill data convert --to jsonl`` writes; README: "Data formats").

Every reader checks each example and stops at the first defect with a :class:`DataError`
naming the file and the example (1-based).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.data import DataError
from training.formats.example import Example, checked_span, example_name, string_list

JSONL_KEYS = frozenset({"text", "intents", "spans", "context"})


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found") from err
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from err


def load_json_list(path: Path) -> list[Any]:
    """A JSON file holding a list; else :class:`DataError`."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of examples, got {type(data).__name__}")
    return data


def _text(path: Path, index: int, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise DataError(f"{path}: example {index + 1}: text {raw!r} is not a non-empty string")
    return raw


def _object(path: Path, index: int, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise DataError(f"{path}: example {index + 1} is a {type(item).__name__}, not an object")
    return item


def nlupp_example(path: Path, index: int, item: Any) -> Example:
    """One NLU++ example: ``text``, optional ``intents`` and ``slots`` {name: {``text``,
    ``span``, ``value`` or ``values``}}; the annotated text must equal the span's."""
    item = _object(path, index, item)
    text = _text(path, index, item.get("text"))
    where = example_name(path, index, text)
    intents = string_list(where, "'intents'", item.get("intents"))
    slots = item.get("slots") or {}
    if not isinstance(slots, dict):
        raise DataError(f"{where}: 'slots' must be an object of slot name -> annotation")
    spans = []
    for name, ann in slots.items():
        bounds = ann.get("span") if isinstance(ann, dict) else None
        if not (isinstance(bounds, list) and len(bounds) == 2):
            raise DataError(f"{where}: slot {name!r} has no 'span': [start, end]")
        value = ann.get("value", ann.get("values"))
        span = checked_span(where, text, bounds[0], bounds[1], name, value)
        if "text" in ann and text[span.start : span.end] != ann["text"]:
            raise DataError(
                f"{where}: slot {name!r} annotates {ann['text']!r} "
                f"but its span holds {text[span.start : span.end]!r}"
            )
        spans.append(span)
    return Example(text, tuple(sorted(spans, key=lambda s: s.start)), intents, where=where)


def dstc8_example(path: Path, index: int, item: Any) -> Example:
    """One DSTC8 span example: ``userInput.text``, ``context.requestedSlots``,
    ``labels`` [{``slot``, ``valueSpan``: {``startIndex`` (absent: 0), ``endIndex``}}]."""
    item = _object(path, index, item)
    user = item.get("userInput")
    text = _text(path, index, user.get("text") if isinstance(user, dict) else None)
    where = example_name(path, index, text)
    context = item.get("context") or {}
    if not isinstance(context, dict):
        raise DataError(f"{where}: 'context' must be an object")
    requested = string_list(where, "'context.requestedSlots'", context.get("requestedSlots"))
    labels = item.get("labels") or []
    if not isinstance(labels, list):
        raise DataError(f"{where}: 'labels' must be a list")
    spans = []
    for label in labels:
        value_span = label.get("valueSpan") if isinstance(label, dict) else None
        if not isinstance(value_span, dict) or "endIndex" not in value_span:
            raise DataError(f"{where}: a label has no 'valueSpan' with an 'endIndex'")
        spans.append(
            checked_span(
                where,
                text,
                value_span.get("startIndex", 0),
                value_span["endIndex"],
                label.get("slot"),
                None,
            )
        )
    return Example(text, tuple(sorted(spans, key=lambda s: s.start)), (), requested, where)


def jsonl_example(path: Path, index: int, item: Any) -> Example:
    """One line of slotfill's JSON lines format; unknown keys are errors, not ignored."""
    item = _object(path, index, item)
    text = _text(path, index, item.get("text"))
    where = example_name(path, index, text)
    unknown = sorted(set(item) - JSONL_KEYS)
    if unknown:
        raise DataError(f"{where}: unknown keys {unknown}; expected {sorted(JSONL_KEYS)}")
    intents = string_list(where, "'intents'", item.get("intents"))
    context = item.get("context") or {}
    if not isinstance(context, dict) or set(context) - {"requested_slots"}:
        raise DataError(f"{where}: 'context' must be an object with only 'requested_slots'")
    requested = string_list(where, "'context.requested_slots'", context.get("requested_slots"))
    raw_spans = item.get("spans") or []
    if not isinstance(raw_spans, list) or not all(isinstance(s, dict) for s in raw_spans):
        raise DataError(f"{where}: 'spans' must be a list of objects")
    spans = [
        checked_span(where, text, s.get("start"), s.get("end"), s.get("slot"), s.get("value"))
        for s in raw_spans
    ]
    return Example(text, tuple(sorted(spans, key=lambda s: s.start)), intents, requested, where)


def read_json_examples(path: Path, fmt: str) -> list[Example]:
    """All examples of one ``nlupp`` or ``dstc8`` JSON list or one ``jsonl`` file."""
    if fmt == "jsonl":
        examples = []
        for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
            examples.append(jsonl_example(path, lineno - 1, item))
        if not examples:
            raise DataError(f"{path}: file is empty")
        return examples
    parse = nlupp_example if fmt == "nlupp" else dstc8_example
    items = load_json_list(path)
    if not items:
        raise DataError(f"{path}: the list of examples is empty")
    return [parse(path, i, item) for i, item in enumerate(items)]


def example_json(example: Example) -> dict[str, Any]:
    """An example as one line of the JSON lines format (keys omitted when empty)."""
    out: dict[str, Any] = {"text": example.text}
    if example.intents:
        out["intents"] = list(example.intents)
    if example.spans:
        out["spans"] = [
            {"start": s.start, "end": s.end, "slot": s.slot}
            | ({"value": s.value} if s.value is not None else {})
            for s in example.spans
        ]
    if example.requested_slots:
        out["context"] = {"requested_slots": list(example.requested_slots)}
    return out
