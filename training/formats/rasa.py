"""Rasa's YAML NLU training data (``version: "3.1"``), as Rasa users write it.

Read: ``intent:`` items with ``examples:`` (a ``- text`` block, or a list of ``text:``
entries), entity annotations ``[text](slot)``, ``[text](slot:canonical)``,
``[text]{"entity": "slot", "value": "canonical"}`` and lists of such objects, ``synonym:``
items, ``lookup:`` tables and ``regex:`` items. A span's value is its annotated canonical
value, else the synonym of its lower-cased text (Rasa's synonym mapper is case-insensitive
too), else ``None``. Entity roles and groups are refused, not dropped.

Without ``train.yml``/``valid.yml`` the folder's ``*.yml`` files are read together and a
valid split is made: per intent, the examples ordered by the SHA-256 of their text, the
first ``VALID_SHARE`` of them (rounded down). It depends on nothing but the texts, and the
same text always lands on the same side.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from training.data import DataError
from training.formats.example import DataSplits, Example, SlotSpan, example_name

VALID_SHARE = 0.2
# [text](slot) / [text](slot:value) / [text]{...} / [text][{...}, {...}], as Rasa reads them.
_ENTITY_RE = re.compile(
    r"\[(?P<text>[^\]]+?)\]"
    r"(?:\((?P<slot>[^:)]+?)(?::(?P<value>[^)]+))?\)"
    r"|(?P<dict>\{[^}]+?\})"
    r"|(?P<list>\[\{.*?\}\]))"
)
_LEFTOVER_RE = re.compile(r"\]\(|\]\{")  # what is left of an annotation the regex missed
_ENTITY_KEYS = frozenset({"entity", "value"})


def _annotations(where: str, m: re.Match[str]) -> list[tuple[str, Any]]:
    """(slot, value) pairs of one ``[text]...`` annotation."""
    if m.group("slot") is not None:
        return [(m.group("slot").strip(), m.group("value"))]
    raw = m.group("dict") or m.group("list")
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: entity annotation {raw!r} is not valid JSON") from err
    out = []
    for obj in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(obj, dict) or not isinstance(obj.get("entity"), str):
            raise DataError(f'{where}: entity annotation {raw!r} has no "entity" name')
        extra = sorted(set(obj) - _ENTITY_KEYS)
        if extra:
            raise DataError(
                f"{where}: entity keys {extra} (roles, groups) are not supported; "
                "use a distinct slot name instead"
            )
        out.append((obj["entity"], obj.get("value")))
    return out


def parse_annotated(where: str, line: str) -> tuple[str, list[SlotSpan]]:
    """Plain text and spans of one annotated example line."""
    text_parts: list[str] = []
    spans: list[SlotSpan] = []
    pos = 0
    length = 0
    for m in _ENTITY_RE.finditer(line):
        text_parts.append(line[pos : m.start()])
        length += m.start() - pos
        surface = m.group("text")
        for slot, value in _annotations(where, m):
            spans.append(SlotSpan(length, length + len(surface), slot, value))
        text_parts.append(surface)
        length += len(surface)
        pos = m.end()
    text_parts.append(line[pos:])
    text = "".join(text_parts)
    if _LEFTOVER_RE.search(text):
        raise DataError(f"{where}: an entity annotation in {line!r} is malformed")
    return text, spans


def _example_lines(where: str, raw: Any) -> list[str]:
    """Texts of an item's ``examples``: a ``- text`` block or a list of ``text:`` entries."""
    if isinstance(raw, str):
        lines = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            if not line.lstrip().startswith("-"):
                raise DataError(f"{where}: example line {line.strip()!r} does not start with '- '")
            lines.append(line.lstrip()[1:].strip())
        return lines
    if isinstance(raw, list) and all(isinstance(x, dict) and "text" in x for x in raw):
        return [str(x["text"]).strip() for x in raw]
    raise DataError(f"{where}: 'examples' must be a '- text' block or a list of 'text:' entries")


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError(f"{path}: file not found") from err
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DataError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("nlu"), list):
        raise DataError(f"{path}: expected Rasa NLU data: a mapping with an 'nlu:' list")
    return doc


