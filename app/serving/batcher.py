"""Micro-batching: concurrent parse requests share one pass through the networks.

Handlers (on the event loop) hand their texts to a batcher and await the result. It takes
whatever is waiting (never waiting for more), groups it by the model versions each request
resolved, runs one batch per group and hands every request its own results. With one
request in flight this costs next to nothing; with many, the per-call overhead of the
networks is paid once per batch instead of once per request. Two kinds:

* :class:`LoopBatcher` (the numpy engine) runs the batches on the event loop itself, in a
  callback scheduled by the first request of a loop iteration, after the handlers of the
  requests read in that iteration have queued theirs. NumPy at these sizes holds the GIL,
  so a thread would only add hand-offs: the service benchmark (2 workers, 3 + 3 alternated
  runs) gave 1,400 / 1,365 / 1,325 requests/s at concurrency 32 against 1,256 / 1,309 /
  1,298 with the thread, and a p50 of 2.01-2.09 ms against 2.21-2.30 ms at concurrency 1.
* :class:`MicroBatcher` (the torch engine) runs them on a thread of its own: torch releases
  the GIL in its kernels (plus a thread for the sentiment network, see
  ``app.serving.parsing.run_models``), and runs there instead of on every pool thread at
  once. A batch's awaiting handlers are woken with one call into their event loop, not one
  per request (each call writes to the loop's wake-up pipe: 5% of a worker's time at
  concurrency 32 when the numpy engine batched on this thread).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.serving.registry import LoadedModel
from app.serving.results import ParseResult

log = logging.getLogger("slotfill.batcher")
Results = list[ParseResult]
# (tagger, sentiment, texts, n_best per text: 0 = no hypotheses, requested slots per text)
RunBatch = Callable[
    [LoadedModel, LoadedModel | None, Sequence[str], Sequence[int], Sequence[Sequence[str]]],
    Results,
]


@dataclass
class _Job:
    tagger: LoadedModel
    sentiment: LoadedModel | None
    texts: Sequence[str]
    n_best: int = 0
    requested: Sequence[str] = ()  # the dialogue context of every text of the job
    future: Future[Results] = field(default_factory=Future)
    # An awaiting handler's future on its event loop (parse_async), set with ``future``.
    waiter: asyncio.Future[Results] | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        return self.tagger.ref, self.sentiment.ref if self.sentiment else None


# Each job with its results, or the error of its batch.
Answers = list[tuple[_Job, Results | BaseException]]


class Batcher(Protocol):
    """What the parse routes use of a batcher."""

    async def parse_async(
        self,
        tagger: LoadedModel,
        sentiment: LoadedModel | None,
        texts: Sequence[str],
        n_best: int = 0,
        requested: Sequence[str] = (),
    ) -> Results: ...

    def close(self) -> None: ...


def _groups(jobs: Sequence[_Job]) -> list[list[_Job]]:
    """Jobs by the model versions they resolved, in order of arrival."""
    groups: dict[tuple[str, str | None], list[_Job]] = {}
    for job in jobs:
        groups.setdefault(job.key, []).append(job)
    return list(groups.values())


class LoopBatcher:
    """Runs ``run_batch`` for the jobs queued in one event-loop iteration, on the loop."""

    def __init__(self, run_batch: RunBatch, max_texts: int = 64) -> None:
        self._run_batch = run_batch
        self._max_texts = max_texts
        self._pending: list[_Job] = []
        self._scheduled = False

    async def parse_async(
        self,
        tagger: LoadedModel,
        sentiment: LoadedModel | None,
        texts: Sequence[str],
        n_best: int = 0,
        requested: Sequence[str] = (),
    ) -> Results:
        """Results for ``texts``: queued, and run by the next batch on this loop. A handler
        cancelled before its batch runs is left out of it."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Results] = loop.create_future()
        self._pending.append(_Job(tagger, sentiment, texts, n_best, requested, waiter=waiter))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run)
        return await waiter

    def close(self) -> None:
        """Nothing to stop: batches run while the loop does."""

    def _run(self) -> None:
        """One batch of up to ``max_texts`` texts (at least one job); what is left waits for
        the next callback, so the loop reads and writes sockets in between."""
        jobs = [job for job in self._pending if not _waiter(job).done()]  # cancelled: skipped
        taken, size = 0, 0
        for job in jobs:
            if taken and size + len(job.texts) > self._max_texts:
                break
            taken, size = taken + 1, size + len(job.texts)
        self._pending = jobs[taken:]
        self._scheduled = bool(self._pending)
        if self._scheduled:
            asyncio.get_running_loop().call_soon(self._run)
        for group in _groups(jobs[:taken]):
            _run_group(self._run_batch, group, self._deliver)

    def _deliver(self, answers: Answers) -> None:
        _settle([(_waiter(job), answer) for job, answer in answers])


