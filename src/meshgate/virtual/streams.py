"""Notification streams of a virtual MCP: list_changed as server-sent events.

Handshake-era clients hold a GET stream; `2026-07-28` clients send `subscriptions/listen`, which is
acknowledged with the kinds meshgate honours and then carries only those, stamped with the
subscription id. Both end when the client goes away (`meshgate.http.sse`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Send

from meshgate.errors import InvalidInput, MeshgateError, UpstreamUnavailable
from meshgate.http.errors import mcp_http_error
from meshgate.http.sse import serve_events
from meshgate.jsonrpc import Envelope
from meshgate.jsonvalues import as_dict
from meshgate.observability.metrics import GatewayMetrics
from meshgate.protocol import SUBSCRIPTION_ID_META
from meshgate.virtual.directory import PROMPTS_CHANGED, RESOURCES_CHANGED, TOOLS_CHANGED, VirtualDirectory
from meshgate.virtual.models import VirtualMcp

SUBSCRIPTION_ID = SUBSCRIPTION_ID_META
_FILTER_KEYS = {
    "toolsListChanged": TOOLS_CHANGED,
    "promptsListChanged": PROMPTS_CHANGED,
    "resourcesListChanged": RESOURCES_CHANGED,
}


async def notification_stream(  # noqa: PLR0917
    receive: Receive,
    send: Send,
    directory: VirtualDirectory,
    definition: VirtualMcp,
    headers: dict[str, str],
    metrics: GatewayMetrics | None,
    ended: asyncio.Event,
) -> None:
    """The handshake-era GET stream: every list_changed of this virtual MCP (until `ended`)."""
    if "text/event-stream" not in headers.get("accept", ""):
        error = InvalidInput("the GET stream needs Accept: text/event-stream")
        await mcp_http_error(error)({"type": "http"}, receive, send)
        return
    await _stream(
        receive, send, directory, definition, lambda method: {"jsonrpc": "2.0", "method": method}, metrics, ended
    )


async def listen_stream(  # noqa: PLR0917
    receive: Receive,
    send: Send,
    directory: VirtualDirectory,
    definition: VirtualMcp,
    envelope: Envelope,
    metrics: GatewayMetrics | None,
    ended: asyncio.Event,
) -> None:
    """`subscriptions/listen` (2026-07-28): acknowledge the honoured kinds, then deliver only those; when
    `ended`, close it gracefully (its result)."""
    asked = as_dict(as_dict(envelope.params).get("notifications"))
    honoured = {key: True for key in _FILTER_KEYS if asked.get(key) is True}
    wanted = {_FILTER_KEYS[key] for key in honoured}
    meta = {SUBSCRIPTION_ID: envelope.id}
    acknowledgement = {
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": honoured, "_meta": meta},
    }

    def frame(method: str) -> dict[str, Any] | None:
        return {"jsonrpc": "2.0", "method": method, "params": {"_meta": meta}} if method in wanted else None

    closing = {"jsonrpc": "2.0", "id": envelope.id, "result": {"_meta": meta}}
    await _stream(receive, send, directory, definition, frame, metrics, ended, first=acknowledgement, last=closing)


async def _stream(  # noqa: PLR0917
    receive: Receive,
    send: Send,
    directory: VirtualDirectory,
    definition: VirtualMcp,
    frame: Callable[[str], dict[str, Any] | None],
    metrics: GatewayMetrics | None,
    ended: asyncio.Event,
    *,
    first: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
) -> None:
    try:
        queue = directory.listen(definition.id)
    except OverflowError as exc:
        error: MeshgateError = UpstreamUnavailable(f"{exc}; try again later")
        await mcp_http_error(error)({"type": "http"}, receive, send)
        return
    try:
        await directory.view(definition)  # the baseline later changes are compared with
        open_streams = None if metrics is None else metrics.open_streams
        await serve_events(receive, send, queue, frame, first, open_streams, ended, last)
    finally:
        directory.unlisten(definition.id, queue)
