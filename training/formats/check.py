"""``slotfill data check``: what a data folder holds and what is wrong with it.

Errors (the command exits 1): spans that cannot be tagged (overlapping, or covering no
token). Warnings: duplicate examples (the same text and context twice in a split, marked
when their labels differ), texts in both splits, labels only in valid, tokens cut by a
span boundary (the server reads them uncut).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from training.formats.align import align
from training.formats.example import DataSplits, Example

SHOWN = 10  # examples listed per finding; the counts are complete


@dataclass
class CheckReport:
    """Counts and findings of one data folder."""

    format: str
    sizes: dict[str, int]
    intents: dict[str, Counter[str]]
    slots: dict[str, Counter[str]]
    with_context: dict[str, int]
    cuts: dict[str, int]
    lookups: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # (headline, the examples it is about: at most SHOWN, then "... and N more")
    warnings: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON line of ``data check --json``."""
        return {
            "format": self.format,
            "examples": self.sizes,
            "intents": {k: dict(sorted(v.items())) for k, v in self.intents.items()},
            "slots": {k: dict(sorted(v.items())) for k, v in self.slots.items()},
            "with_context": self.with_context,
            "token_cuts": self.cuts,
            "lookups": self.lookups,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


def _key(ex: Example) -> tuple[str, tuple[str, ...]]:
    return ex.text, tuple(sorted(ex.requested_slots))


def _labels(ex: Example) -> tuple[Any, ...]:
    return (
        tuple(sorted(ex.intents)),
        tuple((s.start, s.end, s.slot, repr(s.value)) for s in ex.spans),
    )


def _listed(lines: list[str]) -> list[str]:
    more = len(lines) - SHOWN
    return lines[:SHOWN] + ([f"... and {more} more"] if more > 0 else [])


def check(data: DataSplits) -> CheckReport:
    """Read every example of both splits onto tokens and collect counts and findings."""
    splits = {"train": data.train, "valid": data.valid}
    report = CheckReport(
        data.format,
        sizes={k: len(v) for k, v in splits.items()},
        intents={k: Counter(i for e in v for i in e.intents) for k, v in splits.items()},
        slots={k: Counter(s.slot for e in v for s in e.spans) for k, v in splits.items()},
        with_context={k: sum(bool(e.requested_slots) for e in v) for k, v in splits.items()},
        cuts={},
        lookups={k: len(v) for k, v in data.lookups.items()},
        notes=list(data.notes),
    )
    for name, examples in splits.items():
        cut_lines: list[str] = []
        problems: list[str] = []
        for ex in examples:
            aligned = align(ex)
            problems.extend(f"{ex.where}: {p}" for p in aligned.problems)
            if aligned.cuts:
                cut_lines.append(f"{ex.where}: tokens {aligned.words}")
        report.cuts[name] = len(cut_lines)
        report.errors.extend(problems)
        if cut_lines:
            report.warnings.append(
                (
                    f"{name}: {len(cut_lines)} examples have a token cut by a span boundary "
                    "(the server reads it uncut)",
                    _listed(cut_lines),
                )
            )
        groups: dict[tuple[str, tuple[str, ...]], list[Example]] = defaultdict(list)
        for ex in examples:
            groups[_key(ex)].append(ex)
        dups = [g for g in groups.values() if len(g) > 1]
        if dups:
            conflicting = sum(len({_labels(e) for e in g}) > 1 for g in dups)
            report.warnings.append(
                (
                    f"{name}: {len(dups)} texts occur more than once "
                    f"({conflicting} with different labels)",
                    _listed(
                        [
                            ", ".join(e.where for e in g)
                            + (" (labels differ)" if len({_labels(e) for e in g}) > 1 else "")
                            for g in dups
                        ]
                    ),
                )
            )
    shared = sorted({e.text for e in data.train} & {e.text for e in data.valid})
    if shared:
        report.warnings.append(
            (f"{len(shared)} texts are in both train and valid", _listed([repr(t) for t in shared]))
        )
    requested = {k: {s for e in v for s in e.requested_slots} for k, v in splits.items()}
    for kind, counts in (
        ("intents", report.intents),
        ("slots", report.slots),
        ("requested slots", {k: Counter(v) for k, v in requested.items()}),
    ):
        only = sorted(set(counts["valid"]) - set(counts["train"]))
        if only:
            report.warnings.append(
                (f"{kind} only in valid (a model cannot predict them): {only}", [])
            )
    return report


def format_report(report: CheckReport) -> str:
    """The human-readable report: counts, then errors, warnings and notes."""
    lines = [
        f"format: {report.format}",
        "examples: "
        + ", ".join(f"{k} {v}" for k, v in report.sizes.items())
        + " (with requested slots: "
        + ", ".join(f"{k} {v}" for k, v in report.with_context.items())
        + ")",
    ]
    for title, table in (("intent", report.intents), ("slot", report.slots)):
        names = sorted(set(table["train"]) | set(table["valid"]))
        if not names:
            lines.append(f"no {title}s")
            continue
        width = max(len(title), *(len(n) for n in names))
        lines.append(f"{title:<{width}}  {'train':>6}  {'valid':>6}")
        lines.extend(f"{n:<{width}}  {table['train'][n]:>6}  {table['valid'][n]:>6}" for n in names)
    lines.extend(f"lookup {k}: {n} entries" for k, n in sorted(report.lookups.items()))
    lines.append("token cuts: " + ", ".join(f"{k} {v}" for k, v in report.cuts.items()))
    lines.extend(f"note: {n}" for n in report.notes)
    for headline, about in report.warnings:
        lines.append(f"warning: {headline}")
        lines.extend(f"  {line}" for line in about)
    lines.extend(f"error: {e}" for e in _listed(report.errors))
    lines.append(f"{len(report.errors)} errors, {len(report.warnings)} warnings")
    return "\n".join(lines)