def _waiter(job: _Job) -> asyncio.Future[Results]:
    assert job.waiter is not None, "a LoopBatcher job has a waiter"
    return job.waiter


class MicroBatcher:
    """Runs ``run_batch`` for groups of queued jobs on one background thread."""

    def __init__(self, run_batch: RunBatch, max_texts: int = 64) -> None:
        self._run_batch = run_batch
        self._max_texts = max_texts
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="micro-batcher", daemon=True)
        self._thread.start()

    def submit(
        self,
        tagger: LoadedModel,
        sentiment: LoadedModel | None,
        texts: Sequence[str],
        n_best: int = 0,
        requested: Sequence[str] = (),
    ) -> Future[Results]:
        """Queue ``texts``; the future holds their results (or the error of their batch)."""
        job = _Job(tagger, sentiment, texts, n_best, requested)
        self._queue.put(job)
        return job.future

    async def parse_async(
        self,
        tagger: LoadedModel,
        sentiment: LoadedModel | None,
        texts: Sequence[str],
        n_best: int = 0,
        requested: Sequence[str] = (),
    ) -> Results:
        """Results for ``texts``, awaited on the event loop: no thread-pool hand-off. A
        cancelled handler cancels its job if the batching thread has not taken it yet."""
        waiter: asyncio.Future[Results] = asyncio.get_running_loop().create_future()
        job = _Job(tagger, sentiment, texts, n_best, requested, waiter=waiter)
        waiter.add_done_callback(lambda w: job.future.cancel() if w.cancelled() else None)
        self._queue.put(job)
        return await waiter

    def close(self) -> None:
        """Stop the thread after the jobs already queued."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        """Take what is waiting, run it, hand out the results; until ``close``.

        With nothing more waiting after the first job, the thread gives up the GIL once
        (``time.sleep(0)``) before it runs the batch: this thread wakes as soon as a handler
        queues a job, typically while the event loop is still reading the requests that
        arrived with it, and would otherwise run a batch of one and make the others wait a
        whole batch. At concurrency 32 (2 workers, wrk, measured when the numpy engine still
        batched on this thread) batches of one went from 487 of 1,700 to 24 of 1,000 and
        throughput from 1,370 to 1,477 requests/s; with nothing else in flight the event
        loop is idle and gives the GIL straight back."""
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, size, stop = [first], len(first.texts), False
            yielded = False
            while size < self._max_texts:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    if not yielded:  # once: see _loop's docstring
                        yielded = True
                        time.sleep(0)
                        continue
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                size += len(nxt.texts)
            # A request whose handler was cancelled (client gone, shutdown) is skipped; the
            # others are marked running, so they can no longer be cancelled and setting their
            # results below cannot fail.
            for group in _groups([j for j in jobs if j.future.set_running_or_notify_cancel()]):
                _run_group(self._run_batch, group, self._deliver)
            if stop:
                return

    def _deliver(self, answers: Answers) -> None:
        for job, answer in answers:
            if isinstance(answer, BaseException):
                job.future.set_exception(answer)
            else:
                job.future.set_result(answer)
        _wake(answers)


def _run_group(run_batch: RunBatch, group: list[_Job], deliver: Callable[[Answers], None]) -> None:
    """One batch for ``group`` (jobs of the same model versions); a failing batch is run
    again one job at a time, so that only the failing request gets the error."""
    texts = [text for job in group for text in job.texts]
    n_best = [job.n_best for job in group for _ in job.texts]
    requested = [job.requested for job in group for _ in job.texts]
    try:
        results = run_batch(group[0].tagger, group[0].sentiment, texts, n_best, requested)
    except Exception as err:
        if len(group) == 1:
            deliver([(group[0], err)])
            return
        for job in group:
            _run_group(run_batch, [job], deliver)
        return
    answers: Answers = []
    start = 0
    for job in group:
        answers.append((job, results[start : start + len(job.texts)]))
        start += len(job.texts)
    deliver(answers)


def _wake(answers: Answers) -> None:
    """Hand each awaiting handler its answer: one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Results], Any]]] = {}
    for job, answer in answers:
        if job.waiter is not None:
            by_loop.setdefault(job.waiter.get_loop(), []).append((job.waiter, answer))
    for loop, items in by_loop.items():
        with suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[asyncio.Future[Results], Results | BaseException]]) -> None:
    """On the event loop: each waiter gets its results or its batch's error (a handler
    cancelled meanwhile is left alone)."""
    for waiter, answer in items:
        if waiter.done():
            continue
        if isinstance(answer, BaseException):
            waiter.set_exception(answer)
        else:
            waiter.set_result(answer)
