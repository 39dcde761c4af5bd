"""Spans of the event bus: one where an event is published, one per delivery batch linked to its events'.

The publish span is a child of whatever span is current (the management request's, when a client or an
MCP server publishes with a `traceparent`), and its W3C trace context is stored with the event. A
delivery happens later, in another task or process, for a batch of events that may come from many
traces, so each delivery span carries a link to every event's publish span (OpenTelemetry's messaging
conventions for batch consumers) and, for a batch of one, is that span's child as well: the delivery
shows in the publisher's trace. The stored context also goes out with the event as the CloudEvents
distributed tracing extension (`traceparent`), so a subscriber can continue the trace.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags, Tracer

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
SYSTEM = {"messaging.system": "meshgate"}
NO_TRACER: Tracer = trace.NoOpTracer()


def traceparent_of(span: Span) -> str | None:
    """The W3C `traceparent` of a span, or None when it is not a valid one (tracing off)."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The remote span context a stored `traceparent` names; None for none or a malformed one."""
    found = _TRACEPARENT.fullmatch(traceparent or "")
    if found is None:
        return None
    trace_id, span_id, flags = int(found[1], 16), int(found[2], 16), int(found[3], 16)
    if trace_id == 0 or span_id == 0:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 1))


@contextmanager
def publish_span(tracer: Tracer, organization_id: str, event_type: str, source: str) -> Generator[Span]:
    """The span of one publish, a child of the current span."""
    attributes = {
        **SYSTEM,
        "messaging.operation.type": "send",
        "messaging.destination.name": event_type,
        "cloudevents.event_type": event_type,
        "cloudevents.event_source": source,
        "meshgate.organization": organization_id,
    }
    with tracer.start_as_current_span(f"send {event_type}", kind=SpanKind.PRODUCER, attributes=attributes) as span:
        yield span


@contextmanager
def delivery_span(
    tracer: Tracer, traceparents: Sequence[str | None], subscription_id: str, attributes: dict[str, Any]
) -> Generator[Span]:
    """The span of delivering one batch: linked to each event's publish span, and the child of a lone one's."""
    contexts = [found for found in map(span_context_of, traceparents) if found is not None]
    lone = len(traceparents) == 1 and contexts
    parent = trace.set_span_in_context(NonRecordingSpan(contexts[0])) if lone else Context()  # else: a root
    every = {
        **SYSTEM,
        "messaging.operation.type": "process",
        "messaging.batch.message_count": len(traceparents),
        "meshgate.subscription": subscription_id,
        **attributes,
    }
    with tracer.start_as_current_span(
        "process events",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=every,
        links=[Link(context) for context in contexts],
    ) as span:
        yield span
