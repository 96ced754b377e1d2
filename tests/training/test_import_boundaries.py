"""Layering: ``models`` imports neither ``app`` nor ``training``; ``training`` never imports
``app``.

Read from the source with ``ast`` (imports inside functions included), so nothing is executed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"models": {"app", "training"}, "training": {"app"}}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """Top-level package and line of every absolute import in a module."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


MODULES = [
    (package, path) for package in FORBIDDEN for path in sorted((REPO / package).rglob("*.py"))
]


def test_the_walk_sees_modules() -> None:
    assert {p.name for _, p in MODULES} >= {"crf.py", "artifact.py", "loop.py", "cli.py"}
    # The walk finds imports, including those inside functions (training/cli.py has them).
    assert "models" in {pkg for pkg, _ in imported_packages(REPO / "training" / "cli.py")}


@pytest.mark.parametrize(
    "package,path", MODULES, ids=[str(p.relative_to(REPO)) for _, p in MODULES]
)
def test_no_upward_imports(package: str, path: Path) -> None:
    bad = sorted(
        f"{path.relative_to(REPO)}:{line} imports {pkg}"
        for pkg, line in imported_packages(path)
        if pkg in FORBIDDEN[package]
    )
    assert not bad, bad


def test_dispatching_a_command_does_not_import_torch() -> None:
    """``slotfill serve --workers N`` runs a supervisor that only starts workers: importing
    torch there (1.3 s measured) delayed every worker's start by as much."""
    code = (
        "import sys\n"
        "from slotfill.cli import build_parser\n"
        "from training.cli import run\n"
        "args = build_parser().parse_args(['serve'])\n"
        "args.func = lambda parsed: 0\n"
        "assert run(args) == 0\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
