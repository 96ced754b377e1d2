"""Model lifecycle faults against real processes: corrupt artifacts that must not be activated,
and a ``slotfill worker`` killed with SIGKILL in the middle of a training job.

Each test runs a real ``slotfill serve`` on a fresh PostgreSQL schema with a writable copy of
the tiny artifacts. Model ``tiny`` at ``VERSION`` is activated explicitly first, so that "the
old version keeps serving" is about the active pointer, not only the newest folder on disk.

* Corrupt activations: a truncated ``model.safetensors``; a manifest whose ``weights_sha256``
  was edited; and weights with a byte flipped *and* the manifest rewritten to match them, which
  only the checksum recorded in the database catches. Each is refused (409
  ``activation_failed`` in the one error shape) while ``/v1/parse`` keeps answering with
  ``VERSION`` and ``GET /v1/admin/models`` keeps it active. A plain flipped byte in the
  weights is covered in process by ``tests/admin/test_jobs_embedded.py::``
  ``test_activation_that_fails_to_load_keeps_the_current_version``; it is not repeated here.
* Killed worker: the job stops heart-beating, the server's version poller fails it once
  ``SLOTFILL_JOB_STALE_SECONDS`` pass, nothing is recorded or activated, and the next job runs
  to ``succeeded`` on a fresh ``slotfill worker --burst``. The test does not kill the trainer
  the worker started: with its parent gone its stdout pipe has no reader, so its next progress
  line (one per epoch) fails with BrokenPipeError and it exits before it could save an
  artifact. The test checks that this happens, and kills the process group in any case.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_support import AUTH, FAST, REDIS_URL, TOKEN, wait_for
from app_support import VERSION, build_store
from reliability_support import REPO_ROOT, serve, server_env
from sqlalchemy.orm import Session, sessionmaker

from app.db import TrainingJob, make_engine, make_session_factory
from models.artifact import MANIFEST, WEIGHTS, file_sha256

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

POLL_S = 0.5  # SLOTFILL_VERSION_POLL_SECONDS: the poller also fails stale jobs
HEARTBEAT_S = 1
# A little above 4 s: the worker's heartbeats must not look stale on a busy 2-core machine.
STALE_S = 5
# Long enough to be killed mid-run: each epoch on the demo data takes well under a second.
LONG = FAST | {"epochs": 1000, "patience": 1000}


def _corrupt_truncated(folder: Path) -> None:
    """Half of ``model.safetensors`` (an interrupted copy)."""
    weights = folder / WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])


def _corrupt_manifest_checksum(folder: Path) -> None:
    """The manifest's ``weights_sha256`` edited by one hex digit."""
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    digest: str = manifest["weights_sha256"]
    manifest["weights_sha256"] = ("1" if digest[0] == "0" else "0") + digest[1:]
    path.write_text(json.dumps(manifest))


def _corrupt_weights_and_manifest(folder: Path) -> None:
    """One byte of the weights flipped and the manifest rewritten to match: the folder is
    consistent on its own, only the checksum recorded in the database tells."""
    weights = folder / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    path = folder / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["weights_sha256"] = file_sha256(weights)
    path.write_text(json.dumps(manifest))


# version -> (what, corrupt it, words the refusal must contain)
CORRUPTIONS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "20260103T000000000001Z": ("truncated weights", _corrupt_truncated, "checksum"),
    "20260103T000000000002Z": ("edited manifest", _corrupt_manifest_checksum, "checksum"),
    "20260103T000000000003Z": (
        "weights and manifest edited",
        _corrupt_weights_and_manifest,
        "differ from the checksum recorded",
    ),
}


