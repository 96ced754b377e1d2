"""Entry point of the ``slotfill`` console script."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """All subcommands with their help."""
    # Imported here, not at module level, so that importing this module costs nothing (the
    # commands' modules come with the parser; tests/app/test_start_imports.py).
    from app.cli import add_app_parsers
    from app.operating.console.cli import add_user_parser
    from training.cli import add_cv_parser, add_eval_parsers, add_train_parser
    from training.data_cli import add_data_parsers

    parser = argparse.ArgumentParser(
        prog="slotfill",
        description="Slot-filling NLU: train BiLSTM-CRF taggers and sentiment models, "
        "serve them over HTTP.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(sub)
    add_eval_parsers(sub)
    add_cv_parser(sub)
    add_data_parsers(sub)
    add_app_parsers(sub)
    add_user_parser(sub)
    boot = sub.add_parser(
        "bootstrap",
        help="train the demo models into the model store if it has none",
        description="Train the demo tagger and sentiment model from SLOTFILL_DEMO_DATA_DIR into "
        "SLOTFILL_MODEL_STORE (as the models named by SLOTFILL_DEFAULT_MODEL and "
        "SLOTFILL_SENTIMENT_MODEL) unless they already exist.",
    )
    boot.add_argument("--force", action="store_true", help="train a new version even if one exists")
    boot.set_defaults(func=_bootstrap)
    return parser


def _bootstrap(args: argparse.Namespace) -> int:
    from slotfill.bootstrap import bootstrap

    return bootstrap(force=args.force)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command."""
    from training.cli import run

    args = build_parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
