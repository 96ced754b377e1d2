"""End to end in a real browser (Playwright driving Debian's Chromium) against a real
``slotfill serve``: an annotator corrects a request it just sent; an admin accepts it, trains a
new version with it, watches the learning curve, compares, activates, sees ``/v1/parse`` give
the corrected slot, and rolls back. Screenshots of each page go to ``build/console/``.

The correction is made learnable by repetition: besides the one made in the browser, the same
utterance is sent and corrected (through ``POST /v1/feedback``, accepted over the JSON API)
a few more times, so that a few epochs surely learn the new slot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_support import AUTH, REPO_ROOT, TOKEN, migrate, wait_for

from benchmarks.servers import Server, free_port, serve_command, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO_ROOT / "build" / "console"
TEXT = "please zorble my wuggle tonight"
COPIES = 12  # corrections of TEXT that train (the browser's one included)
PASSWORD = "correct horse battery"


def _chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = "Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _add_user(env: dict[str, str], name: str, role: str) -> None:
    command = [sys.executable, "-m", "slotfill.cli", "user", "add", name, "--role", role]
    done = subprocess.run(
        [*command, "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        text=True,
        capture_output=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def server(store: Path, tmp_path: Path) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    migrate(url)
    env = os.environ | {
        "SLOTFILL_MODEL_STORE": str(store),
        "SLOTFILL_DATABASE_URL": url,
        "SLOTFILL_DATA_DIR": str(tmp_path / "data"),
        "SLOTFILL_DEMO_DATA_DIR": str(REPO_ROOT / "data" / "demo"),
        "SLOTFILL_ADMIN_TOKEN": TOKEN,
        "SLOTFILL_SESSION_SECRET": "browser-test-secret-5d1e",
        "SLOTFILL_LOG_SPILL_DIR": str(tmp_path / "spill"),
        "SLOTFILL_VERSION_POLL_SECONDS": "0.5",
        "SLOTFILL_JOB_POLL_SECONDS": "0.3",
        "SLOTFILL_JOB_HEARTBEAT_SECONDS": "0.5",
    }
    _add_user(env, "anna", "annotator")
    _add_user(env, "adam", "admin")
    port = free_port()
    started = start(serve_command(port, 1), port, 1, env, tmp_path / "server.log", timeout=120)
    try:
        yield started
    finally:
        stop(started)


def _parse(base: str, text: str = TEXT) -> dict[str, Any]:
    response = httpx.post(f"{base}/v1/parse", json={"text": text}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _logged(base: str, request_id: str) -> bool:
    found = httpx.get(f"{base}/v1/admin/requests", params={"q": "wuggle"}, headers=AUTH).json()
    return any(r["request_id"] == request_id for r in found["requests"])


def test_review_correct_accept_train_compare_activate_roll_back(server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = _chromium()
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    base = server.base_url
    before = _parse(base)
    old_version = before["model"]["version"]
    assert "gadget" not in {s["slot"] for s in before["slots"]}  # a slot it never saw
    wait_for(lambda: _logged(base, before["request_id"]), 10, "the request in the log")
    start = TEXT.index("wuggle")
    spans = [{"slot": "gadget", "start": start, "end": start + len("wuggle")}]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def shot(name: str) -> None:
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

        def sign_in(name: str) -> None:
            page.goto(f"{base}/console")
            expect(page).to_have_url(f"{base}/console/signin")
            page.fill("input[name=name]", name)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{base}/console/review")

        # The annotator finds the request in the review queue and corrects a slot.
        sign_in("anna")
        shot("01-signed-in")
        page.fill("input[name=q]", "wuggle")
        page.click("text=Filter")
        row = page.locator(f"tr[data-request-id='{before['request_id']}']")
        expect(row).to_be_visible()
        shot("02-review-queue")
        row.locator("text=Correct").click()
        for field in page.locator("input[name^=tag]").all():
            field.fill("")
        page.fill("input[aria-label='slot of wuggle']", "gadget")
        page.fill("input[name=intent]", "complaint")
        shot("03-correct")
        page.click("text=Save correction")
        expect(page.locator(".note")).to_contain_text("pending")
        page.click("text=Sign out")
        expect(page.locator(".note")).to_have_text("Signed out.")

        # More of the same correction through the public route, accepted over the JSON API.
        for _ in range(COPIES - 1):
            request_id = _parse(base)["request_id"]
            wait_for(lambda rid=request_id: _logged(base, rid), 10, "the request in the log")
            body = {"request_id": request_id, "slots": spans, "intent": "complaint"}
            receipt = httpx.post(f"{base}/v1/feedback", json=body).json()
            accepted = httpx.post(f"{base}/v1/admin/feedback/{receipt['id']}/accept", headers=AUTH)
            assert accepted.status_code == 200, accepted.text

        # The admin accepts the annotator's correction.
        sign_in("adam")
        page.click("text=Corrections")
        mine = page.locator(f"tr.correction[data-request-id='{before['request_id']}']")
        expect(mine).to_contain_text("anna")
        shot("04-corrections")
        mine.locator("text=Accept").click()
        expect(page.locator(".note")).to_contain_text("accepted")

        # Trains a new version on the demo data plus the accepted corrections.
        page.click("text=Train")
        page.select_option("select[name=dataset]", "demo")
        page.fill("input[name=epochs]", "8")
        page.click("text=Start training")
        expect(page.locator(".job-status")).to_have_text("succeeded", timeout=400_000)
        expect(page.locator(".curve polyline")).to_have_count(2)
        new_version = page.locator(".job-version").inner_text()
        assert new_version != old_version
        shot("05-training-job")

        # Compares the versions, then activates the new one after the confirmation.
        page.click("text=Versions")
        shot("06-versions")
        page.select_option("select[name=a]", old_version)
        page.select_option("select[name=b]", new_version)
        page.click("button:text('Compare')")
        expect(page.locator("table.scores")).to_contain_text("intent accuracy")
        shot("07-compare")
        page.click(f"text=Activate {new_version}…")
        shot("08-confirm")
        page.click("text=Confirm activate")
        expect(page.locator(".active-version")).to_have_text(new_version)

        after = _parse(base)
        assert after["model"]["version"] == new_version
        assert [(s["slot"], s["start"], s["end"]) for s in after["slots"]] == [
            ("gadget", start, start + len("wuggle"))
        ]

        # Rolls back.
        page.click(f"text=Roll back to {old_version}…")
        page.click("text=Confirm rollback")
        expect(page.locator(".active-version")).to_have_text(old_version)
        shot("09-rolled-back")
        page.click("text=Traffic")
        expect(page.locator("section.model").first).to_be_visible()
        shot("10-traffic")
        browser.close()
    assert _parse(base)["model"]["version"] == old_version
