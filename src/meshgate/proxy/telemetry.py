"""Tracing, metrics and log context for one proxied request, kept off the proxy's main line.

When tracing is off or a request is not sampled, this costs a few dictionary writes: spans are only
built for recording requests, and the trace context sent upstream is then the client's own.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import Message, Scope, Send

from meshgate.access import Principal
from meshgate.jsonrpc import Envelope
from meshgate.observability import context as log_context
from meshgate.observability.metrics import GatewayMetrics
from meshgate.observability.tracing import (
    DEBUG_ATTRIBUTE,
    SAMPLED_ATTRIBUTE,
    Tracing,
    debug_id,
    extract_parent,
    inject,
    new_traceparent,
)

log = logging.getLogger("meshgate.proxy")
_NOTHING = contextlib.nullcontext()


class RequestTelemetry:
    """What one request records; created by `Telemetry.begin`."""

    __slots__ = (
        "_metrics",
        "_span",
        "_started",
        "_token",
        "_traceparent",
        "_tracer",
        "debug_id",
        "error",
        "organization",
        "tool",
    )

    def __init__(self, tracing: Tracing, metrics: GatewayMetrics | None, debug: str | None) -> None:
        self._tracer = tracing.tracer
        self._metrics = metrics
        self._span: trace.Span | None = None
        self._token: object | None = None
        self._traceparent: str | None = None
        self._started = time.perf_counter()
        self.debug_id = debug
        self.error: str | None = None
        self.organization = ""
        self.tool = ""

    def start_span(self, name: str, parent: Any, attributes: dict[str, Any]) -> None:
        self._span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    @property
    def recording(self) -> bool:
        return self._span is not None and self._span.is_recording()

    def wrap_send(self, send: Send) -> Send:
        """Add `x-trace-debug-id` to the answer of a debug request."""
        if self.debug_id is None:
            return send
        value = self.debug_id.encode("latin-1", errors="replace")

        async def send_with_debug_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-trace-debug-id", value)]}
            await send(message)

        return send_with_debug_id

    def identify(self, principal: Principal, connection: str, envelope: Envelope, tool_label: str) -> None:
        """Name the caller and the call, for the span, the metrics and the log lines."""
        self.organization = principal.organization_id
        self.tool = tool_label
        log_context.organization_id.set(principal.organization_id)
        if self.recording and self._span is not None:
            attributes: dict[str, Any] = {
                "meshgate.organization": principal.organization_id,
                "meshgate.connection": connection,
                "meshgate.caller.type": "api_key" if principal.api_key_id else "user",
                "meshgate.caller.id": principal.api_key_id or principal.user_id,
                "meshgate.user": principal.user_id,
            }
            if envelope.method:
                attributes["mcp.method.name"] = envelope.method
            if envelope.target:
                attributes["gen_ai.tool.name" if envelope.method == "tools/call" else "mcp.target"] = envelope.target
            self._span.set_attributes(attributes)

    def child(
        self, name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any
    ) -> contextlib.AbstractContextManager[object]:
        """A child span of this request's span (a shared do-nothing context when it is not recorded)."""
        if not self.recording:
            return _NOTHING
        return self._tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    def untraced(self, traceparent: str) -> None:
        """This request is not sampled: no span, but the trace context still flows upstream and into logs."""
        self._traceparent = traceparent
        log_context.trace_ids.set((traceparent[3:35], traceparent[36:52]))

    def propagate(self, headers: dict[str, str]) -> None:
        """Send the trace context upstream: meshgate's own span, or the unsampled context."""
        if self._span is not None:
            inject(headers)
        elif self._traceparent is not None:
            headers["traceparent"] = self._traceparent

    def propagate_in_meta(self, message: dict[str, Any]) -> bytes | None:
        """2026-era requests carry trace context in `params._meta` too; returns the new body, if changed."""
        params = message.get("params")
        if not isinstance(params, dict) or (self._span is None and self._traceparent is None):
            return None
        meta: dict[str, Any] = dict(params.get("_meta") or {})  # pyright: ignore[reportUnknownArgumentType, reportUnknownMemberType]
        if self._span is not None:
            inject(meta)
        else:
            meta["traceparent"] = self._traceparent
            meta.pop("tracestate", None)
        params["_meta"] = meta
        return orjson.dumps(message)

    def finish(self, connection: str, method: str, status: int | None = None) -> None:
        seconds = time.perf_counter() - self._started
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "proxied %s to connection %s in %.2f ms%s",
                method,
                connection,
                seconds * 1000,
                f" ({self.error})" if self.error else "",
            )
        if self._metrics is not None and self.organization:
            self._metrics.observe(
                self.organization, connection, method or "-", self.tool, seconds=seconds, error=self.error
            )
        if self._span is not None:
            if self.error is not None:
                self._span.set_status(Status(StatusCode.ERROR, self.error))
            if status is not None:
                self._span.set_attribute("http.response.status_code", status)
            self._span.end()
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]


class Telemetry:
    """Creates a `RequestTelemetry` per request."""

    def __init__(self, tracing: Tracing, metrics: GatewayMetrics | None) -> None:
        self._tracing = tracing
        self._metrics = metrics

    def begin(self, scope: Scope, headers: dict[str, str], route: str, request_id: str) -> RequestTelemetry:
        log_context.request_id.set(request_id)
        log_context.organization_id.set(None)
        debug = debug_id(headers, scope.get("query_string", b""))
        telemetry = RequestTelemetry(self._tracing, self._metrics, debug)
        log_context.trace_ids.set(None)
        if not self._tracing.enabled:
            return telemetry
        decision = None if debug is not None else self._tracing.decide(headers)
        if decision is False:
            telemetry.untraced(new_traceparent(headers.get("traceparent")))
        else:
            attributes: dict[str, Any] = {
                "http.request.method": scope["method"],
                "http.route": route,
                "url.path": scope["path"],
                "meshgate.request_id": request_id,
            }
            if "mcp-protocol-version" in headers:
                attributes["mcp.protocol.version"] = headers["mcp-protocol-version"]
            if debug is not None:
                attributes[DEBUG_ATTRIBUTE] = debug
            if decision is True:
                attributes[SAMPLED_ATTRIBUTE] = True
            telemetry.start_span(f"{scope['method']} {route}", extract_parent(headers), attributes)
        return telemetry

    def label(self, tool: str | None, known: frozenset[str]) -> str:
        return "" if self._metrics is None else self._metrics.tool_label(tool, known)
