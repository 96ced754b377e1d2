"""Layering: ``app -> models <- training``. ``models`` imports neither ``app`` nor
``training``; ``training`` never imports ``app``, nor ``app`` ``training`` (training jobs run
``slotfill train`` in a child process). Inside ``app``, the serving room never imports the
operating room. Only ``slotfill/cli.py`` composes both sides.

Read from the source with ``ast`` (imports inside functions included), so nothing is executed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Folder -> modules nothing under it may import (a name, or anything below it). The
# benchmarks (and their test-and-benchmark helpers) are not installed: no product code needs them.
FORBIDDEN = {
    "models": ("app", "training", "benchmarks"),
    "training": ("app", "benchmarks"),
    "app": ("training", "benchmarks"),
    "app/serving": ("app.operating",),
}


def imported_modules(path: Path) -> set[tuple[str, int]]:
    """Dotted name and line of every absolute import in a module."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {(f"{node.module}.{alias.name}", node.lineno) for alias in node.names}
    return found


def _forbidden(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


MODULES = [(folder, path) for folder in FORBIDDEN for path in sorted((REPO / folder).rglob("*.py"))]


def test_the_walk_sees_modules() -> None:
    names = {str(p.relative_to(REPO)) for _, p in MODULES}
    assert {"models/crf.py", "training/loop.py", "app/main.py"} <= names
    assert "app/serving/parse_routes.py" in names
    # The walk finds imports, including those inside functions (training/cli.py has them).
    assert any(m.startswith("models.") for m, _ in imported_modules(REPO / "training" / "cli.py"))
    # ``from app import paths`` counts as importing ``app.paths``.
    assert "app.paths" in {m for m, _ in imported_modules(REPO / "app/serving/parse_routes.py")}


def test_the_rules_catch_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("def f():\n    from app.operating import versions\n    import training.cli\n")
    found = {m for m, _ in imported_modules(module)}
    assert _forbidden("app.operating.versions", FORBIDDEN["app/serving"])
    assert any(_forbidden(m, FORBIDDEN["app"]) for m in found)
    assert not _forbidden("app.operating_notes", FORBIDDEN["app/serving"])


@pytest.mark.parametrize("folder,path", MODULES, ids=[str(p.relative_to(REPO)) for _, p in MODULES])
def test_no_forbidden_imports(folder: str, path: Path) -> None:
    bad = sorted(
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for module, line in imported_modules(path)
        if _forbidden(module, FORBIDDEN[folder])
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