def _parse_versions(base_url: str, times: int = 6) -> set[str]:
    """Tagger versions ``/v1/parse`` answered with, one new connection per request (so both
    workers of a two-worker server answer some)."""
    seen = set()
    for _ in range(times):
        response = httpx.post(
            f"{base_url}/v1/parse",
            json={"text": "book a table for two at 7pm"},
            headers={"Connection": "close"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        seen.add(response.json()["model"]["version"])
    return seen


def _tiny(admin: httpx.Client) -> dict[str, Any]:
    """``tiny`` in ``GET /v1/admin/models`` (the listing also records versions on disk)."""
    response = admin.get("/v1/admin/models")
    assert response.status_code == 200, response.text
    [tiny] = [m for m in response.json()["models"] if m["name"] == "tiny"]
    return dict(tiny)


def _activate(admin: httpx.Client, version: str) -> httpx.Response:
    return admin.post("/v1/admin/models/tiny/activate", json={"version": version})


@pytest.mark.timeout(300)
def test_corrupt_artifacts_are_refused_and_the_old_version_keeps_serving(
    tiny_tagger_dir: Path,
    tiny_sentiment_dir: Path,
    pg_log_url: str,
    tmp_path: Path,
    figures: Any,
) -> None:
    store = build_store(tmp_path / "store", tiny_tagger_dir, tiny_sentiment_dir)
    env = server_env(
        store,
        pg_log_url,
        tmp_path / "spill",
        admin_token=TOKEN,
        version_poll_seconds=POLL_S,
    )
    with (
        serve(env, tmp_path / "server.log", workers=2) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH, timeout=60) as admin,
    ):
        activated = _activate(admin, VERSION)
        assert activated.status_code == 200, activated.text
        assert _parse_versions(server.base_url) == {VERSION}

        for version in CORRUPTIONS:
            shutil.copytree(store / "tiny" / VERSION, store / "tiny" / version)
        # Recorded while intact (checksums from their manifests), corrupted on disk after.
        assert [v["version"] for v in _tiny(admin)["versions"]] == [VERSION, *CORRUPTIONS]
        for version, (_, corrupt, _) in CORRUPTIONS.items():
            corrupt(store / "tiny" / version)

        refusals = {version: _activate(admin, version) for version in CORRUPTIONS}
        time.sleep(3 * POLL_S)  # both workers' pollers have looked at the pointer since
        served_after = _parse_versions(server.base_url)
        tiny = _tiny(admin)
    server_log = server.log()

    refused = [v for v, r in refusals.items() if r.status_code == 409]
    figures.record(
        "lifecycle",
        **{
            "corrupt activations refused": f"{len(refused)}/{len(CORRUPTIONS)}",
            "old version served after them": "yes" if served_after == {VERSION} else "no",
        },
    )
    for version, response in refusals.items():
        what, _, words = CORRUPTIONS[version]
        assert response.status_code == 409, (what, response.text)
        body = response.json()
        assert set(body) == {"error"}, (what, body)
        assert set(body["error"]) == {"code", "message"}, (what, body)
        assert body["error"]["code"] == "activation_failed", (what, body)
        message: str = body["error"]["message"]
        assert message.startswith(f"tiny@{version} cannot be activated: "), (what, message)
        assert words in message, (what, message)
    assert served_after == {VERSION}
    assert (tiny["active_version"], tiny["served_version"]) == (VERSION, VERSION), tiny
    assert [v["version"] for v in tiny["versions"] if v["active"]] == [VERSION], tiny
    assert "Traceback" not in server_log, server_log[-3000:]


# --------------------------------------------------------------------------- killed worker


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of ``pid`` from /proc, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return state, int(ppid)


def _trainer_of(worker_pid: int) -> int | None:
    """The ``slotfill.cli train`` child process of ``worker_pid``, if it has one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (_stat(int(entry.name)) or ("", 0))[1] != worker_pid:
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"slotfill.cli" in argv and b"train" in argv:
                return int(entry.name)
    return None


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaps counts as exited)."""
    stat = _stat(pid)
    return stat is None or stat[0] in ("Z", "X")


@contextlib.contextmanager
def _worker(
    env: dict[str, str], log_path: Path, *, burst: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """A ``slotfill worker`` in a process group of its own, which is killed on the way out
    (with any trainer it started, orphaned or not)."""
    command = [sys.executable, "-m", "slotfill.cli", "worker", *(["--burst"] if burst else [])]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _job_status(sessions: sessionmaker[Session], job_id: str) -> str | None:
    """The job's status read from the database, not through the API (whose job routes fail
    stale jobs themselves)."""
    with sessions() as session:
        job = session.get(TrainingJob, job_id)
        return job.status if job is not None else None


def _submit(admin: httpx.Client, hyperparameters: dict[str, Any], activate: str) -> str:
    body = {
        "task": "slots",
        "model": "tiny",
        "dataset": "demo",
        "hyperparameters": hyperparameters,
        "activate": activate,
    }
    response = admin.post("/v1/admin/train", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


@pytest.mark.redis
@pytest.mark.timeout(420)
def test_a_killed_worker_fails_its_job_and_the_next_job_succeeds(
    tiny_tagger_dir: Path,
    tiny_sentiment_dir: Path,
    pg_log_url: str,
    queue_name: str,
    tmp_path: Path,
    figures: Any,
) -> None:
    store = build_store(tmp_path / "store", tiny_tagger_dir, tiny_sentiment_dir)
    (tmp_path / "data").mkdir()
    env = server_env(
        store,
        pg_log_url,
        tmp_path / "spill",
        admin_token=TOKEN,
        data_dir=tmp_path / "data",
        demo_data_dir=REPO_ROOT / "data" / "demo",
        redis_url=REDIS_URL,
        job_queue=queue_name,
        job_heartbeat_seconds=HEARTBEAT_S,
        job_stale_seconds=STALE_S,
        version_poll_seconds=POLL_S,
    )
    engine = make_engine(pg_log_url)
    sessions = make_session_factory(engine)
    try:
        with (
            serve(env, tmp_path / "server.log", workers=1) as server,
            httpx.Client(base_url=server.base_url, headers=AUTH, timeout=60) as admin,
        ):
            activated = _activate(admin, VERSION)
            assert activated.status_code == 200, activated.text

            job_id = _submit(admin, LONG, "always")
            with _worker(env, tmp_path / "worker.log", burst=False) as worker:

                def training() -> dict[str, Any] | None:
                    job: dict[str, Any] = admin.get(f"/v1/admin/jobs/{job_id}").json()
                    assert job["status"] in ("queued", "running"), job
                    return job if job["status"] == "running" and job["progress"] else None

                job = wait_for(training, 120, "the job to report an epoch")
                assert job["worker"] == f"{socket.gethostname()}:{worker.pid}", job
                trainer = wait_for(lambda: _trainer_of(worker.pid), 10, "the trainer process")

                os.kill(worker.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                assert worker.wait(10) == -signal.SIGKILL
                # The orphaned trainer dies at its next progress line (broken pipe).
                wait_for(lambda: _gone(trainer), 60, "the orphaned trainer to exit")
                orphan_s = time.monotonic() - killed_at
                wait_for(
                    lambda: _job_status(sessions, job_id) == "failed",
                    STALE_S + 30,
                    "the server's poller to fail the job",
                )
                failed_s = time.monotonic() - killed_at

            failed = admin.get(f"/v1/admin/jobs/{job_id}").json()
            after_kill = _tiny(admin)
            folders_after_kill = sorted(p.name for p in (store / "tiny").iterdir())
            versions_after_kill = _parse_versions(server.base_url, times=3)

            next_id = _submit(admin, FAST, "always")
            with _worker(env, tmp_path / "burst.log", burst=True) as burst:
                burst_rc = burst.wait(180)
            succeeded = admin.get(f"/v1/admin/jobs/{next_id}").json()
            new = succeeded["result_version"]
            if succeeded["status"] == "succeeded":
                wait_for(
                    lambda: _parse_versions(server.base_url, times=1) == {new},
                    10,
                    "the server to serve the new version",
                )
            after_next = _tiny(admin)
    finally:
        engine.dispose()
    figures.record(
        "lifecycle",
        **{
            "killed-worker job failed": "yes" if failed["status"] == "failed" else "no",
            "killed-worker job failed after (s)": round(failed_s, 1),
            "orphaned trainer exited by itself after (s)": round(orphan_s, 1),
            "versions left by the killed job": len(folders_after_kill) - 1,
            "next job": succeeded["status"],
        },
    )
    worker_log = (tmp_path / "burst.log").read_text(errors="replace")[-3000:]

    # The killed worker's job: failed for want of heartbeats, nothing recorded or activated.
    assert failed["status"] == "failed", failed
    assert failed["error"] == (
        f"the job's worker stopped responding (no heartbeat for {STALE_S:g}s)"
    ), failed
    assert failed["progress"]["epoch"] >= 1, failed
    assert (failed["result_version"], failed["activated"]) == (None, None), failed
    assert after_kill["active_version"] == VERSION, after_kill
    assert [v["version"] for v in after_kill["versions"]] == [VERSION], after_kill
    assert folders_after_kill == [VERSION]  # the orphan saved nothing
    assert versions_after_kill == {VERSION}

    # The next job, on a fresh worker: trained, recorded, activated and served.
    assert burst_rc == 0, worker_log
    assert succeeded["status"] == "succeeded", (succeeded, worker_log)
    assert succeeded["activated"] is True, succeeded
    assert (after_next["active_version"], after_next["previous_version"]) == (new, VERSION)
    assert (after_next["active_version"], after_next["served_version"]) == (new, new), after_next
    assert [v["version"] for v in after_next["versions"]] == [VERSION, new], after_next
