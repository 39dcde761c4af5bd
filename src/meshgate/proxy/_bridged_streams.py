"""Client streams on the bridged path: a handshake-era session's GET stream, `subscriptions/listen` (2026-07-28),
and the handshake-era `resources/subscribe` / `resources/unsubscribe` that decide what the GET stream carries.

Both end when the client goes away (`meshgate.http.sse`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Send

from meshgate.connections.upstream import UpstreamClient
from meshgate.http.sse import serve_events
from meshgate.jsonrpc import INVALID_PARAMS, Envelope, rpc_error
from meshgate.jsonvalues import as_dict, as_list
from meshgate.observability.metrics import GatewayMetrics
from meshgate.proxy.announcements import (
    LIST_CHANGED,
    LOG_MESSAGE,
    MAX_URI,
    MAX_URIS,
    SUBSCRIPTION_ID,
    Announcements,
    Listener,
    SessionKey,
    offers_subscriptions,
)

_SESSION_STREAM = frozenset({*LIST_CHANGED.values(), LOG_MESSAGE})


async def session_stream(  # noqa: PLR0917
    receive: Receive,
    send: Send,
    announcements: Announcements,
    client: UpstreamClient,
    caller: str,
    session: SessionKey | None,
    metrics: GatewayMetrics | None,
    ended: asyncio.Event,
) -> None:
    """The handshake-era GET stream: every list_changed, log messages sent outside a call on the caller's
    upstream session, and updates of the resources its session subscribed to."""
    async with announcements.listening(client, caller, _SESSION_STREAM, set(), session=session) as listener:
        await _serve(receive, send, listener, metrics, ended)


async def listen_stream(  # noqa: PLR0917
    receive: Receive,
    send: Send,
    announcements: Announcements,
    client: UpstreamClient,
    caller: str,
    envelope: Envelope,
    metrics: GatewayMetrics | None,
    ended: asyncio.Event,
) -> dict[str, Any] | None:
    """`subscriptions/listen`: acknowledge what is honoured, then carry only that; when `ended`, close it
    gracefully (its result). Returns a JSON-RPC error answer instead when the filter is malformed."""
    asked = as_dict(as_dict(envelope.params).get("notifications"))
    honoured: dict[str, Any] = {key: True for key in LIST_CHANGED if asked.get(key) is True}
    uris = as_list(asked.get("resourceSubscriptions"))
    if len(uris) > MAX_URIS or not all(isinstance(uri, str) and 0 < len(uri) <= MAX_URI for uri in uris):
        reason = f"resourceSubscriptions must be at most {MAX_URIS} URIs of 1 to {MAX_URI} characters"
        return rpc_error(envelope.id, INVALID_PARAMS, reason)
    if uris and await offers_subscriptions(client, caller):
        honoured["resourceSubscriptions"] = list(dict.fromkeys(str(uri) for uri in uris))
    meta = {SUBSCRIPTION_ID: envelope.id}
    acknowledgement = {
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"notifications": honoured, "_meta": meta},
    }
    methods = frozenset(LIST_CHANGED[key] for key in LIST_CHANGED if key in honoured)
    wanted = set(honoured.get("resourceSubscriptions", []))
    closing = {"jsonrpc": "2.0", "id": envelope.id, "result": {"_meta": meta}}
    async with announcements.listening(client, caller, methods, wanted, meta) as listener:
        await _serve(receive, send, listener, metrics, ended, first=acknowledgement, last=closing)
    return None


async def _serve(
    receive: Receive,
    send: Send,
    listener: Listener,
    metrics: GatewayMetrics | None,
    ended: asyncio.Event,
    *,
    first: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
) -> None:
    open_streams = None if metrics is None else metrics.open_streams
    await serve_events(receive, send, listener.events, lambda message: message, first, open_streams, ended, last)
