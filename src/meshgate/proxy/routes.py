"""`/mcp/{connection_id}` and `/mcp/{connection_id}/call-tool/{tool}`: the hot path.

One proxied request: admission (Host/Origin, size, credential from the in-memory cache, body) → the
connection's pooled client from memory → envelope read once → permission decision in memory →
forward with meshgate's credentials (never the client's `Authorization`) → stream the answer back as
it arrives → an audit entry onto the in-memory queue. No database query in the steady state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from opentelemetry.trace import SpanKind
from starlette.types import Receive, Scope, Send

from meshgate.access import Principal
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.http11 import HttpError, Response
from meshgate.errors import (
    InvalidInput,
    MeshgateError,
    NotFound,
    PermissionDenied,
    UpstreamAuthorizationRequired,
    UpstreamError,
    UpstreamInvalidResponse,
    UpstreamUnavailable,
)
from meshgate.http.errors import http_error, mcp_http_error
from meshgate.http.guard import Admission, headers_of
from meshgate.jsonvalues import as_dict
from meshgate.monitoring.models import AUDITED_METHODS, AuditEntry
from meshgate.proxy._bridged import BridgedPath
from meshgate.proxy._exchange import (
    Call,
    held_stream,
    not_mcp,
    request_id_of,
    snippet,
    speaks_mcp,
    until_disconnect,
)
from meshgate.proxy._rest import RestPath
from meshgate.proxy.announcements import Announcements
from meshgate.proxy.interactions import Interactions
from meshgate.proxy.messages import Envelope, filter_tools, parse_envelope, refusal
from meshgate.proxy.sessions import SessionIds
from meshgate.proxy.telemetry import Telemetry
from meshgate.runtime import Runtime, authorize_again

log = logging.getLogger(__name__)

# Client headers that mean something to the upstream; everything else (Authorization, Cookie, Host ...)
# stays at meshgate.
_FORWARDED = (
    "accept",
    "content-type",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "traceparent",
    "tracestate",
)
_RETURNED = ("content-type", "mcp-session-id", "mcp-protocol-version", "cache-control", "allow", "retry-after")
_MAX_CAPTURE = 4 * 1024 * 1024
_UNKNOWN_SESSION = "session not found (another connection's or credential's, or altered): initialize a new session"
_MAX_FILTERED = 16 * 1024 * 1024


class ProxyEndpoint(BridgedPath, RestPath):
    """Raw ASGI handler for everything under `/mcp/{connection_id}`."""

    def __init__(self, runtime: Runtime, admission: Admission) -> None:
        self._runtime = runtime
        self._admission = admission
        self._public_url = runtime.settings.public_url
        self._telemetry = Telemetry(runtime.tracing, runtime.metrics)
        self._sessions = SessionIds(runtime.settings.secret)
        self._interactions = Interactions()
        self._announcements = Announcements(runtime.db)
        # Bridged calls in flight, by (client session id, request id): a notifications/cancelled finds them.
        self._bridged: dict[tuple[str, bytes], asyncio.Future[Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"][5:].split("/")
        rest = len(parts) == 3 and parts[1] == "call-tool" and bool(parts[0]) and bool(parts[2])
        if not rest and not (len(parts) == 1 and parts[0]):
            await http_error(NotFound(f"no route for {scope['path'][:200]}"))(scope, receive, send)
            return
        headers = headers_of(scope)
        request_id = request_id_of(headers)
        route = "/mcp/{connection_id}/call-tool/{tool}" if rest else "/mcp/{connection_id}"
        telemetry = self._telemetry.begin(scope, headers, route, request_id)
        call = Call(parts[0], headers, request_id, time.perf_counter(), telemetry)
        try:
            if rest:
                await self._rest_call(scope, receive, telemetry.wrap_send(send), call, parts[2])
            else:
                await self._proxy(scope, receive, telemetry.wrap_send(send), call)
        finally:
            telemetry.finish(call.conn_id, call.envelope.method or scope["method"])

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, call: Call) -> None:
        conn_id, headers, telemetry = call.conn_id, call.headers, call.telemetry
        bridged = False
        try:
            with telemetry.child("meshgate.authenticate"):
                call.principal, body = await self._admission.admit(scope, receive, headers)
            if body:
                call.envelope = parse_envelope(body)
            client = await self._client(call.principal, conn_id)
            tool_label = self._telemetry.label(call.envelope.tool_name, client.config.tool_names)
            telemetry.identify(call.principal, conn_id, call.envelope, tool_label)
            self._authorize(call.principal, conn_id, call.envelope)
            if client.config.oauth:
                client = await self._runtime.oauth_ready(call.principal.organization_id, client)
            bridged = client.session is not None or await self._across_generations(client, call)
            given = call.headers.get("mcp-session-id")
            if given is not None and not bridged:
                call.upstream_session = self._sessions.open(given, conn_id, _caller(call.principal))
                if call.upstream_session is None:
                    raise NotFound(_UNKNOWN_SESSION)
        except MeshgateError as error:
            if (
                isinstance(error, PermissionDenied | UpstreamAuthorizationRequired)
                and call.principal is not None
                and call.envelope.method == "tools/call"
            ):
                await self._refuse(send, call, error)
            else:
                await self._error(scope, receive, send, error, call)
            return
        if bridged:
            await self._bridge(scope, receive, send, client, call)
            return
        method = scope["method"]
        with telemetry.child(
            f"mcp.upstream {call.envelope.method or method}",
            SpanKind.CLIENT,
            **{"server.address": client.config.title, "meshgate.connection": conn_id},
        ):
            upstream_headers = self._upstream_headers(client, call)
            if call.envelope.message is not None and headers.get("mcp-protocol-version", "") >= "2026":
                body = telemetry.propagate_in_meta(call.envelope.message) or body
            try:
                response = await client.open(method, upstream_headers, body or None, stream=method == "GET")
            except UpstreamError as error:
                if call.envelope.method in AUDITED_METHODS:
                    self._audit(call, error=error)
                await self._error(scope, receive, send, error, call)
                return
            if response.status == 401 and client.config.oauth:
                response.release()
                await self._needs_authorization(scope, receive, send, call, client)
                return
            await self._relay(scope, receive, send, client, response, call)

    async def _relay(  # noqa: PLR0917
        self, scope: Scope, receive: Receive, send: Send, client: UpstreamClient, response: Response, call: Call
    ) -> None:
        """Send the upstream's answer to the client (filtered for tools/list), then audit it."""
        principal, conn_id, method = call.principal, call.conn_id, scope["method"]
        assert principal is not None  # noqa: S101  (admitted before relaying)
        idle_s = client.call_timeout
        captured: bytes | None = None
        failure: UpstreamError | None = None
        try:
            if not speaks_mcp(response, call.envelope):
                failure = UpstreamInvalidResponse(not_mcp(client, response, await snippet(response)))
            elif call.envelope.method == "tools/list" and response.status == 200 and not principal.allows(conn_id, "*"):
                body = await response.read(_MAX_FILTERED, idle_s=idle_s)
                content_type = response.headers.get("content-type", "")
                filtered = filter_tools(body, content_type, partial(principal.allows, conn_id))
                await send(self._start(response, call))
                await send({"type": "http.response.body", "body": filtered, "more_body": False})
            else:
                # GET streams and subscriptions/listen answers last as long as the client listens
                held_open = method == "GET" or call.envelope.method == "subscriptions/listen"
                captured = await self._stream(receive, send, response, call, None if held_open else idle_s)
        except HttpError as error:  # reading a tools/list answer to filter it, before anything was sent
            failure = UpstreamInvalidResponse(f"upstream {client.config.title} answer unreadable: {error}")
        finally:
            response.release()
        if failure is not None:
            await self._error(scope, receive, send, failure, call)
        if call.envelope.method in AUDITED_METHODS:
            self._audit(call, response=response, body=captured, error=failure)

    def _upstream_headers(self, client: UpstreamClient, call: Call) -> dict[str, str]:
        """meshgate's credentials plus the protocol headers of the client (never its Authorization)."""
        upstream_headers = client.credential_headers.copy()
        for name in _FORWARDED:
            value = call.headers.get(name)
            if value is not None:
                upstream_headers[name] = value
        for name, value in call.headers.items():
            if name.startswith("mcp-param-"):
                upstream_headers[name] = value
        if call.upstream_session is not None:
            upstream_headers["mcp-session-id"] = call.upstream_session
        assert call.principal is not None  # noqa: S101  (admitted before headers are built)
        upstream_headers["x-mesh-token"] = self._runtime.mesh_tokens.token(call.principal, call.conn_id)
        upstream_headers["x-request-id"] = call.request_id
        call.telemetry.propagate(upstream_headers)
        return upstream_headers

    async def _client(self, principal: Principal, conn_id: str) -> UpstreamClient:
        client = await self._runtime.upstreams.get(principal.organization_id, conn_id)
        config = client.config
        if config.status == "inactive":
            raise UpstreamUnavailable(f"connection {config.title} is inactive")
        return client

    async def _needs_authorization(
        self, scope: Scope, receive: Receive, send: Send, call: Call, client: UpstreamClient
    ) -> None:
        error = UpstreamAuthorizationRequired(authorize_again(client))
        if call.envelope.method == "tools/call":
            await self._refuse(send, call, error)
        else:
            if call.envelope.method in AUDITED_METHODS:
                self._audit(call, error=error)
            await self._error(scope, receive, send, error, call)

    @staticmethod
    def _authorize(principal: Principal, conn_id: str, envelope: Envelope) -> None:
        if envelope.method == "tools/call":
            tool = envelope.tool_name
            if tool is None:
                raise InvalidInput("tools/call needs params.name")
            if not principal.allows(conn_id, tool):
                raise PermissionDenied(f"calling {tool} needs the permission {conn_id}:{tool}")
        elif not principal.can_reach(conn_id):
            raise PermissionDenied(f"this credential has no permission on connection {conn_id}")

    async def _stream(
        self, receive: Receive, send: Send, response: Response, call: Call, deadline_s: float | None
    ) -> bytes | None:
        """Send the upstream answer through as it arrives; keep a copy when it will be audited.

        `deadline_s` bounds the whole answer of a POST (None for GET streams). If an SSE answer to a
        request breaks off or runs past it, the client still gets a JSON-RPC error for its request.
        """
        await send(self._start(response, call))
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        captured: list[bytes] | None = [] if call.envelope.method in AUDITED_METHODS else None
        size = 0

        async def pump() -> None:
            nonlocal size
            async with asyncio.timeout(deadline_s):
                async for chunk in response.iter_chunks(deadline_s):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    if captured is not None and size < _MAX_CAPTURE:
                        captured.append(chunk)
                        size += len(chunk)

        metrics = self._runtime.metrics
        try:
            if streaming:
                if metrics is not None:
                    metrics.open_streams.inc()
                try:
                    if deadline_s is None:  # a stream held open (GET, listen): it ends with its grant
                        with held_stream(self._runtime.streams, call) as ended:
                            await until_disconnect(pump(), receive, ended)
                    else:
                        await until_disconnect(pump(), receive)
                finally:
                    if metrics is not None:
                        metrics.open_streams.dec()
            else:
                await pump()
        except (HttpError, TimeoutError) as error:
            log.warning("upstream answer broke off (request %s): %s", call.request_id, error or "deadline passed")
            if streaming and call.envelope.id is not None:
                failure = orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": call.envelope.id,
                        "error": {
                            "code": -32001,
                            "message": f"upstream answer broke off: {error or 'call timeout passed'}",
                        },
                    }
                )
                event = b"event: message\ndata: " + failure + b"\n\n"
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if captured is not None:
                    captured.append(event)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return None if captured is None else b"".join(captured)

    def _start(self, response: Response, call: Call) -> dict[str, Any]:
        out = [(b"x-request-id", call.request_id.encode())]
        for name in _RETURNED:
            value = response.headers.get(name)
            if value is not None:
                if name == "mcp-session-id":
                    value = self._client_session(value, call)
                out.append((name.encode(), value.encode("latin-1")))
        return {"type": "http.response.start", "status": response.status, "headers": out}

    @staticmethod
    async def _across_generations(client: UpstreamClient, call: Call) -> bool:
        """Whether the client speaks a generation this Streamable HTTP upstream does not: then meshgate holds
        the upstream side on its own session, as for SSE and STDIO upstreams (asked once per upstream)."""
        version = call.headers.get("mcp-protocol-version") or ""
        if version >= "2026":
            return not await client.serves_stateless()
        if call.envelope.method == "initialize" or call.headers.get("mcp-session-id", "").startswith("mg-"):
            return await client.refuses_handshake()
        return False

    def _client_session(self, upstream_session: str, call: Call) -> str:
        """The session id the client sees for the upstream's (the one it sent, when unchanged)."""
        given = call.headers.get("mcp-session-id")
        if given is not None and upstream_session == call.upstream_session:
            return given
        assert call.principal is not None  # noqa: S101  (admitted before answering)
        return self._sessions.seal(upstream_session, call.conn_id, _caller(call.principal))

    async def _refuse(self, send: Send, call: Call, error: MeshgateError) -> None:
        call.telemetry.error = error.code
        body = refusal(call.envelope.id, f"{error.code}: {error.message}", call.headers.get("mcp-protocol-version"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", call.request_id.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
        self._audit(call, error=error)

    async def _error(self, scope: Scope, receive: Receive, send: Send, error: MeshgateError, call: Call) -> None:
        call.telemetry.error = error.code
        message_id = call.envelope.id
        metadata = f"{self._public_url}/.well-known/oauth-protected-resource{scope['path']}"
        await mcp_http_error(error, resource_metadata=metadata, message_id=message_id)(scope, receive, send)

    def _audit(
        self,
        call: Call,
        *,
        response: Response | None = None,
        body: bytes | None = None,
        error: MeshgateError | None = None,
    ) -> None:
        principal = call.principal
        if principal is None:
            return
        envelope = call.envelope
        params = as_dict(envelope.params)
        self._runtime.audit.record(
            AuditEntry(
                organization_id=principal.organization_id,
                connection_id=call.conn_id,
                method=envelope.method or "",
                tool_name=envelope.target,
                user_id=principal.user_id,
                api_key_id=principal.api_key_id,
                user_agent=call.headers.get("user-agent"),
                request_id=call.request_id,
                protocol_version=call.headers.get("mcp-protocol-version"),
                params=params.get("arguments", params) if envelope.method == "tools/call" else params,
                message_id=envelope.id,
                started_at=datetime.now(UTC),
                duration_ms=(time.perf_counter() - call.started) * 1000,
                response_body=body,
                response_content_type="" if response is None else response.headers.get("content-type", ""),
                response_truncated=body is not None and len(body) >= _MAX_CAPTURE,
                is_error=True if error is not None else None,
                error_message=None if error is None else f"{error.code}: {error.message}",
            )
        )


def _caller(principal: Principal) -> str:
    return principal.credential_id or principal.user_id
