"""Prometheus metrics: request counts and latencies by route, vectors per library."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.http.middleware import ASGIApp, Message, Receive, Scope, Send


class HttpMetrics:
    """Owns one registry per app, so several apps in one process (tests) never clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stacksdb_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "stacksdb_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def record(self, method: str, route: str, status: str, seconds: float) -> None:
        """Count one answered request and observe its latency.

        The labelled children are kept per label tuple: ``labels()`` validates and looks
        them up under the metric's lock on every call, and the tuples seen are few (method,
        route template, status).
        """
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, status),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)


class LibraryVectorsCollector(Collector):
    """Reads vector counts at scrape time from a callable, so nothing is kept in step."""

    def __init__(self, counts: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "stacksdb_library_vectors",
            "Vectors held by each library's index.",
            labels=["library_id"],
        )
        for library_id, count in self._counts():
            gauge.add_metric([library_id], count)
        yield gauge


class KeywordIndexMemoryCollector(Collector):
    """Reads each library's keyword index size at scrape time (0 without one)."""

    def __init__(self, sizes: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._sizes = sizes

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "stacksdb_keyword_index_bytes",
            "Bytes held by each library's keyword (BM25) index: posting lists, document "
            "table and vocabulary.",
            labels=["library_id"],
        )
        for library_id, size in self._sizes():
            gauge.add_metric([library_id], size)
        yield gauge


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def recording_send(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.record(method, template, str(status_code), time.perf_counter() - started)
