"""Per-request values that logs carry (set at the start of a request, read when a line is written)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("meshgate_request_id", default=None)
organization_id: ContextVar[str | None] = ContextVar("meshgate_organization_id", default=None)
# (trace id, span id) of a request that is not traced by the SDK, so its log lines still correlate
trace_ids: ContextVar[tuple[str, str] | None] = ContextVar("meshgate_trace_ids", default=None)
