"""The console's security: sessions, roles, CSRF, expiry, sign-in throttle, escaping."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from admin_support import AUTH, MakeSettings, wait_for
from console_support import PASSWORD, add_account, form_csrf, sign_in
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker

from app.db import Feedback
from app.db.tables import Operator
from app.main import create_app

pytestmark = pytest.mark.timeout(120)
SECRET = "console-test-secret-0123456789"
PAGES = [
    "/console/traffic",
    "/console/review",
    "/console/corrections",
    "/console/train",
    "/console/versions",
    "/console/requests/abc",
    "/console/jobs/abc",
    "/console/versions/confirm?model=demo&version=20260101T000000000001Z&action=activate",
]
FORMS = [
    "/console/signout",
    "/console/requests/abc/correct",
    "/console/corrections/1/accept",
    "/console/corrections/1/reject",
    "/console/train",
    "/console/jobs/abc/cancel",
    "/console/versions/activate",
    "/console/versions/rollback",
]
API = [
    ("GET", "/v1/admin/requests"),
    ("GET", "/v1/admin/review"),
    ("GET", "/v1/admin/feedback/export"),
    ("POST", "/v1/admin/feedback/1/accept"),
    ("POST", "/v1/admin/feedback/1/reject"),
]


@pytest.fixture
def console(make_settings: MakeSettings, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    add_account(sessions, "anna", "annotator")
    add_account(sessions, "adam", "admin")
    with TestClient(create_app(make_settings(session_secret=SECRET))) as client:
        yield client


def _routes_with_a_session(client: TestClient) -> None:
    """Guards the refusals below against passing vacuously: signed in, pages answer."""
    sign_in(client, "adam")
    assert client.get("/console/review").status_code == 200
    assert client.get("/v1/admin/requests").status_code == 200


def test_no_page_and_no_console_route_without_a_session(console: TestClient) -> None:
    for path in PAGES:
        response = console.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/signin"
    for path in FORMS:
        response = console.post(path, data={"csrf": "x"}, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/signin"
    for method, path in API:
        response = console.request(method, path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthorized"
    _routes_with_a_session(console)


def test_the_session_cookie_is_signed_httponly_strict_and_expires(console: TestClient) -> None:
    page = console.get("/console/signin")
    response = console.post(
        "/console/signin",
        data={"name": "anna", "password": PASSWORD, "csrf": form_csrf(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("slotfill_session=")
    )
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "max-age", "samesite"} <= attributes
    assert "samesite=strict" in cookie.lower()


def test_an_annotator_cannot_train_activate_or_accept(
    console: TestClient, sessions: sessionmaker[Session]
) -> None:
    csrf = sign_in(console, "anna")
    forms = {
        "/console/train": {"model": "demo", "dataset": "demo", "epochs": "1"},
        "/console/versions/activate": {"model": "demo", "version": "20260101T000000000001Z"},
        "/console/versions/rollback": {"model": "demo"},
        "/console/corrections/1/accept": {},
        "/console/corrections/1/reject": {},
    }
    for path, data in forms.items():
        response = console.post(path, data=data | {"csrf": csrf})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    header = {"X-CSRF-Token": csrf}
    assert console.post("/v1/admin/feedback/1/accept", headers=header).status_code == 403
    assert console.get("/v1/admin/feedback/export").status_code == 403
    assert (
        console.get(
            "/console/versions/confirm?model=demo&version=20260101T000000000001Z&action=activate"
        ).status_code
        == 403
    )
    # What annotators may do works.
    assert console.get("/v1/admin/review").status_code == 200
    with sessions() as session:
        assert session.query(Feedback).count() == 0


def test_a_form_without_the_right_csrf_token_is_refused(console: TestClient) -> None:
    csrf = sign_in(console, "adam")
    for token in ("", "wrong", csrf[:-1]):
        response = console.post("/console/versions/rollback", data={"model": "demo", "csrf": token})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "csrf_failed"
    # JSON routes with a session need the token in a header; the Bearer token needs none.
    assert console.post("/v1/admin/feedback/999/accept").status_code == 403
    assert (
        console.post("/v1/admin/feedback/999/accept", headers={"X-CSRF-Token": csrf}).json()[
            "error"
        ]["code"]
        == "feedback_not_found"
    )
    console.cookies.clear()
    assert console.post("/v1/admin/feedback/999/accept", headers=AUTH).status_code == 404
    # The sign-in form too: its token must match its cookie.
    response = console.post(
        "/console/signin", data={"name": "adam", "password": PASSWORD, "csrf": "forged"}
    )
    assert response.status_code == 403
    assert "slotfill_session" not in response.cookies


def test_a_link_cannot_put_its_own_note_on_a_page(console: TestClient) -> None:
    csrf = sign_in(console, "adam")
    forged = console.get("/console/review?note=Your+session+expired%2C+call+555-0100")
    assert forged.status_code == 200 and "555-0100" not in forged.text
    signed_out = console.post("/console/signout", data={"csrf": csrf})  # follows the redirect
    assert "Signed out." in signed_out.text  # the console's own notes are signed and shown


def _cookie(operator_id: int, epoch: int, age_s: int) -> str:
    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_s

    serializer = URLSafeTimedSerializer(SECRET, salt="slotfill-console", signer=Signer)
    return serializer.dumps({"o": operator_id, "e": epoch, "c": "t"})


def test_an_expired_session_or_a_signed_out_one_is_refused(
    console: TestClient, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        adam = session.query(Operator).filter_by(name="adam").one()
        operator_id, epoch = adam.id, adam.session_epoch
    console.cookies.set("slotfill_session", _cookie(operator_id, epoch, 60))
    assert console.get("/console/review", follow_redirects=False).status_code == 200
    console.cookies.set("slotfill_session", _cookie(operator_id, epoch, 9 * 3600))  # > 8 h
    assert console.get("/console/review", follow_redirects=False).status_code == 303
    assert console.get("/v1/admin/review").status_code == 401

    console.cookies.clear()
    csrf = sign_in(console, "adam")
    kept = console.cookies.get("slotfill_session")
    assert kept
    response = console.post("/console/signout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    console.cookies.set("slotfill_session", kept)  # replaying the cookie after sign-out
    assert console.get("/console/review", follow_redirects=False).status_code == 303


def test_five_failed_sign_ins_in_a_minute_lock_the_account(console: TestClient) -> None:
    for _ in range(5):
        page = console.get("/console/signin")
        response = console.post(
            "/console/signin",
            data={"name": "adam", "password": "wrong password", "csrf": form_csrf(page.text)},
        )
        assert response.status_code == 401
    page = console.get("/console/signin")
    response = console.post(
        "/console/signin",
        data={"name": "adam", "password": PASSWORD, "csrf": form_csrf(page.text)},
    )
    assert response.status_code == 429  # even the right password, for the rest of the minute
    assert int(response.headers["retry-after"]) > 0
    assert "slotfill_session" not in response.cookies
    sign_in(console, "anna")  # other accounts are not locked


def test_a_logged_script_shows_as_text_on_every_page(
    console: TestClient, sessions: sessionmaker[Session]
) -> None:
    script = "<script>alert(1)</script>"
    parsed = console.post("/v1/parse", json={"text": script})
    assert parsed.status_code == 200, parsed.text
    request_id = parsed.json()["request_id"]
    wait_for(lambda: console.get("/v1/admin/requests", headers=AUTH).json()["requests"], 10, "log")
    assert console.post("/v1/feedback", json={"request_id": request_id, "intent": "greet"})
    sign_in(console, "adam")
    shown = 0
    for path in [*PAGES[:5], f"/console/requests/{request_id}", "/console/corrections"]:
        page = console.get(path)
        assert page.status_code == 200, path
        assert script not in page.text, path
        assert "<script" not in page.text.lower(), path
        shown += "&lt;script&gt;" in page.text and "&lt;/script&gt;" in page.text
    assert shown >= 3  # the review queue, the correction page, the corrections list (slots
    # may be highlighted inside it, so the escaped tags are looked for one by one)
