"""``slotfill user add NAME --role annotator|admin``: console accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from app.operating.console.roles import OperatorRole


def add_user_parser(sub: Any) -> None:
    """Register ``slotfill user``."""
    user = sub.add_parser(
        "user",
        help="manage operator console accounts",
        description="Accounts of the operator console (/console), stored in SLOTFILL_DATABASE_URL "
        "(run `alembic upgrade head` first).",
    )
    commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = commands.add_parser(
        "add",
        help="create an account, or set the role and password of an existing one",
        description="Create a console account (or reset one: a new password ends its sessions). "
        "Annotators review and correct parses; admins also accept corrections, train, activate "
        "and roll back. The password (8 characters or more) is read from a prompt, or from "
        "standard input with --password-stdin; it is stored as an argon2 hash.",
    )
    add.add_argument("name", help="account name: 1-64 of letters, digits and _ . @ -")
    add.add_argument("--role", required=True, choices=[r.value for r in OperatorRole])
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.set_defaults(func=_add)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _add(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from app.config import get_settings
    from app.db.engine import make_engine, make_session_factory
    from app.operating.console.accounts import InvalidAccount, add_operator

    try:
        password = _password(args)
        engine = make_engine(get_settings().database_url)
        try:
            with make_session_factory(engine)() as session, session.begin():
                add_operator(session, args.name, args.role, password)
        finally:
            engine.dispose()
    except (InvalidAccount, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SQLAlchemyError as err:
        reason = str(err).splitlines()[0]
        print(
            f"error: cannot store the account (is the database migrated?): {reason}",
            file=sys.stderr,
        )
        return 2
    print(f"{args.role} '{args.name}' saved")
    return 0
