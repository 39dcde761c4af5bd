"""Prometheus metrics at `/metrics`.

Label cardinality is bounded: organization and connection ids are bounded by what exists; tool names
are a connection's discovered tools, and any other name (or more than `MAX_TOOLS_PER_CONNECTION`)
folds into `other`.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from meshgate import __version__

MAX_TOOLS_PER_CONNECTION = 200
OTHER = "other"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}


class GatewayMetrics:
    """Every series meshgate exports, in one registry per process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Proxied calls are counted in plain dictionaries (the event loop is the only writer) and turned into
        # series at scrape time: prometheus_client's per-sample locks were the larger part of the metrics cost.
        self._calls: dict[tuple[str, str, str, str], list[float]] = {}
        self._errors: dict[tuple[str, str, str, str, str], int] = {}
        self.registry.register(CallbackCollector(self._proxy_families))
        self.db_duration = Histogram(
            "db_query_duration_seconds",
            "Database query duration (db.query.duration)",
            ["operation"],
            buckets=_DB_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            "meshgate_http_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.open_streams = Gauge(
            "meshgate_open_streams", "Server-sent event streams being relayed now", registry=self.registry
        )
        self.virtual_left_out = Counter(
            "meshgate_virtual_upstream_left_out",
            "Times a connection's lists were left out of virtual MCPs (down, slow or refusing)",
            ["organization", "connection"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "meshgate_events_published", "Events released to subscribers and watchers", registry=self.registry
        )
        self.event_deliveries = Counter(
            "meshgate_event_deliveries",
            "Event delivery attempts by outcome (delivered, retried, dead)",
            ["outcome"],
            registry=self.registry,
        )
        self.event_latency = Histogram(
            "meshgate_event_delivery_latency_seconds",
            "From an event's time to its delivery",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.event_pending = Gauge(
            "meshgate_event_deliveries_pending",
            "Deliveries waiting (read by the worker now and then)",
            registry=self.registry,
        )
        build = Gauge("meshgate_build_info", "meshgate version", ["version", "python"], registry=self.registry)
        build.labels(__version__, platform.python_version()).set(1)

    @staticmethod
    def tool_label(tool: str | None, known: frozenset[str]) -> str:
        """A tool name safe to use as a label value: a discovered tool of the connection, else `other`."""
        if not tool:
            return ""
        return tool if tool in known else OTHER

    def observe(
        self, organization: str, connection: str, method: str, tool: str, *, seconds: float, error: str | None
    ) -> None:
        key = (organization, connection, method, tool)
        counts = self._calls.get(key)
        if counts is None:
            # per bucket, then +Inf, then the sum of durations
            counts = self._calls[key] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
        counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds
        if error is not None:
            error_key = (*key, error)
            self._errors[error_key] = self._errors.get(error_key, 0) + 1

    def _proxy_families(self) -> list[Any]:
        labels = ["organization", "connection", "method", "tool"]
        calls = CounterMetricFamily("meshgate_proxy_requests", "MCP messages proxied to upstreams", labels=labels)
        duration = HistogramMetricFamily(
            "meshgate_proxy_request_duration_seconds",
            "Time from receiving a proxied message to the end of its answer",
            labels=labels,
        )
        for key, counts in list(self._calls.items()):
            total = sum(counts[:-1])
            calls.add_metric(list(key), total)
            cumulative = 0.0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip((*map(str, _LATENCY_BUCKETS), "+Inf"), counts[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            duration.add_metric(list(key), buckets, counts[-1])
        errors = CounterMetricFamily(
            "meshgate_proxy_errors",
            "Proxied messages that failed (refused, upstream error; isError tool results are not counted here)",
            labels=[*labels, "kind"],
        )
        for error_key, count in list(self._errors.items()):
            errors.add_metric(list(error_key), count)
        return [calls, duration, errors]

    def add_collector(self, collector: Collector) -> None:
        self.registry.register(collector)

    def instrument_database(self, engine: AsyncEngine) -> None:
        """Time every query (db.query.duration)."""
        histogram = self.db_duration

        def before(_conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
            context._meshgate_started = time.perf_counter()

        def after(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
            started = getattr(context, "_meshgate_started", None)
            if started is not None:
                operation = statement.lstrip()[:6].upper().rstrip()
                histogram.labels(operation).observe(time.perf_counter() - started)

        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CallbackCollector(Collector):
    """Series whose values are read at scrape time (queue depth, circuit states, proxied calls ...)."""

    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Any]:
        return self._collect()
