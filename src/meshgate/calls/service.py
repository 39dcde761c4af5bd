"""`CallService`: what every call through meshgate goes through, whatever brought it.

(principal, target, JSON-RPC message) → decision (connection from the pool, permission, active, OAuth
token) → prepared upstream request (meshgate's credentials, `x-mesh-token`, request id, trace context,
routing headers rebuilt from the authorized message) → send → relay → audit record. The MCP endpoint,
REST, the bridged SSE/STDIO path, virtual MCPs, the dashboard and workers inside meshgate are adapters
over it. Nothing here knows HTTP; nothing here queries the database in the steady state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry.trace import SpanKind

from meshgate.access import Principal
from meshgate.calls.models import CallContext, ConnectionCredentials, MeshTokens, Target, Trace
from meshgate.connections.pool import UpstreamPool
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.session import ServerRequestHandler
from meshgate.errors import (
    InvalidInput,
    MeshgateError,
    PermissionDenied,
    UpstreamAuthorizationRequired,
    UpstreamError,
    UpstreamRpcError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from meshgate.identity.connection_tokens import HEADER as CONNECTION_TOKEN_HEADER
from meshgate.jsonrpc import Envelope, request
from meshgate.jsonvalues import as_dict, as_list
from meshgate.monitoring.models import AUDITED_METHODS, AuditEntry
from meshgate.monitoring.writer import AuditWriter
from meshgate.oauth.upstream import UpstreamOAuth
from meshgate.observability.metrics import GatewayMetrics
from meshgate.protocol import escaped_name, handshake_params, is_stateless, readable_tool_name, routing_headers

Progress = Callable[[dict[str, Any]], None]

# The longest answer kept for the audit log (the record is cut further when written).
MAX_CAPTURE = 4 * 1024 * 1024


class CallService:
    """Decides, prepares, sends, relays and audits calls to upstream connections for a principal."""

    def __init__(
        self,
        upstreams: UpstreamPool,
        mesh_tokens: MeshTokens,
        audit: AuditWriter,
        upstream_oauth: UpstreamOAuth,
        metrics: GatewayMetrics | None = None,
        *,
        connection_tokens: ConnectionCredentials | None = None,
    ) -> None:
        self._upstreams = upstreams
        self._mesh_tokens = mesh_tokens
        self._connection_tokens = connection_tokens
        self._audit = audit
        self._oauth = upstream_oauth
        self._metrics = metrics

    # -- decide ---------------------------------------------------------------------------------------

    async def connection(
        self, principal: Principal, target: Target, envelope: Envelope, trace: Trace
    ) -> UpstreamClient:
        """The target's pooled client, once this caller may send this message and the connection can take it.

        Raises `NotFound` (no such connection in the caller's organization), `PermissionDenied`,
        `UpstreamUnavailable` (inactive) or `UpstreamAuthorizationRequired` (OAuth upstream without a grant)."""
        client = await self._upstreams.get(principal.organization_id, target.connection_id)
        label = "" if self._metrics is None else self._metrics.tool_label(envelope.tool_name, client.config.tool_names)
        trace.identify(principal, target.connection_id, envelope, label)
        authorize(principal, target, envelope)
        if client.config.status == "inactive":
            raise UpstreamUnavailable(f"connection {client.config.title} is inactive")
        if client.config.oauth:
            client = await self._oauth_ready(principal.organization_id, client)
        return client

    async def _oauth_ready(self, organization_id: str, client: UpstreamClient) -> UpstreamClient:
        """An OAuth upstream's client with a fresh token (refreshed when due); refused when meshgate holds none."""
        if self._oauth.due(client.config.oauth_refresh_at):
            await self._oauth.refresh(organization_id, client.config.id)
            client = await self._upstreams.get(organization_id, client.config.id)
        if client.config.secrets.token is None:
            raise UpstreamAuthorizationRequired(authorize_again(client))
        return client

    # -- prepare --------------------------------------------------------------------------------------

    def caller_headers(self, principal: Principal, target: Target, context: CallContext) -> dict[str, str]:
        """What tells the upstream who calls (`x-mesh-token`), the request id, the trace context, and the
        credential with which the upstream can call meshgate back as its own connection."""
        headers: dict[str, str] = {}
        self._add_caller(headers, principal, target, context)
        return headers

    def _add_caller(self, headers: dict[str, str], principal: Principal, target: Target, context: CallContext) -> None:
        headers["x-mesh-token"] = self._mesh_tokens.token(principal, target.connection_id)
        headers["x-request-id"] = context.request_id
        if self._connection_tokens is not None:
            headers[CONNECTION_TOKEN_HEADER] = self._connection_tokens.token(
                principal.organization_id, target.connection_id
            )
        context.trace.propagate(headers)

    def forward_headers(  # noqa: PLR0917  (one forwarded request has this many parts)
        self,
        client: UpstreamClient,
        principal: Principal,
        target: Target,
        envelope: Envelope,
        context: CallContext,
        passthrough: Mapping[str, str],
    ) -> dict[str, str]:
        """Headers for a request forwarded as the client sent it: meshgate's credentials for the upstream, the
        client's protocol headers (`passthrough`, never its Authorization), who calls, and for stateless-era
        requests `Mcp-Method`/`Mcp-Name` rebuilt from the message meshgate authorized (never the client's)."""
        headers = client.credential_headers.copy()
        headers.update(passthrough)
        if envelope.method is not None and envelope.id is not None and is_stateless(context.protocol_version):
            headers.update(routing_headers(envelope.method, envelope.params))
        self._add_caller(headers, principal, target, context)  # last: a client's header cannot stand in for these
        return headers

    # -- send, relay, audit over meshgate's own session ---------------------------------------------

    async def request(
        self,
        principal: Principal,
        target: Target,
        envelope: Envelope,
        context: CallContext,
        *,
        on_progress: Progress | None = None,
        on_server_request: ServerRequestHandler | None = None,
        answer_input_required: bool = False,
    ) -> dict[str, Any]:
        """One request over the caller's own upstream session (one per credential; see
        `connections/upstream/callers.py`): the response message (a result, or the upstream's JSON-RPC error),
        with the id meshgate used. A `tools/list` answer lists only the tools this
        caller may call.

        The whole call ends by the connection's call timeout. Refusals and failures raise a `MeshgateError`;
        audited methods are recorded either way."""
        method = envelope.method or ""
        audited = method in AUDITED_METHODS
        try:
            client = await self.connection(principal, target, envelope, context.trace)
            headers = self.caller_headers(principal, target, context)
            span = {"server.address": client.config.title, "meshgate.connection": target.connection_id}
            with context.trace.child(f"mcp.upstream {method}", SpanKind.CLIENT, **span):
                async with _deadline(client):
                    message = await client.request(
                        method,
                        handshake_params(envelope.params) if envelope.params is not None else None,
                        extra_headers=headers,
                        on_progress=on_progress,
                        on_server_request=on_server_request,
                        answer_input_required=answer_input_required,
                        caller=principal.caller,  # the caller's own upstream session
                    )
        except MeshgateError as error:
            context.trace.error = error.code
            if audited and isinstance(error, PermissionDenied | UpstreamError):
                self.record(principal, target, envelope, context, error=error)
            raise
        if method == "tools/list":
            message = _listed(principal, target, message)
        if audited:
            failed = "error" in message
            if failed:
                context.trace.error = "upstream_rpc_error"
            answer = orjson.dumps({**message, "id": envelope.id})  # the answer as the caller's request got it
            self.record(principal, target, envelope, context, body=answer, is_error=failed or None)
        return message

    async def upstream_info(self, principal: Principal, target: Target, context: CallContext) -> dict[str, Any]:
        """What the upstream told the caller's own session (capabilities, serverInfo, instructions), once the
        caller may reach the target (as for `resources/list`); within the connection's call timeout."""
        envelope = request("initialize", {})
        try:
            client = await self.connection(principal, target, envelope, context.trace)
            async with _deadline(client):
                return await client.upstream_info(principal.caller)
        except MeshgateError as error:
            context.trace.error = error.code
            raise

    async def call_tool(
        self,
        principal: Principal,
        target: Target,
        name: str,
        arguments: Mapping[str, Any],
        context: CallContext | None = None,
    ) -> dict[str, Any]:
        """Call one tool as `principal` and return its result (`content`, `structuredContent`, `isError`).

        The same decision and audit record as a call over HTTP. An upstream's JSON-RPC error raises
        `UpstreamRpcError`; a tool that failed is a result with `isError`."""
        envelope = request("tools/call", {"name": name, "arguments": dict(arguments)})
        message = await self.request(principal, target, envelope, context or CallContext())
        if "error" in message:
            error = as_dict(message["error"])
            raise UpstreamRpcError(f"the upstream answered {name} with an error: {error.get('message')}", error)
        return as_dict(message.get("result"))

    def record(
        self,
        principal: Principal,
        target: Target,
        envelope: Envelope,
        context: CallContext,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        error: MeshgateError | None = None,
        is_error: bool | None = None,
    ) -> None:
        """The audit record of one call (onto the in-memory queue; redaction and parsing happen in the writer)."""
        params = as_dict(envelope.params)
        self._audit.record(
            AuditEntry(
                organization_id=principal.organization_id,
                connection_id=target.connection_id,
                virtual_mcp_id=target.virtual_mcp_id,
                method=envelope.method or "",
                tool_name=envelope.target,
                user_id=principal.user_id,
                api_key_id=principal.api_key_id,
                user_agent=context.user_agent,
                request_id=context.request_id,
                protocol_version=context.protocol_version,
                params=params.get("arguments", params) if envelope.method == "tools/call" else params,
                message_id=envelope.id,
                started_at=datetime.now(UTC),
                duration_ms=(time.perf_counter() - context.started) * 1000,
                response_body=body,
                response_content_type="" if body is None else content_type,
                response_truncated=body is not None and len(body) >= MAX_CAPTURE,
                is_error=True if error is not None else is_error,
                error_message=None if error is None else f"{error.code}: {error.message}",
                by_connection=principal.connection_id is not None,
                announced=context.announced,
            )
        )


def authorize(principal: Principal, target: Target, envelope: Envelope) -> None:
    """Whether `principal` may send this message to the target: a tools/call needs the tool, anything else
    a grant on the connection (or on the virtual MCP it came through)."""
    connection_id, virtual_id = target.connection_id, target.virtual_mcp_id
    if envelope.method == "tools/call":
        tool = envelope.tool_name
        if tool is None:
            raise InvalidInput("tools/call needs params.name")
        if not readable_tool_name(tool):
            raise hidden_tool(tool)
        if _granted(principal, target, tool):
            return
        if virtual_id is not None:
            exposed = target.exposed_name or tool
            raise PermissionDenied(f"calling {exposed} needs the permission {virtual_id}:{exposed}")
        raise PermissionDenied(f"calling {tool} needs the permission {connection_id}:{tool}")
    if not reachable(principal, target):
        raise PermissionDenied(f"this credential has no permission on connection {connection_id}")


def hidden_tool(tool: str) -> PermissionDenied:
    """The answer to a call of a tool meshgate hides (security review 18): unknown, as tools/list never shows it."""
    return PermissionDenied(
        f"unknown tool '{escaped_name(tool, 100)}': meshgate hides tool names that could be misread "
        "(characters outside printable ASCII, edge spaces, more than 128 characters)"
    )


def visible(principal: Principal, target: Target, tool: str) -> bool:
    """Whether `tools/list` shows this tool of the target to this caller (exactly when tools/call allows it)."""
    return readable_tool_name(tool) and _granted(principal, target, tool)


def _granted(principal: Principal, target: Target, tool: str) -> bool:
    return principal.allows(target.connection_id, tool) or (
        target.virtual_mcp_id is not None and principal.allows(target.virtual_mcp_id, target.exposed_name or tool)
    )


def reachable(principal: Principal, target: Target) -> bool:
    """Whether this caller may use the target's resources and prompts: any grant on the connection, or on the
    virtual MCP it came through."""
    return principal.can_reach(target.connection_id) or (
        target.virtual_mcp_id is not None and principal.can_reach(target.virtual_mcp_id)
    )


def authorize_again(client: UpstreamClient) -> str:
    return (
        f"connection {client.config.title} needs OAuth authorization: someone allowed to manage connections calls "
        f'CONNECTION_OAUTH_START {{"id": "{client.config.id}"}} and opens the URL it returns'
    )


def _listed(principal: Principal, target: Target, message: dict[str, Any]) -> dict[str, Any]:
    result = as_dict(message.get("result"))
    if not result:
        return message
    listed = as_list(result.get("tools"))
    tools = [tool for tool in listed if visible(principal, target, str(as_dict(tool).get("name")))]
    return message if len(tools) == len(listed) else {**message, "result": {**result, "tools": tools}}


@asynccontextmanager
async def _deadline(client: UpstreamClient) -> AsyncGenerator[None]:
    """The connection's call timeout over a whole call, whatever the transport (requests the upstream sends
    the caller meanwhile included). `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow
    the cancellation of a deadline."""
    seconds = client.call_timeout
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        title = client.config.title
        raise UpstreamTimeout(f"upstream {title} did not answer within its call timeout ({seconds:g} s)") from exc
