"""``slotfill data check`` and ``slotfill data convert``: look at training data before
training on it, and write it in the one format a user's tooling can target (README:
"Data formats")."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from training.data import DataError
from training.formats import FORMATS, read_data
from training.formats.check import check, format_report
from training.formats.spanjson import example_json

_FORMAT_HELP = (
    "format of DIR (default: detected from its files): bio = train/ and valid/ with seq.in, "
    "seq.out, label; nlupp / dstc8 = train.json and valid.json; jsonl = train.jsonl and "
    "valid.jsonl; rasa = train.yml and valid.yml, or any *.yml (a valid split is made)"
)
_SPLIT_HELP = "read BIO labels joined by '#' as several intents (default: one label)"


def add_data_parsers(sub: Any) -> None:
    """Register ``data check`` and ``data convert``."""
    data = sub.add_parser("data", help="check or convert training data")
    cmds = data.add_subparsers(dest="data_command", required=True, metavar="{check,convert}")
    chk = cmds.add_parser(
        "check",
        help="counts and defects of a data folder",
        description="Read DIR's train and valid splits onto the server's tokens and print "
        "counts per intent and slot, spans that cannot be tagged (overlapping, covering no "
        "token: errors), duplicates, texts in both splits, labels only in valid and tokens "
        "cut by a span boundary (warnings). Exit status: 0 without errors, 1 with errors, "
        "2 when DIR cannot be read.",
    )
    chk.add_argument("dir", type=Path, metavar="DIR")
    chk.add_argument("--format", choices=FORMATS, help=_FORMAT_HELP)
    chk.add_argument("--split-intents", action="store_true", help=_SPLIT_HELP)
    chk.add_argument("--json", action="store_true", help="end stdout with one JSON line of counts")
    chk.set_defaults(func=_check)
    conv = cmds.add_parser(
        "convert",
        help="write a data folder as slotfill JSON lines",
        description="Read SRC (any format) and write DST/train.jsonl and DST/valid.jsonl, one "
        'example a line: {"text", "intents", "spans": [{"start", "end", "slot", "value"}], '
        '"context": {"requested_slots"}} (README: "Data formats"). DST must not exist or be '
        "empty; nothing is written when SRC has an error.",
    )
    conv.add_argument("src", type=Path, metavar="SRC")
    conv.add_argument("dst", type=Path, metavar="DST")
    conv.add_argument("--to", choices=["jsonl"], required=True, help="output format")
    conv.add_argument("--format", choices=FORMATS, help=_FORMAT_HELP)
    conv.add_argument("--split-intents", action="store_true", help=_SPLIT_HELP)
    conv.set_defaults(func=_convert)


def _check(args: argparse.Namespace) -> int:
    report = check(read_data(args.dir, args.format, args.split_intents))
    print(format_report(report))
    if args.json:
        print(json.dumps(report.summary()))
    return 1 if report.errors else 0


def _convert(args: argparse.Namespace) -> int:
    data = read_data(args.src, args.format, args.split_intents)
    dst: Path = args.dst
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DataError(f"{dst}: exists and is not an empty directory; nothing written")
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    if data.lookups:
        print(
            f"warning: lookup tables {sorted(data.lookups)} are not written: the JSON lines "
            "format holds examples only",
            file=sys.stderr,
        )
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    except OSError as err:
        raise DataError(f"{dst}: cannot create ({err.strerror}); nothing written") from err
    try:
        for name, examples in (("train", data.train), ("valid", data.valid)):
            (staging / f"{name}.jsonl").write_text(
                "".join(json.dumps(example_json(e), ensure_ascii=False) + "\n" for e in examples),
                encoding="utf-8",
            )
        if dst.exists():
            dst.rmdir()
        staging.rename(dst)
    except OSError as err:
        raise DataError(f"{dst}: cannot write ({err.strerror}); nothing written") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"wrote {dst}: train {len(data.train)}, valid {len(data.valid)} examples ({data.format})")
    return 0
