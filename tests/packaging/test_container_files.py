"""The Dockerfile and docker-compose.yml run commands this project really has.

No Docker engine runs here, so instead of building the image we parse both files and check
every command they run against the real argument parsers, and every file they copy against
the tree: they cannot drift from the code without failing here.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic.config import CommandLine

from slotfill.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _check_command(argv: list[str]) -> None:
    """Parse ``argv`` with the parser of the program it names; SystemExit means it drifted."""
    program, args = argv[0], argv[1:]
    if program == "slotfill":
        build_parser().parse_args(args)
    elif program == "alembic":
        CommandLine(prog="alembic").parser.parse_args(args)
    else:
        pytest.fail(f"unexpected program {program!r} in {argv}")


def test_dockerfile_basics() -> None:
    pairs = _dockerfile()
    instructions = dict(pairs)
    assert pairs[0][0] == "FROM" and pairs[0][1].startswith("python:3.11-slim")
    assert instructions["USER"] not in ("root", "0")
    assert "/livez" in instructions["HEALTHCHECK"]
    torch_pin = next(r for i, r in pairs if i == "RUN" and "torch==" in r)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    assert "torch==2.13.0" in torch_pin and "/whl/cpu" in torch_pin


def test_dockerfile_copies_existing_paths() -> None:
    for instruction, rest in _dockerfile():
        if instruction == "COPY":
            *sources, _dest = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerfile_cmd_is_a_real_command() -> None:
    cmd = json.loads(dict(_dockerfile())["CMD"])
    assert cmd[:2] == ["slotfill", "serve"]
    _check_command(cmd)


def test_compose_services_and_health_checks() -> None:
    services = _compose()["services"]
    assert {"api", "worker", "migrate", "postgres", "redis"} <= set(services)
    for name in ("postgres", "redis"):
        assert "healthcheck" in services[name], f"{name} needs a health check"
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["api"]["command"][:2] == ["slotfill", "serve"]
    assert "--workers" in services["api"]["command"]
    assert services["api"]["command"][services["api"]["command"].index("--workers") + 1] == "2"
    assert services["worker"]["command"][:2] == ["slotfill", "worker"]
    for name in ("api", "worker"):
        assert any("/var/lib/slotfill/models" in v for v in services[name]["volumes"])


@pytest.mark.parametrize("service", ["api", "worker", "migrate", "bootstrap"])
def test_compose_commands_exist_with_their_options(service: str) -> None:
    _check_command(_compose()["services"][service]["command"])


def test_admin_token_has_no_default() -> None:
    env = (ROOT / "docker-compose.yml").read_text()
    match = re.search(r"SLOTFILL_ADMIN_TOKEN:\s*(\S+)", env)
    assert match is not None
    assert match.group(1).startswith("${SLOTFILL_ADMIN_TOKEN:?"), "the admin token must be required"


def test_readme_documents_every_setting() -> None:
    from app.config import Settings

    readme = (ROOT / "README.md").read_text()
    missing = [n for n in Settings.model_fields if f"`SLOTFILL_{n.upper()}`" not in readme]
    assert not missing, f"README's settings table lacks {missing}"
