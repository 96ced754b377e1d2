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


def test_dockerfile_builds_the_compiled_kernels() -> None:
    """The image compiles models/_native.c (setup.py's extension), and the build checks it
    imports: setup.py marks it optional, so without a compiler pip would quietly skip it."""
    install = next(r for i, r in _dockerfile() if i == "RUN" and "pip install ." in r)
    steps = [step.strip() for step in install.split("&&")]
    compiler = next(i for i, step in enumerate(steps) if "apt-get install" in step)
    build = steps.index("pip install .")
    check = next(i for i, step in enumerate(steps) if "native.available()" in step)
    assert "gcc" in steps[compiler] and compiler < build < check
    copied = [shlex.split(r)[:-1] for i, r in _dockerfile() if i == "COPY"]
    assert ["pyproject.toml", "setup.py", "README.md"] in copied
    assert "models/_native.c" in (ROOT / "setup.py").read_text()


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


# --------------------------------------------------------------------------- the front proxy
# `docker compose up --scale api=3` needs the replicas unpublished and one proxy in front; the
# proxy holds the API's limits on slow and oversized clients (issue 17, items 1 and 10).

NGINX_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|[{};]|[^\s{};]+")


def _nginx(text: str) -> list[tuple[str, list[str], list[Any]]]:
    """nginx's configuration syntax as (directive, arguments, block) triples."""
    tokens = NGINX_TOKEN.findall(re.sub(r"(?m)^\s*#.*$|\s#[^'\"\n]*$", "", text))
    tokens.reverse()

    def block() -> list[tuple[str, list[str], list[Any]]]:
        out: list[tuple[str, list[str], list[Any]]] = []
        words: list[str] = []
        while tokens:
            token = tokens.pop()
            if token == ";":
                out.append((words[0], words[1:], []))
                words = []
            elif token == "{":
                out.append((words[0], words[1:], block()))
                words = []
            elif token == "}":
                assert not words, f"unterminated directive {words}"
                return out
            else:
                words.append(token[1:-1] if token[0] in "'\"" else token)
        assert not words, f"unterminated directive {words}"
        return out

    return block()


def _find(tree: list[tuple[str, list[str], list[Any]]], *path: str) -> list[list[str]]:
    """Arguments of every directive at ``path`` (``"http", "server", "listen"``)."""
    found = []
    for name, args, children in tree:
        if name == path[0]:
            found += [args] if len(path) == 1 else _find(children, *path[1:])
    return found


def _one(tree: list[tuple[str, list[str], list[Any]]], *path: str) -> list[str]:
    found = _find(tree, *path)
    assert len(found) == 1, f"{' '.join(path)}: {found}"
    return found[0]


def _size(value: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


def _seconds(value: str) -> float:
    assert value.endswith("s"), value
    return float(value[:-1])


def _proxy_config() -> tuple[dict[str, Any], list[tuple[str, list[str], list[Any]]]]:
    proxy = _compose()["services"]["proxy"]
    mount = next(v for v in proxy["volumes"] if v.endswith(":/etc/nginx/nginx.conf:ro"))
    source = ROOT / mount.split(":")[0]
    assert source.is_file(), f"the proxy mounts missing {source}"
    return proxy, _nginx(source.read_text())


def test_the_nginx_parser_reads_what_it_is_given() -> None:
    tree = _nginx("a 1;\n# b 2;\nhttp { c 'x; y' \"z\"; server { d; } }  # e\n")
    assert _find(tree, "a") == [["1"]] and not _find(tree, "b")
    assert _one(tree, "http", "c") == ["x; y", "z"] and _one(tree, "http", "server", "d") == []
    with pytest.raises(AssertionError):
        _nginx("a 1")


def test_compose_scales_the_api_behind_one_proxy() -> None:
    services = _compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}, "only the proxy may bind a host port"
    assert "container_name" not in services["api"]
    proxy, nginx = _proxy_config()
    assert proxy["image"].startswith("nginx:")
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    _, container_port = proxy["ports"][0].split(":")
    assert _one(nginx, "http", "server", "listen") == [container_port]
    api_command = services["api"]["command"]
    api_port = api_command[api_command.index("--port") + 1]
    assert services["api"]["expose"] == [api_port]
    server = _one(nginx, "http", "upstream", "server")
    assert server[0] == f"api:{api_port}" and "resolve" in server  # every replica, re-resolved
    assert _find(nginx, "http", "resolver"), "resolve needs Docker's resolver"
    assert _one(nginx, "http", "server", "location", "proxy_pass") == ["http://api"]


def test_proxy_holds_the_limits_of_the_api() -> None:
    from app.config import Settings

    defaults = Settings()
    _, nginx = _proxy_config()

    def setting(name: str) -> list[str]:
        return _one(nginx, "http", name)

    assert _size(setting("client_max_body_size")[0]) == defaults.max_body_bytes
    assert setting("proxy_request_buffering") == ["on"]  # a stalled body never reaches the API
    assert _seconds(setting("client_body_timeout")[0]) == defaults.body_timeout_seconds
    assert _seconds(setting("client_header_timeout")[0]) == defaults.header_timeout_seconds
    # The proxy closes an idle upstream connection before the API would.
    upstream_idle = _one(nginx, "http", "upstream", "keepalive_timeout")
    assert _seconds(upstream_idle[0]) < defaults.keep_alive_seconds
    count, size = setting("large_client_header_buffers")
    assert int(count) * _size(size) <= defaults.max_header_bytes
    assert _size(setting("client_header_buffer_size")[0]) <= defaults.max_header_bytes
    assert setting("lingering_close") == ["on"]  # 413 read, not reset
    assert _find(nginx, "http", "limit_conn"), "one client address needs a connection limit"
    headers = _find(nginx, "http", "server", "location", "proxy_set_header")
    assert ["X-Forwarded-For", "$remote_addr"] in headers  # replaced, never appended to
    # The proxy's own errors are in the API's one error shape.
    returns = _find(nginx, "http", "server", "location", "return")
    assert len(returns) >= 3
    for status, body in returns:
        error = json.loads(body)["error"]
        assert int(status) >= 400 and set(error) == {"code", "message"}, body


def test_compose_gives_data_spill_and_journal_their_volumes() -> None:
    from app.config import Settings

    compose = _compose()
    api = compose["services"]["api"]
    env = api["environment"]
    fields = set(Settings.model_fields)
    for key in env:  # every setting named exists
        assert key.startswith("SLOTFILL_") and key[9:].lower() in fields, key
    mounts = {v.split(":")[1]: v.split(":")[0] for v in api["volumes"]}
    for key in ("SLOTFILL_DATA_DIR", "SLOTFILL_LOG_SPILL_DIR", "SLOTFILL_LOG_JOURNAL_DIR"):
        volume = mounts.get(env[key])
        assert volume in compose["volumes"], f"{key}={env[key]} is not on a named volume"
    worker_mounts = [v.split(":")[1] for v in compose["services"]["worker"]["volumes"]]
    assert env["SLOTFILL_DATA_DIR"] in worker_mounts  # the workers train from it
