"""Entry point of the ``slotfill`` console script."""

from __future__ import annotations

import argparse
import sys

from training.cli import add_eval_parsers, add_train_parser, run


def build_parser() -> argparse.ArgumentParser:
    """All subcommands with their help."""
    parser = argparse.ArgumentParser(
        prog="slotfill",
        description="Slot-filling NLU: train BiLSTM-CRF taggers and sentiment models, serve them over HTTP.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(sub)
    add_eval_parsers(sub)
    try:
        from app.cli import add_app_parsers
    except ImportError:  # the service part is optional for offline use
        pass
    else:
        add_app_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command."""
    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
