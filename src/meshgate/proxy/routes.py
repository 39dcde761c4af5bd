"""`/mcp/{connection_id}` and `/mcp/{connection_id}/call-tool/{tool}`: the hot path.

One proxied request: admission (Host/Origin, size, credential from the in-memory cache, body) → the
connection's pooled client from memory → envelope read once → permission decision in memory →
forward with meshgate's credentials (never the client's `Authorization`) → stream the answer back as
it arrives → an audit entry onto the in-memory queue. No database query in the steady state.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

import orjson
from opentelemetry.trace import SpanKind
from starlette.types import Receive, Scope, Send

from meshgate.access import Principal
from meshgate.calls.models import Target
from meshgate.calls.service import MAX_CAPTURE, CallService, authorize_again, visible
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.http11 import HttpError, Response
from meshgate.errors import (
    MeshgateError,
    NotFound,
    PermissionDenied,
    UpstreamAuthorizationRequired,
    UpstreamError,
    UpstreamInvalidResponse,
)
from meshgate.http.errors import http_error
from meshgate.http.guard import Admission, headers_of, request_id_of
from meshgate.http.stream_grants import StreamGrants
from meshgate.jsonrpc import GATEWAY_ERROR, parse_envelope, refusal_result, result_message
from meshgate.monitoring.models import AUDITED_METHODS
from meshgate.observability.metrics import GatewayMetrics
from meshgate.protocol import escaped_name, is_stateless
from meshgate.proxy._exchange import (
    Call,
    call_context,
    held_stream,
    mcp_error,
    not_mcp,
    snippet,
    speaks_mcp,
    until_disconnect,
)
from meshgate.proxy.bridged import BridgedCalls
from meshgate.proxy.messages import filter_tools
from meshgate.proxy.rest import RestCalls
from meshgate.proxy.sessions import SessionIds
from meshgate.proxy.telemetry import Telemetry

log = logging.getLogger(__name__)

# Client headers that mean something to the upstream; everything else (Authorization, Cookie, Host ...)
# stays at meshgate. `Mcp-Method` and `Mcp-Name` are rebuilt from the authorized message instead.
_FORWARDED = frozenset(
    (
        "accept",
        "content-type",
        "mcp-protocol-version",
        "mcp-session-id",
        "last-event-id",
        "traceparent",
        "tracestate",
    )
)
_RETURNED = ("content-type", "mcp-session-id", "mcp-protocol-version", "cache-control", "allow", "retry-after")
_UNKNOWN_SESSION = "session not found (another connection's or credential's, or altered): initialize a new session"
_MAX_FILTERED = 16 * 1024 * 1024


class ProxyEndpoint:
    """Raw ASGI handler for everything under `/mcp/{connection_id}`: an adapter over `CallService`."""

    def __init__(  # noqa: PLR0917  (the collaborators of the proxy, composed in `meshgate.app`)
        self,
        calls: CallService,
        admission: Admission,
        telemetry: Telemetry,
        sessions: SessionIds,
        streams: StreamGrants,
        bridged: BridgedCalls,
        metrics: GatewayMetrics | None,
        public_url: str,
    ) -> None:
        self._calls = calls
        self._admission = admission
        self._telemetry = telemetry
        self._sessions = sessions
        self._streams = streams
        self._bridged = bridged
        self._metrics = metrics
        self._public_url = public_url
        self._rest = RestCalls(calls, admission)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"][5:].split("/", 2)  # a tool name may hold `/`
        rest = len(parts) == 3 and parts[1] == "call-tool" and bool(parts[0]) and bool(parts[2])
        if not rest and not (len(parts) == 1 and parts[0]):
            await http_error(NotFound(f"no route for {escaped_name(scope['path'], 200)}"))(scope, receive, send)
            return
        headers = headers_of(scope)
        request_id = request_id_of(headers)
        route = "/mcp/{connection_id}/call-tool/{tool}" if rest else "/mcp/{connection_id}"
        telemetry = self._telemetry.begin(scope, headers, route, request_id)
        call = Call(parts[0], headers, telemetry, call_context(headers, request_id, telemetry))
        try:
            if rest:
                await self._rest.serve(
                    scope, receive, telemetry.wrap_send(send), headers, parts[0], parts[2], call.context
                )
            else:
                await self._proxy(scope, receive, telemetry.wrap_send(send), call)
        finally:
            telemetry.finish(call.conn_id, "tools/call" if rest else call.envelope.method or scope["method"])

    async def _proxy(self, scope: Scope, receive: Receive, send: Send, call: Call) -> None:
        conn_id, headers, telemetry = call.conn_id, call.headers, call.telemetry
        bridged = False
        try:
            with telemetry.child("meshgate.authenticate"):
                call.principal, body = await self._admission.admit(scope, receive, headers)
            if body:
                call.envelope = parse_envelope(body)
            client = await self._calls.connection(call.principal, Target(conn_id), call.envelope, telemetry)
            bridged = client.multiplexed or await self._across_generations(client, call)
            given = call.headers.get("mcp-session-id")
            if given is not None and not bridged:
                call.upstream_session = self._sessions.open(given, conn_id, _caller(call))
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
                await mcp_error(scope, receive, send, error, call, self._public_url)
            return
        if bridged:
            await self._bridged.serve(scope, receive, send, client, call)
            return
        method = scope["method"]
        with telemetry.child(
            f"mcp.upstream {call.envelope.method or method}",
            SpanKind.CLIENT,
            **{"server.address": client.config.title, "meshgate.connection": conn_id},
        ):
            upstream_headers = self._upstream_headers(client, call)
            if call.envelope.message is not None and is_stateless(headers.get("mcp-protocol-version")):
                body = telemetry.propagate_in_meta(call.envelope.message) or body
            try:
                response = await client.open(method, upstream_headers, body or None, stream=method == "GET")
            except UpstreamError as error:
                self._audit(call, error=error)
                await mcp_error(scope, receive, send, error, call, self._public_url)
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
            if method == "GET" and response.status == 405:
                await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"POST, DELETE")]})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif not speaks_mcp(response, call.envelope, method):
                start = None if method == "GET" else await snippet(response)
                failure = UpstreamInvalidResponse(not_mcp(client, response, start))
            elif call.envelope.method == "tools/list" and response.status == 200:
                # read whole even for a caller who may call everything: names no one may see are taken out
                async with asyncio.timeout(idle_s):
                    body = await response.read(_MAX_FILTERED, idle_s=idle_s)
                content_type = response.headers.get("content-type", "")
                filtered = filter_tools(body, content_type, partial(_listable, principal, conn_id))
                await send(self._start(response, call))
                await send({"type": "http.response.body", "body": filtered, "more_body": False})
            else:
                # GET streams and subscriptions/listen answers last as long as the client listens
                held_open = method == "GET" or call.envelope.method == "subscriptions/listen"
                captured = await self._stream(receive, send, response, call, None if held_open else idle_s)
        except (HttpError, TimeoutError) as error:  # reading a tools/list answer to filter it, before anything was sent
            failure = UpstreamInvalidResponse(f"upstream {client.config.title} answer unreadable: {error or 'timeout'}")
        finally:
            response.release()
        if failure is not None:
            await mcp_error(scope, receive, send, failure, call, self._public_url)
        content_type = response.headers.get("content-type", "")
        self._audit(call, body=captured, content_type=content_type, error=failure)

    def _upstream_headers(self, client: UpstreamClient, call: Call) -> dict[str, str]:
        """meshgate's credentials, the protocol headers of the client (never its Authorization) and who calls."""
        passthrough = {
            name: value for name, value in call.headers.items() if name in _FORWARDED or name.startswith("mcp-param-")
        }
        if call.upstream_session is not None:
            passthrough["mcp-session-id"] = call.upstream_session
        assert call.principal is not None  # noqa: S101  (admitted before headers are built)
        target = Target(call.conn_id)
        return self._calls.forward_headers(client, call.principal, target, call.envelope, call.context, passthrough)

    async def _needs_authorization(
        self, scope: Scope, receive: Receive, send: Send, call: Call, client: UpstreamClient
    ) -> None:
        error = UpstreamAuthorizationRequired(authorize_again(client))
        if call.envelope.method == "tools/call":
            await self._refuse(send, call, error)
        else:
            self._audit(call, error=error)
            await mcp_error(scope, receive, send, error, call, self._public_url)

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
                    if captured is not None and size < MAX_CAPTURE:
                        captured.append(chunk)
                        size += len(chunk)

        metrics = self._metrics
        try:
            if streaming:
                if metrics is not None:
                    metrics.open_streams.inc()
                try:
                    if deadline_s is None:  # a stream held open (GET, listen): it ends with its grant
                        with held_stream(self._streams, call) as ended:
                            await until_disconnect(pump(), receive, ended)
                    else:
                        await until_disconnect(pump(), receive)
                finally:
                    if metrics is not None:
                        metrics.open_streams.dec()
            else:
                await pump()
        except (HttpError, TimeoutError) as error:
            log.warning("upstream answer broke off (request %s): %s", call.request_id, str(error) or "deadline passed")
            if streaming and call.envelope.id is not None:
                reason = f"upstream answer broke off: {str(error) or 'the call timeout passed'}"
                failure = {
                    "jsonrpc": "2.0",
                    "id": call.envelope.id,
                    "error": {"code": GATEWAY_ERROR, "message": reason},
                }
                event = b"event: message\ndata: " + orjson.dumps(failure) + b"\n\n"
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
        if is_stateless(call.headers.get("mcp-protocol-version")):
            return not await client.serves_stateless()
        if call.envelope.method == "initialize" or call.headers.get("mcp-session-id", "").startswith("mg-"):
            return await client.refuses_handshake()
        return False

    def _client_session(self, upstream_session: str, call: Call) -> str:
        """The session id the client sees for the upstream's (the one it sent, when unchanged)."""
        given = call.headers.get("mcp-session-id")
        if given is not None and upstream_session == call.upstream_session:
            return given
        return self._sessions.seal(upstream_session, call.conn_id, _caller(call))

    async def _refuse(self, send: Send, call: Call, error: MeshgateError) -> None:
        """A tools/call meshgate refused: a tool result with isError (not a protocol error), audited."""
        call.telemetry.error = error.code
        result = refusal_result(error, call.headers.get("mcp-protocol-version"))
        body = orjson.dumps(result_message(call.envelope.id, result))
        start_headers = [(b"content-type", b"application/json"), (b"x-request-id", call.request_id.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        self._audit(call, error=error)

    def _audit(
        self, call: Call, *, body: bytes | None = None, content_type: str = "", error: MeshgateError | None = None
    ) -> None:
        if call.principal is not None and call.envelope.method in AUDITED_METHODS:
            target = Target(call.conn_id)
            self._calls.record(
                call.principal, target, call.envelope, call.context, body=body, content_type=content_type, error=error
            )


def _listable(principal: Principal, connection_id: str, tool: str) -> bool:
    return visible(principal, Target(connection_id), tool)


def _caller(call: Call) -> str:
    assert call.principal is not None  # noqa: S101  (admitted before sessions are opened or sealed)
    return call.principal.caller
