"""Micro-batching: concurrent requests share batches yet each gets exactly its own answer."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from app_support import VERSION
from fastapi.testclient import TestClient

from app.serving.batcher import LoopBatcher, MicroBatcher
from app.serving.parsing import run_models
from app.serving.registry import load_version
from app.serving.results import ParseResult

TEXTS = [
    "book a table for two at 7pm tomorrow",
    "my flight to denver was cancelled again",
    "hello",
    "Book a table for 4 people at 8:30pm, please!",
    "thanks so much",
    "a table for   six tonight",
]


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "request_id"}


def test_concurrent_requests_get_the_same_answers_as_sequential_ones(client: TestClient) -> None:
    expected = {t: _strip(client.post("/v1/parse", json={"text": t}).json()) for t in TEXTS}
    work = TEXTS * 8
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda t: client.post("/v1/parse", json={"text": t}), work))
    assert [a.status_code for a in answers] == [200] * len(work)
    for text, answer in zip(work, answers, strict=True):
        got = _strip(answer.json())
        assert got["text"] == text
        assert got["intent"]["name"] == expected[text]["intent"]["name"]
        assert [(s["slot"], s["start"], s["end"]) for s in got["slots"]] == [
            (s["slot"], s["start"], s["end"]) for s in expected[text]["slots"]
        ]
        for a, b in zip(got["slots"], expected[text]["slots"], strict=True):
            assert a["confidence"] == pytest.approx(b["confidence"], abs=1e-5)


def test_a_failing_request_does_not_fail_the_others_in_its_batch(model_store: Path) -> None:
    tagger = load_version(model_store, "tiny", VERSION)
    sentiment = load_version(model_store, "tiny-sentiment", VERSION)
    gate = threading.Event()

    def run_batch(t: Any, s: Any, texts: Any, n_best: Any, requested: Any) -> list[ParseResult]:
        gate.wait(5)  # hold the first batch so the others queue up behind it
        return run_models(t, s, texts, n_best, requested)

    batcher = MicroBatcher(run_batch)
    try:
        first = batcher.submit(tagger, sentiment, ["hello"])
        good = batcher.submit(tagger, sentiment, ["book a table for two"])
        bad = batcher.submit(tagger, sentiment, ["   "])  # no tokens: ValueError
        also_good = batcher.submit(tagger, sentiment, ["thanks"])
        gate.set()
        assert first.result(10)[0].text == "hello"
        assert good.result(10)[0].text == "book a table for two"
        assert also_good.result(10)[0].text == "thanks"
        with pytest.raises(ValueError, match="at least one token"):
            bad.result(10)
    finally:
        batcher.close()


def test_sentiment_on_its_own_thread_gives_the_same_results(model_store: Path) -> None:
    tagger = load_version(model_store, "tiny", VERSION)
    sentiment = load_version(model_store, "tiny-sentiment", VERSION)
    with ThreadPoolExecutor(max_workers=1) as pool:
        for texts in (TEXTS, TEXTS[:1]):
            assert run_models(tagger, sentiment, texts, pool=pool) == run_models(
                tagger, sentiment, texts
            )
        # A text without tokens still fails the whole call, whichever network sees it first.
        with pytest.raises(ValueError, match="at least one token"):
            run_models(tagger, sentiment, ["   "], pool=pool)


def test_a_cancelled_request_is_skipped_and_the_batcher_keeps_serving(model_store: Path) -> None:
    """An awaiting handler that is cancelled cancels its future; the batching thread must
    neither run it nor die setting its result."""
    tagger = load_version(model_store, "tiny", VERSION)
    gate = threading.Event()
    texts_run: list[str] = []

    def run_batch(t: Any, s: Any, texts: Any, n_best: Any, requested: Any) -> list[ParseResult]:
        gate.wait(5)  # hold the first batch so the next requests queue up behind it
        texts_run.extend(texts)
        return run_models(t, s, texts, n_best, requested)

    batcher = MicroBatcher(run_batch)
    try:
        first = batcher.submit(tagger, None, ["hello"])
        time.sleep(0.2)  # the batching thread has taken "hello" and waits at the gate
        cancelled = batcher.submit(tagger, None, ["book a table for two"])
        queued = batcher.submit(tagger, None, ["thanks"])
        assert cancelled.cancel()
        gate.set()
        assert first.result(10)[0].text == "hello"
        assert queued.result(10)[0].text == "thanks"
        assert "book a table for two" not in texts_run
        assert batcher.submit(tagger, None, ["hello again"]).result(10)[0].text == "hello again"
    finally:
        batcher.close()


def test_awaiting_handlers_of_a_batch_are_woken_with_one_call(model_store: Path) -> None:
    """parse_async: each handler gets its own results, a failing request its own error, a
    cancelled one is skipped; the batch's handlers are woken by one call into their loop
    (one per request costs a write to the loop's wake-up pipe each)."""
    tagger = load_version(model_store, "tiny", VERSION)
    gate = threading.Event()
    texts_run: list[str] = []

    def run_batch(t: Any, s: Any, texts: Any, n_best: Any, requested: Any) -> list[ParseResult]:
        gate.wait(5)
        texts_run.extend(texts)
        return run_models(t, s, texts, n_best, requested)

    async def scenario(batcher: MicroBatcher) -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        wakes = 0
        real = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal wakes
            wakes += 1
            return real(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        first = asyncio.ensure_future(batcher.parse_async(tagger, None, ["hello"]))
        await asyncio.sleep(0.2)  # the thread has taken "hello" and waits at the gate
        wakes = 0
        queued = [
            asyncio.ensure_future(batcher.parse_async(tagger, None, [text])) for text in TEXTS
        ]
        cancelled = asyncio.ensure_future(batcher.parse_async(tagger, None, ["never run"]))
        await asyncio.sleep(0)  # every job is queued
        cancelled.cancel()
        await asyncio.sleep(0)
        gate.set()
        answers = await asyncio.gather(first, *queued, return_exceptions=True)
        return answers, wakes

    batcher = MicroBatcher(run_batch)
    try:
        answers, wakes = asyncio.run(scenario(batcher))
    finally:
        batcher.close()
    assert [a[0].text for a in answers] == ["hello", *TEXTS]
    assert "never run" not in texts_run
    # Two batches ("hello", then the six queued behind it): one wake-up each, not seven.
    assert wakes == 2


def test_a_failing_awaited_request_gets_its_own_error(model_store: Path) -> None:
    tagger = load_version(model_store, "tiny", VERSION)

    async def scenario(batcher: MicroBatcher) -> list[Any]:
        jobs = [batcher.parse_async(tagger, None, [text]) for text in ("hello", "   ", "thanks")]
        return await asyncio.gather(*jobs, return_exceptions=True)

    batcher = MicroBatcher(run_models)
    try:
        good, bad, also_good = asyncio.run(scenario(batcher))
    finally:
        batcher.close()
    assert good[0].text == "hello" and also_good[0].text == "thanks"
    assert isinstance(bad, ValueError) and "at least one token" in str(bad)


# LoopBatcher: the numpy engine's batches, run on the event loop.


def _recording(calls: list[list[str]]) -> Any:
    def run_batch(t: Any, s: Any, texts: Any, n_best: Any, requested: Any) -> list[ParseResult]:
        calls.append(list(texts))
        return run_models(t, s, texts, n_best, requested)

    return run_batch


def test_the_requests_of_one_loop_iteration_make_one_batch(model_store: Path) -> None:
    tagger = load_version(model_store, "tiny", VERSION)
    sentiment = load_version(model_store, "tiny-sentiment", VERSION)
    calls: list[list[str]] = []
    batcher = LoopBatcher(_recording(calls))

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(batcher.parse_async(tagger, sentiment, [t]) for t in TEXTS))

    answers = asyncio.run(scenario())
    assert calls == [TEXTS]
    assert [a[0].text for a in answers] == TEXTS
    alone = run_models(tagger, sentiment, TEXTS)
    assert [a[0] for a in answers] == alone


def test_a_loop_batch_holds_at_most_max_texts(model_store: Path) -> None:
    tagger = load_version(model_store, "tiny", VERSION)
    calls: list[list[str]] = []
    batcher = LoopBatcher(_recording(calls), max_texts=4)

    async def scenario() -> list[Any]:
        jobs = [batcher.parse_async(tagger, None, [t]) for t in TEXTS]  # 6 of one text
        jobs.append(batcher.parse_async(tagger, None, TEXTS[:5]))  # more than 4 alone: runs
        return await asyncio.gather(*jobs)

    answers = asyncio.run(scenario())
    assert calls == [TEXTS[:4], TEXTS[4:], TEXTS[:5]]
    assert [r.text for a in answers for r in a] == TEXTS + TEXTS[:5]


def test_a_loop_batch_isolates_a_failing_request_and_groups_by_model(model_store: Path) -> None:
    tiny = load_version(model_store, "tiny", VERSION)
    tiny2 = load_version(model_store, "tiny2", VERSION)
    calls: list[list[str]] = []
    batcher = LoopBatcher(_recording(calls))

    async def scenario() -> list[Any]:
        jobs = [
            batcher.parse_async(tiny, None, ["hello"]),
            batcher.parse_async(tiny2, None, ["book a table"]),
            batcher.parse_async(tiny, None, ["   "]),  # no tokens: ValueError
            batcher.parse_async(tiny, None, ["thanks"]),
        ]
        return await asyncio.gather(*jobs, return_exceptions=True)

    hello, table, bad, thanks = asyncio.run(scenario())
    assert hello[0].text == "hello" and thanks[0].text == "thanks"
    assert table[0].text == "book a table" and table[0].model.ref == tiny2.ref
    assert isinstance(bad, ValueError) and "at least one token" in str(bad)
    # tiny's group failed as a whole, then ran one request at a time; tiny2's on its own.
    assert calls == [["hello", "   ", "thanks"], ["hello"], ["   "], ["thanks"], ["book a table"]]


def test_a_cancelled_handler_is_left_out_of_its_loop_batch(model_store: Path) -> None:
    tagger = load_version(model_store, "tiny", VERSION)
    calls: list[list[str]] = []
    batcher = LoopBatcher(_recording(calls))

    async def scenario() -> tuple[Any, Any]:
        kept = asyncio.ensure_future(batcher.parse_async(tagger, None, ["hello"]))
        gone = asyncio.ensure_future(batcher.parse_async(tagger, None, ["never run"]))
        await asyncio.sleep(0)  # both queued; their batch runs after this coroutine yields
        gone.cancel()
        return await kept, await asyncio.gather(gone, return_exceptions=True)

    kept, (gone,) = asyncio.run(scenario())
    assert kept[0].text == "hello"
    assert isinstance(gone, asyncio.CancelledError)
    assert calls == [["hello"]]
