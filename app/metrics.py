"""Prometheus metrics, one registry per app (tests build several apps in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.serving.registry import ModelRegistry
from app.serving.request_log.writer import RequestLogWriter


class _LiveCollector(Collector):
    """Values read at scrape time: active versions and the request-log writer's counters."""

    def __init__(
        self,
        registry: Callable[[], ModelRegistry | None],
        writer: Callable[[], RequestLogWriter | None],
    ) -> None:
        self._registry, self._writer = registry, writer

    def collect(self) -> Iterator[Metric]:
        versions = GaugeMetricFamily(
            "slotfill_model_active",
            "Active model version (1 per served model)",
            labels=["name", "version"],
        )
        registry = self._registry()
        for model in registry.all().values() if registry else []:
            versions.add_metric([model.name, model.version], 1.0)
        yield versions
        writer = self._writer()
        depth = GaugeMetricFamily("slotfill_log_queue_depth", "Request-log rows waiting in memory")
        depth.add_metric([], float(writer.queue_depth if writer else 0))
        yield depth
        dropped = CounterMetricFamily(
            "slotfill_log_dropped_rows", "Request-log rows that could not be kept"
        )
        dropped.add_metric([], float(writer.dropped_rows if writer else 0))
        yield dropped
        spilled = CounterMetricFamily(
            "slotfill_log_spilled_rows", "Request-log rows written to the spill file"
        )
        spilled.add_metric([], float(writer.spilled_rows if writer else 0))
        yield spilled
        rejected = CounterMetricFamily(
            "slotfill_log_rejected_rows",
            "Request-log rows the database refused, kept aside in rejected-*.jsonl",
        )
        rejected.add_metric([], float(writer.rejected_rows if writer else 0))
        yield rejected
        unjournaled = CounterMetricFamily(
            "slotfill_log_journal_failures", "Request-log rows that could not be journaled"
        )
        unjournaled.add_metric([], float(writer.journal_failures if writer else 0))
        yield unjournaled


class Metrics:
    """HTTP counters and latency histograms plus the live collector."""

    def __init__(
        self,
        registry: Callable[[], ModelRegistry | None],
        writer: Callable[[], RequestLogWriter | None],
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "slotfill_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "slotfill_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(registry, writer))
        # The labelled children, looked up once per label set (``labels()`` takes a lock and
        # builds a key on every call). Bounded like the label values themselves: route
        # templates, methods and statuses.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)