def read_rasa_files(paths: list[Path]) -> tuple[list[Example], dict[str, str], dict[str, Any]]:
    """Examples, synonyms (lower-cased surface -> canonical) and lookups/regexes/notes."""
    pending: list[tuple[str, str, list[SlotSpan], str]] = []  # text, intent, spans, where
    synonyms: dict[str, str] = {}
    lookups: dict[str, list[str]] = {}
    notes: list[str] = []
    for path in paths:
        doc = _load(path)
        count = 0
        ignored = sorted(set(doc) - {"version", "nlu"})
        if ignored:
            notes.append(f"{path}: keys {ignored} are not NLU data; not read")
        for k, item in enumerate(doc["nlu"]):
            where = f"{path}: nlu item {k + 1}"
            if not isinstance(item, dict):
                raise DataError(f"{where} is not a mapping")
            lines = _example_lines(where, item.get("examples"))
            if "intent" in item:
                for line in lines:
                    line_where = example_name(path, count, line)
                    count += 1
                    text, spans = parse_annotated(line_where, line)
                    if not text.strip():
                        raise DataError(f"{line_where}: empty example")
                    pending.append((text, str(item["intent"]), spans, line_where))
            elif "synonym" in item:
                for line in lines:
                    synonyms[line.lower()] = str(item["synonym"])
            elif "lookup" in item:
                lookups.setdefault(str(item["lookup"]), []).extend(lines)
            elif "regex" in item:
                notes.append(
                    f"{where}: regex {item['regex']!r} ({len(lines)} patterns) "
                    "is not a feature of this tagger; not used"
                )
            else:
                raise DataError(f"{where}: expected 'intent', 'synonym', 'lookup' or 'regex'")
    examples = []
    for text, _, spans, _ in pending:
        for s in spans:  # annotated values are synonyms too, as in Rasa
            if isinstance(s.value, str) and s.value != text[s.start : s.end]:
                synonyms.setdefault(text[s.start : s.end].lower(), s.value)
    for text, intent, spans, where in pending:
        valued = tuple(
            s
            if s.value is not None
            else SlotSpan(s.start, s.end, s.slot, synonyms.get(text[s.start : s.end].lower()))
            for s in spans
        )
        examples.append(Example(text, valued, (intent,), where=where))
    if lookups:
        notes.append(
            f"lookup tables {sorted(lookups)} are checked and counted; "
            "they are not a feature of this tagger"
        )
    return examples, synonyms, {"lookups": lookups, "notes": notes}


def _rank(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stratified_split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """Deterministic per-intent split: see the module docstring."""
    by_intent: dict[tuple[str, ...], list[Example]] = defaultdict(list)
    for ex in examples:
        by_intent[ex.intents].append(ex)
    held: set[int] = set()
    for group in by_intent.values():
        ranked = sorted(group, key=lambda e: _rank(e.text))
        held.update(id(e) for e in ranked[: int(len(group) * VALID_SHARE)])
    return [e for e in examples if id(e) not in held], [e for e in examples if id(e) in held]


def rasa_files(folder: Path) -> list[Path]:
    """The YAML files of a Rasa data folder, sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def read_rasa(folder: Path) -> DataSplits:
    """``train.yml`` + ``valid.yml`` if present, else every ``*.yml`` split by intent."""
    named = {p.stem: p for p in rasa_files(folder)}
    if "train" in named and "valid" in named:
        train, syn_t, extra_t = read_rasa_files([named["train"]])
        valid, syn_v, extra_v = read_rasa_files([named["valid"]])
        return DataSplits(
            "rasa",
            train,
            valid,
            [named["train"]],
            [named["valid"]],
            synonyms=syn_v | syn_t,
            lookups=extra_t["lookups"],
            notes=extra_t["notes"] + extra_v["notes"],
        )
    files = list(named.values())
    examples, synonyms, extra = read_rasa_files(files)
    train, valid = stratified_split(examples)
    note = (
        f"no train.yml/valid.yml: valid split made from {', '.join(p.name for p in files)} "
        f"({len(valid)} of {len(examples)} examples, {VALID_SHARE:.0%} per intent by text hash)"
    )
    return DataSplits(
        "rasa",
        train,
        valid,
        files,
        files,
        synonyms=synonyms,
        lookups=extra["lookups"],
        notes=[note, *extra["notes"]],
    )
