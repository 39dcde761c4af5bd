"""Helpers on the two sides of a proxied exchange: the client's request and the upstream's answer."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from meshgate.access import Principal
from meshgate.calls.models import CallContext
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.http11 import HttpError, Response
from meshgate.errors import MeshgateError
from meshgate.http.errors import mcp_http_error
from meshgate.http.guard import bearer_token
from meshgate.http.sse import disconnected
from meshgate.http.stream_grants import StreamGrants
from meshgate.jsonrpc import NO_ENVELOPE, Envelope
from meshgate.proxy.telemetry import RequestTelemetry


@dataclass(slots=True)
class Call:
    """One proxied request as the proxy's helpers see it."""

    conn_id: str
    headers: dict[str, str]
    telemetry: RequestTelemetry
    context: CallContext
    principal: Principal | None = None
    envelope: Envelope = NO_ENVELOPE
    upstream_session: str | None = None  # the upstream's own Mcp-Session-Id, opened from the client's

    @property
    def request_id(self) -> str:
        return self.context.request_id


def call_context(headers: dict[str, str], request_id: str, telemetry: RequestTelemetry) -> CallContext:
    """What the call service needs to know of an HTTP request: ids for the upstream and the audit record."""
    return CallContext(request_id, headers.get("user-agent"), headers.get("mcp-protocol-version"), telemetry)


async def mcp_error(  # noqa: PLR0917
    scope: Scope, receive: Receive, send: Send, error: MeshgateError, call: Call, public_url: str
) -> None:
    """Answer an MCP request with a meshgate error (JSON-RPC body, the error's HTTP status)."""
    call.telemetry.error = error.code
    metadata = f"{public_url}/.well-known/oauth-protected-resource{scope['path']}"
    await mcp_http_error(error, resource_metadata=metadata, message_id=call.envelope.id)(scope, receive, send)


def speaks_mcp(response: Response, envelope: Envelope, http_method: str = "POST") -> bool:
    """An answer to a request must be JSON or SSE; anything else (an HTML error page ...) is not MCP.

    A GET opens a stream: only an SSE stream is relayed (405, "no stream here", is answered by meshgate), so a
    connection pointed at some other HTTP service cannot be used to read it (security review 10)."""
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
    if http_method == "GET":
        return response.status == 200 and media_type == "text/event-stream"
    if envelope.id is None or response.status in (202, 204):
        return True
    return media_type in ("application/json", "text/event-stream")


async def snippet(response: Response) -> str:
    try:
        body = await response.read(64 * 1024, idle_s=5)
    except HttpError:
        return ""
    return body[:200].decode("utf-8", errors="replace")


def not_mcp(client: UpstreamClient, response: Response, snippet: str | None) -> str:
    """The error of an answer that is not MCP; with the start of its body, except for a GET's (never relayed)."""
    media_type = response.headers.get("content-type", "no content type")
    answered = f"upstream {client.config.title} answered HTTP {response.status} with {media_type}"
    if snippet is None:
        return f"{answered} to GET, not an SSE stream"
    return f"{answered}, not MCP: {snippet!r}"


async def until_disconnect(pump: Any, receive: Receive, ended: asyncio.Event | None = None) -> None:
    """Run a streaming pump until it ends, the client goes away or `ended` is set (then stop reading upstream)."""
    tasks = [asyncio.ensure_future(pump), asyncio.ensure_future(disconnected(receive))]
    if ended is not None:  # only GET streams are held open long enough to need it (not the hot path)
        tasks.append(asyncio.ensure_future(ended.wait()))
    pumping = tasks[0]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if pumping.done() and not pumping.cancelled() and pumping.exception() is not None:
        raise pumping.exception()  # type: ignore[misc]


def held_stream(grants: StreamGrants, call: Call) -> AbstractContextManager[asyncio.Event]:
    """Hold a long-lived stream on one connection: it ends when the connection changes or its credential
    may no longer reach the connection."""
    conn_id = call.conn_id
    token = bearer_token(call.headers.get("authorization"))
    expires_at = call.principal.expires_at if call.principal is not None else None
    return grants.hold(
        token, frozenset({f"connection:{conn_id}"}), lambda principal: principal.can_reach(conn_id), expires_at
    )
