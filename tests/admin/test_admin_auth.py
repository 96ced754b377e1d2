"""Who may use the admin API: the token matrix, a disabled admin API, and the token staying
out of logs and the request log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from admin_support import AUTH, TOKEN, MakeSettings
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import RequestLog, TrainingJob
from app.main import create_app

V = "20260101T000000000001Z"
# Every admin route, with a body that would be valid.
ROUTES: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/v1/admin/jobs", None),
    ("GET", "/v1/admin/jobs/abc", None),
    ("POST", "/v1/admin/jobs/abc/cancel", {}),
    ("POST", "/v1/admin/train", {"task": "slots", "model": "demo", "dataset": "demo"}),
    ("GET", "/v1/admin/models", None),
    ("POST", "/v1/admin/models/demo/activate", {"version": V}),
    ("POST", "/v1/admin/models/demo/rollback", {}),
    ("GET", "/v1/admin/feedback", None),
]
UNAUTHORIZED = {
    "error": {
        "code": "unauthorized",
        "message": "missing or wrong admin token (Authorization: Bearer <token>)",
    }
}
DISABLED = {
    "error": {
        "code": "admin_disabled",
        "message": "the admin API is disabled; set SLOTFILL_ADMIN_TOKEN to enable it",
    }
}
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]


@pytest.fixture
def enabled(make_settings: MakeSettings) -> Iterator[TestClient]:
    # Queued jobs would start training: the Redis URL keeps the embedded runner off, and
    # nothing listens on port 1, so the one train request here fails fast with 503.
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("method,path,body", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong", "longer", "basic", "no-scheme", "empty"],
)
def test_missing_or_wrong_token_is_401(
    enabled: TestClient,
    method: str,
    path: str,
    body: dict[str, object] | None,
    headers: dict[str, str],
) -> None:
    response = enabled.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == UNAUTHORIZED


@pytest.mark.parametrize("method,path,body", ROUTES, ids=ROUTE_IDS)
def test_right_token_is_let_through(
    enabled: TestClient, method: str, path: str, body: dict[str, object] | None
) -> None:
    response = enabled.request(method, path, json=body, headers=AUTH)
    assert response.status_code not in (401, 403), response.text
    if method == "GET" and not path.endswith("abc"):
        assert response.status_code == 200


@pytest.mark.parametrize("token", [None, ""], ids=["unset", "empty"])
@pytest.mark.parametrize("method,path,body", ROUTES, ids=ROUTE_IDS)
def test_without_a_configured_token_the_admin_api_is_off(
    make_settings: MakeSettings,
    token: str | None,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    with TestClient(create_app(make_settings(admin_token=token))) as client:
        for headers in ({}, AUTH, {"Authorization": "Bearer "}):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 404
            assert response.json() == DISABLED


def test_the_token_stays_out_of_logs_and_the_request_log(
    enabled: TestClient, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for method, path, body in ROUTES:
        enabled.request(method, path, json=body, headers=AUTH)
        enabled.request(method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}x"})
    enabled.post("/v1/parse", json={"text": "book a table"}, headers=AUTH)
    enabled.post("/v1/parse", json={"text": ""}, headers=AUTH)  # a failed, logged request
    enabled.app.state.log_writer.stop()  # type: ignore[attr-defined]
    assert TOKEN not in caplog.text
    with sessions() as session:
        rows = [repr(vars(r)) for r in session.scalars(select(RequestLog))]
        rows += [repr(vars(r)) for r in session.scalars(select(TrainingJob))]
    assert len(rows) >= 2
    assert not [r for r in rows if TOKEN in r]
