"""Helpers of the console tests: accounts and signing in through the real form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.operating.console.accounts import add_operator

PASSWORD = "correct horse battery"


def add_account(sessions: sessionmaker[Session], name: str, role: str) -> None:
    with sessions() as session, session.begin():
        add_operator(session, name, role, PASSWORD)


def form_csrf(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's CSRF token (from the page it lands on)."""
    page = client.get("/console/signin")
    response = client.post(
        "/console/signin",
        data={"name": name, "password": password, "csrf": form_csrf(page.text)},
        follow_redirects=True,
    )
    assert response.status_code == 200, response.text
    assert str(response.url).endswith("/console/review"), response.url
    return form_csrf(response.text)
