"""API fuzzing with schemathesis against the app's own OpenAPI schema, every route: the public
ones and the admin API (with the admin token).

The app runs in-process (ASGI) with the real tiny models, a migrated SQLite log, the app
tests' small limits (so 413s and 422s come up often) and an empty data folder (so no
generated training request starts a job). Every operation gets ``n`` generated
requests that fit the schema and, where it has a body, ``n`` that do not. Each response must
not be a 5xx, must have a documented status and content type, and must match the documented
schema (so every error the app can answer must be declared with ``responses=``).

Failures are collected rather than raised, so the figures count them all; the test fails at
the end if there is any. The normal run is derandomized (the same few hundred cases every
time); the ``stress`` run draws over 2,000 fresh ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from app_support import migrate, settings_factory
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TOKEN = "fuzz-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC = {
    "POST /v1/parse",
    "POST /v1/parse/batch",
    "POST /model/parse",
    "POST /v1/feedback",
    "GET /v1/models",
    "GET /livez",
    "GET /readyz",
    "GET /metrics",
}
ADMIN = {
    "POST /v1/admin/train",
    "GET /v1/admin/jobs",
    "GET /v1/admin/jobs/{job_id}",
    "POST /v1/admin/jobs/{job_id}/cancel",
    "GET /v1/admin/models",
    "POST /v1/admin/models/{name}/activate",
    "POST /v1/admin/models/{name}/rollback",
    "GET /v1/admin/feedback",
}
SIZES = [
    pytest.param(40, True, id="derandomized-40-per-mode", marks=pytest.mark.timeout(300)),
    pytest.param(
        280, False, id="random-280-per-mode", marks=[pytest.mark.stress, pytest.mark.timeout(600)]
    ),
]


@pytest.fixture(scope="module")
def api_schema(reliability_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The schema of a started app, admin routes included."""
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'log.db'}"
    migrate(url)
    make = settings_factory(reliability_store, url, tmp / "spill")
    app = create_app(make(admin_token=TOKEN, data_dir=tmp / "no-datasets"))
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        shutdown_lifespans()  # the app's shutdown: stops its log writer and pollers


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_checks_catch_nonconforming_responses(api_schema: Any) -> None:
    """The checks are live: an undocumented body, status or a 5xx would fail them."""
    operation = next(op for op in _operations(api_schema) if op.label == "POST /v1/parse")
    case = operation.Case(body={"text": "hello"}, media_type="application/json")
    for status, body in ((200, b'{"nope": 1}'), (418, b"{}"), (500, b'{"error": {}}')):
        response = requests.Response()
        response.status_code, response._content = status, body
        response.headers["Content-Type"] = "application/json"
        response.request = requests.Request("POST", "http://testserver/v1/parse").prepare()
        with pytest.raises(FailureGroup):
            case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(("per_mode", "derandomize"), SIZES)
def test_fuzz_public_routes(
    api_schema: Any, per_mode: int, derandomize: bool, figures: Any
) -> None:
    operations = _operations(api_schema)
    labels = {op.label for op in operations}
    assert labels >= PUBLIC and labels >= ADMIN, labels
    ran: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: dict[str, list[str]] = {}

    def fuzz_one(operation: Any, mode: GenerationMode) -> None:
        label = operation.label

        @settings(
            max_examples=per_mode,
            derandomize=derandomize,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            ran[label] += 1
            try:
                response = case.call_and_validate(checks=CHECKS, headers=AUTH)
                statuses[response.status_code] += 1
            except (FailureGroup, Exception) as exc:  # a FailureGroup is no Exception
                statuses[0] += 1
                failures.setdefault(f"{label}: {type(exc).__name__}", []).append(
                    f"{case.as_curl_command()}\n{exc}"[:2000]
                )

        try:
            fuzz()
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # no parameters or body to get wrong

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_one(operation, mode)

    total = sum(ran.values())
    figures.record(
        f"schemathesis fuzz: up to {per_mode} per operation and mode"
        + (" (derandomized)" if derandomize else ""),
        operations=len(operations),
        cases=total,
        failures=sum(len(v) for v in failures.values()),
        statuses=dict(sorted(statuses.items())),
    )
    assert not failures, "\n\n".join(f"{k} ({len(v)}x):\n{v[0]}" for k, v in failures.items())
    assert total >= len(PUBLIC | ADMIN)
