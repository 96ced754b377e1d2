"""Backpressure: past ``SLOTFILL_MAX_CONCURRENCY`` the server answers 503 with ``Retry-After``
in the one error shape instead of queueing, while ``/livez`` and ``/readyz`` keep answering
200 (they are exempt). One worker, a limit of 2, bursts of concurrent large batches.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_support import migrate
from reliability_support import TEXTS, serve, server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

LIMIT = 2
CONCURRENT = 24
ROUNDS = 3
# 64 texts of ~170 characters: each batch keeps the worker busy for a while.
BATCH = {"texts": [" ".join(TEXTS[i % len(TEXTS)] for i in range(j, j + 5)) for j in range(64)]}


async def _burst(base_url: str) -> tuple[list[tuple[int, dict[str, str], Any, float]], list[int]]:
    answers: list[tuple[int, dict[str, str], Any, float]] = []
    probes: list[int] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=CONCURRENT)

    async def one(client: httpx.AsyncClient) -> None:
        started = time.monotonic()
        response = await client.post("/v1/parse/batch", json=BATCH)
        body = response.json()
        answers.append(
            (response.status_code, dict(response.headers), body, time.monotonic() - started)
        )

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            while not done.is_set() and len(probes) < 2000:
                for path in ("/livez", "/readyz"):
                    probes.append((await client.get(path)).status_code)
                await asyncio.sleep(0.02)

    async def load() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
            for _ in range(ROUNDS):
                await asyncio.gather(*(one(client) for _ in range(CONCURRENT)))
        done.set()

    await asyncio.gather(load(), probe())
    return answers, probes


def test_over_the_limit_answers_503_fast_and_health_stays_up(
    reliability_store: Path, tmp_path: Path, figures: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    migrate(url)
    env = server_env(reliability_store, url, tmp_path / "spill", max_concurrency=LIMIT)
    with serve(env, tmp_path / "server.log", workers=1) as server:
        answers, probes = asyncio.run(_burst(server.base_url))
        after = httpx.post(f"{server.base_url}/v1/parse", json={"text": TEXTS[0]}, timeout=30)
        alive = server.alive()

    ok = [a for a in answers if a[0] == 200]
    shed = [a for a in answers if a[0] == 503]
    figures.record(
        f"backpressure: limit {LIMIT}, {ROUNDS} x {CONCURRENT} concurrent batches",
        requests=len(answers),
        answered_200=len(ok),
        answered_503=len(shed),
        other=len(answers) - len(ok) - len(shed),
        median_ms_200=round(statistics.median(a[3] for a in ok) * 1000) if ok else None,
        median_ms_503=round(statistics.median(a[3] for a in shed) * 1000) if shed else None,
        health_probes=len(probes),
        health_probes_not_200=sum(s != 200 for s in probes),
    )

    assert len(ok) + len(shed) == len(answers) == ROUNDS * CONCURRENT
    assert ok and shed, "the limit never tripped (or nothing got through)"
    for _, headers, body, _ in shed:
        assert headers["retry-after"].isdigit()
        assert headers["content-type"] == "application/json"
        assert body["error"]["code"] == "overloaded" and set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}
    assert probes and all(s == 200 for s in probes)
    assert alive and after.status_code == 200
