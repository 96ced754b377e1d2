"""What a real ``slotfill serve`` writes to its log and stores of its clients.

- Every line it prints is one JSON object with timestamp, level, logger, process and
  request id, the request-log writer's INFO lines included (they were lost), and lines
  logged while serving a request carry that request's id.
- No absolute path of the machine reaches a client in an error message.
- ``X-Forwarded-For`` is not trusted by default: the stored client is the peer address.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_support import AUTH, TOKEN
from app_support import VERSION, build_store, migrate
from reliability_support import log_rows, serve, server_env, wait_for_rows

from models.artifact import WEIGHTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OLDER = "20260101T000000000000Z"  # truncated weights: activating it fails
NEWER = "20260103T000000000000Z"  # what the server starts with (the latest version)
FIELDS = {"timestamp", "level", "logger", "process", "request_id", "message"}

# An unlocked spill file of a process that died: taking it over logs an INFO line.
ORPHAN_ROW = {
    "request_id": "orphaned-row",
    "route": "/v1/parse",
    "client": None,
    "text": "from a worker that died",
    "text_mode": "full",
    "response": None,
    "model_versions": None,
    "latency_ms": 1.0,
    "status_code": 200,
}


def _json_lines(log: str) -> list[dict[str, Any]]:
    lines = [line for line in log.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
        assert isinstance(record, dict) and set(record) >= FIELDS, line
        parsed.append(record)
    return parsed


def test_json_logs_request_ids_hidden_paths_and_untrusted_forwarded_for(
    tiny_tagger_dir: Path, tiny_sentiment_dir: Path, tmp_path: Path
) -> None:
    store = build_store(tmp_path / "store", tiny_tagger_dir, tiny_sentiment_dir)
    shutil.copytree(tiny_tagger_dir, store / "tiny" / NEWER)
    broken = shutil.copytree(tiny_tagger_dir, store / "tiny" / OLDER)
    (broken / WEIGHTS).write_bytes((broken / WEIGHTS).read_bytes()[:100])
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "spill-1-deadbeef0000.jsonl").write_text(json.dumps(ORPHAN_ROW) + "\n")

    env = server_env(store, url, spill, admin_token=TOKEN)
    with (
        serve(env, tmp_path / "server.log", workers=1) as server,
        httpx.Client(base_url=server.base_url, headers=AUTH, timeout=60) as admin,
    ):
        parse = admin.post(
            "/v1/parse",
            json={"text": "book a table for two"},
            headers={"X-Forwarded-For": "198.51.100." + "1" * 190},
        )
        assert parse.status_code == 200, parse.text
        refused = admin.post("/v1/admin/models/tiny/activate", json={"version": OLDER})
        activated = admin.post("/v1/admin/models/tiny/activate", json={"version": VERSION})
        assert wait_for_rows(url, 2, timeout=30) == 2
    records = _json_lines(server.log())

    # The refusal says what is wrong, naming the file without this machine's folders.
    assert refused.status_code == 409, refused.text
    message = refused.json()["error"]["message"]
    assert "checksum" in message and WEIGHTS in message, message
    assert str(tmp_path) not in message and "/tmp/" not in message, message

    # Lines logged while serving the activation carry its request id; start-up lines none.
    assert activated.status_code == 200, activated.text
    [install] = [r for r in records if r["message"] == f"activated tiny@{VERSION}"]
    assert install["logger"] == "slotfill.registry" and install["level"] == "INFO"
    assert isinstance(install["request_id"], str) and len(install["request_id"]) == 32
    ready = [r for r in records if str(r["message"]).startswith("ready in")]
    assert ready and ready[0]["request_id"] is None
    assert {r["process"] for r in records if r["logger"].startswith("slotfill")}

    # The request-log writer's INFO lines reach the log.
    took_over = [r for r in records if "took over spill file" in str(r["message"])]
    assert took_over and took_over[0]["logger"] == "app.request_log", records[-5:]
    assert took_over[0]["level"] == "INFO"

    # The client stored is the peer, not what the client wrote in X-Forwarded-For.
    rows = {row["request_id"]: row for row in log_rows(url)}
    assert rows["orphaned-row"]["text"] == ORPHAN_ROW["text"]
    assert rows[parse.json()["request_id"]]["client"] == "127.0.0.1"
