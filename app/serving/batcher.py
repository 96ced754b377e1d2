"""Micro-batching: concurrent parse requests share one pass through the networks.

Handlers (on the event loop) hand their texts to one batching thread per worker process
and await the result. That thread takes whatever is waiting (never waiting for more),
groups it by the model versions each request resolved, runs one batch per group and hands
every request its own results. With one request in flight this adds only a thread
hand-off; with many, the per-call overhead of the networks is paid once per batch instead
of once per request, and torch runs on this thread (plus one for the sentiment network, see
``app.serving.parsing.run_models``) instead of on every pool thread at once.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

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

    @property
    def key(self) -> tuple[str, str | None]:
        return self.tagger.ref, self.sentiment.ref if self.sentiment else None


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
        """Results for ``texts``, awaited on the event loop: no thread-pool hand-off."""
        future = self.submit(tagger, sentiment, texts, n_best, requested)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the thread after the jobs already queued."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, size, stop = [first], len(first.texts), False
            while size < self._max_texts:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                jobs.append(nxt)
                size += len(nxt.texts)
            groups: dict[tuple[str, str | None], list[_Job]] = {}
            for job in jobs:
                # A request whose handler was cancelled (client gone, shutdown) is skipped;
                # the others are marked running, so they can no longer be cancelled and
                # setting their results below cannot fail.
                if job.future.set_running_or_notify_cancel():
                    groups.setdefault(job.key, []).append(job)
            for group in groups.values():
                self._run_group(group)
            if stop:
                return

    def _run_group(self, group: list[_Job]) -> None:
        texts = [text for job in group for text in job.texts]
        n_best = [job.n_best for job in group for _ in job.texts]
        requested = [job.requested for job in group for _ in job.texts]
        try:
            results = self._run_batch(group[0].tagger, group[0].sentiment, texts, n_best, requested)
        except Exception as err:
            if len(group) == 1:
                group[0].future.set_exception(err)
                return
            for job in group:  # isolate the failing request; the others still succeed
                self._run_group([job])
            return
        start = 0
        for job in group:
            job.future.set_result(results[start : start + len(job.texts)])
            start += len(job.texts)
