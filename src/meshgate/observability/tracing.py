"""OpenTelemetry tracing: a span per incoming request with children for authentication, the upstream
call and database queries; W3C trace context accepted from clients and passed to upstreams.

Sampling is parent-based with a 10% ratio unless the standard `OTEL_TRACES_SAMPLER(_ARG)` say
otherwise; a request carrying `x-trace-debug-id` (or the query parameter `__d`) is always sampled and
its answer carries the debug id. Spans are exported over OTLP/HTTP only when an OTLP endpoint is set.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from meshgate import __version__
from meshgate.errors import ConfigurationError

log = logging.getLogger(__name__)

DEBUG_ATTRIBUTE = "meshgate.debug_id"
SAMPLED_ATTRIBUTE = "meshgate.sampled"  # set when meshgate already decided to sample (see Tracing.decide)
DEBUG_HEADER = "x-trace-debug-id"
_propagator = TraceContextTextMapPropagator()


class DebugAwareSampler(Sampler):
    """Samples every span of a debug request; everything else follows the configured sampler."""

    def __init__(self, base: Sampler) -> None:
        self._base = base

    def should_sample(  # noqa: PLR0917  (the OpenTelemetry Sampler interface)
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if attributes and (DEBUG_ATTRIBUTE in attributes or SAMPLED_ATTRIBUTE in attributes):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._base.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"DebugAware({self._base.get_description()})"


def sampler_for(name: str, argument: float) -> Sampler:
    """The sampler the standard OTEL_TRACES_SAMPLER values name."""
    ratio = TraceIdRatioBased(argument)
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(ratio),
    }
    if name not in samplers:
        raise ConfigurationError(f"OTEL_TRACES_SAMPLER={name!r} is not supported; use one of {', '.join(samplers)}")
    return DebugAwareSampler(samplers[name])


class Tracing:
    """The tracer provider of one gateway process (or nothing at all when tracing is off)."""

    def __init__(
        self,
        *,
        enabled: bool,
        sampler: str = "parentbased_traceidratio",
        sampler_arg: float = 0.1,
        otlp_endpoint: str | None = None,
        otlp_headers: Mapping[str, str] | None = None,
        service_name: str = "meshgate",
    ) -> None:
        self.enabled = enabled
        self._ratio = sampler_arg
        self._mode = {
            "always_off": "off",
            "traceidratio": "ratio",
            "parentbased_traceidratio": "parent_ratio",
            "parentbased_always_off": "parent_off",
            "parentbased_always_on": "parent_sdk",
        }.get(sampler, "sdk")
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()
        if not enabled:
            return
        self.provider = TracerProvider(
            sampler=sampler_for(sampler, sampler_arg),
            resource=Resource.create({"service.name": service_name, "service.version": __version__}),
        )
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415  (optional, heavy)
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter(endpoint=otlp_endpoint, headers=dict(otlp_headers or {}))
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
            log.info("exporting traces to %s", otlp_endpoint)
        self.tracer = self.provider.get_tracer("meshgate", __version__)
        _install_global(self.provider)

    def decide(self, headers: Mapping[str, str]) -> bool | None:
        """Sample this request? True / False when meshgate can tell cheaply, None to ask the SDK's sampler.

        The proxy builds no span at all for a request that will not be sampled (90% at the default ratio):
        creating and discarding SDK spans was most of the tracing cost on the hot path.
        """
        mode = self._mode
        if mode == "off":
            return False
        if mode == "sdk":
            return None
        if mode[0] == "p":  # parent-based: a valid parent decides
            parent = headers.get("traceparent")
            if parent is not None and len(parent) == 55:
                return None if int(parent[-2:], 16) & 1 else False
            if mode == "parent_sdk":
                return None
            if mode == "parent_off":
                return False
        return random.random() < self._ratio  # noqa: S311  (sampling, not security)

    def add_processor(self, processor: SpanProcessor) -> None:
        if self.provider is not None:
            self.provider.add_span_processor(processor)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def _install_global(provider: TracerProvider) -> None:
    """Make the SDK's own spans (management server) land in meshgate's provider; first one wins."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)


def extract_parent(headers: Mapping[str, str]) -> Context | None:
    """The client's W3C trace context, if it sent a valid one."""
    if "traceparent" not in headers:
        return None
    context = _propagator.extract(headers)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def inject(carrier: dict[str, Any], context: Context | None = None) -> None:
    """Write traceparent (and tracestate) of the current span into headers or a `_meta` dict."""
    _propagator.inject(carrier, context=context)


def new_traceparent(parent: str | None) -> str:
    """An unsampled W3C traceparent for a request meshgate does not trace: the client's trace, a new span."""
    # Trace ids need to be unique, not secret: the Mersenne Twister is ~10x cheaper than os.urandom here.
    trace_id = parent[3:35] if parent is not None and len(parent) == 55 else f"{random.getrandbits(128):032x}"
    return f"00-{trace_id}-{random.getrandbits(64) or 1:016x}-00"


def debug_id(headers: Mapping[str, str], query_string: bytes) -> str | None:
    """The debug id of a request: the header's value, or `__d` (its value, or a fresh id)."""
    given = headers.get(DEBUG_HEADER)
    if given:
        return given[:64]
    if b"__d" not in query_string:
        return None
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == b"__d":
            text = value.decode("latin-1")[:64]
            return text if text and text.isprintable() else secrets.token_hex(8)
    return None


def instrument_database(tracing: Tracing, engine: Any) -> None:
    """A child span per query, when the request around it is being traced."""
    if not tracing.enabled:
        return
    tracer = tracing.tracer
    system = engine.dialect.name

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if trace.get_current_span().is_recording():
            operation = statement.lstrip()[:6].upper().rstrip()
            context._meshgate_span = tracer.start_span(
                f"db.query {operation}",
                kind=SpanKind.CLIENT,
                attributes={"db.system": system, "db.operation": operation},
            )

    def after(_conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool) -> None:
        span = getattr(context, "_meshgate_span", None)
        if span is not None:
            span.end()

    from sqlalchemy import event  # noqa: PLC0415  (keeps this module importable without SQLAlchemy set-up)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
