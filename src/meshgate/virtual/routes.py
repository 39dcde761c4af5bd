"""`/mcp/virtual/{virtual_mcp_id}`: one MCP endpoint in front of several connections.

meshgate terminates MCP here (both generations): lists come from the in-memory view, and calls go to
the owning upstream over the pooled client with that connection's own credentials. Handshake-era
clients get list_changed on their GET stream; 2026-07-28 clients on `subscriptions/listen`.
`?mode=search` replaces the tool list with search, describe and call tools; `?mode=code` with search,
describe and run_code (`meshgate.sandbox.codemode`).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from meshgate.access import Principal
from meshgate.calls.models import CallContext
from meshgate.calls.models import Target as CallTarget
from meshgate.calls.service import CallService
from meshgate.errors import (
    MeshgateError,
    NotFound,
    PermissionDenied,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from meshgate.http.errors import http_error, mcp_http_error
from meshgate.http.guard import Admission, bearer_token, headers_of, request_id_of
from meshgate.http.stream_grants import StreamGrants
from meshgate.jsonrpc import NO_ENVELOPE, Envelope, error_message, parse_envelope, refusal_result, result_message
from meshgate.jsonvalues import as_dict
from meshgate.observability.metrics import GatewayMetrics
from meshgate.protocol import is_stateless
from meshgate.proxy.interactions import (
    INTERACTIVE,
    STATE_PREFIX,
    CallChannel,
    InFlightKey,
    Interactions,
    Suspended,
    caller_of,
    drive,
    expired,
    in_flight_key,
)
from meshgate.proxy.telemetry import RequestTelemetry, Telemetry
from meshgate.sandbox.service import SandboxService
from meshgate.virtual._answers import Asked, answer
from meshgate.virtual.directory import VirtualDirectory
from meshgate.virtual.models import VirtualMcp
from meshgate.virtual.streams import listen_stream, notification_stream

log = logging.getLogger(__name__)

ROUTE = "/mcp/virtual/{virtual_mcp_id}"
_JSON = (b"content-type", b"application/json")


class VirtualEndpoint:
    """Raw ASGI handler for `/mcp/virtual/{id}`."""

    def __init__(  # noqa: PLR0917  (the collaborators of the endpoint, composed in `meshgate.app`)
        self,
        calls: CallService,
        admission: Admission,
        directory: VirtualDirectory,
        telemetry: Telemetry,
        streams: StreamGrants,
        metrics: GatewayMetrics | None,
        public_url: str,
        sandbox: SandboxService | None = None,
    ) -> None:
        self._calls = calls
        self._admission = admission
        self._directory = directory
        self._telemetry = telemetry
        self._streams = streams
        self._metrics = metrics
        self._public_url = public_url
        self._sandbox = sandbox
        # Calls in flight by (client session id, request id): notifications/cancelled finds them.
        self._in_flight: dict[InFlightKey, asyncio.Future[Any]] = {}
        self._interactions = Interactions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/")
        if len(parts) != 4 or not parts[3]:
            await http_error(NotFound(f"no route for {scope['path'][:200]}"))(scope, receive, send)
            return
        headers = headers_of(scope)
        request_id = request_id_of(headers)
        telemetry = self._telemetry.begin(scope, headers, ROUTE, request_id)
        exchange = _Exchange(parts[3], headers, request_id, telemetry, _mode(scope.get("query_string", b"")))
        try:
            await self._serve(scope, receive, telemetry.wrap_send(send), exchange)
        finally:
            telemetry.finish(exchange.label, exchange.envelope.method or scope["method"])

    async def _serve(self, scope: Scope, receive: Receive, send: Send, exchange: _Exchange) -> None:
        try:
            exchange.principal, body = await self._admission.admit(scope, receive, exchange.headers)
            definition = await self._directory.get(exchange.principal.organization_id, exchange.virtual_id)
            if not definition.admits(exchange.principal):
                raise PermissionDenied(f"this credential has no permission on virtual MCP {definition.id}")
            if definition.status == "inactive":
                raise UpstreamUnavailable(f"virtual MCP {definition.title} is inactive")
            if scope["method"] == "POST":
                exchange.envelope = parse_envelope(body)
            exchange.telemetry.identify(exchange.principal, definition.id, exchange.envelope, "")
        except MeshgateError as error:
            await self._error(scope, receive, send, error, exchange)
            return
        if scope["method"] == "GET":
            with self._held(exchange, definition) as ended:
                metrics = self._metrics
                await notification_stream(receive, send, self._directory, definition, exchange.headers, metrics, ended)
        elif scope["method"] == "DELETE":
            await _empty(send, 204)
        elif scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"GET, POST, DELETE")]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif exchange.envelope.id is None:
            self._cancel(exchange)
            await _empty(send, 202)
        elif exchange.envelope.method is None:
            await self._reply(scope, receive, send, exchange)
        elif exchange.envelope.method == "subscriptions/listen":
            with self._held(exchange, definition) as ended:
                metrics = self._metrics
                await listen_stream(receive, send, self._directory, definition, exchange.envelope, metrics, ended)
        else:
            await self._request(scope, receive, send, exchange, definition)

    def _held(self, exchange: _Exchange, definition: VirtualMcp) -> AbstractContextManager[asyncio.Event]:
        """A notification stream lasts while its credential may still enter this virtual MCP (definition and
        member changes are notified on it, so they do not end it)."""
        token = bearer_token(exchange.headers.get("authorization"))
        expires_at = exchange.principal.expires_at if exchange.principal is not None else None
        return self._streams.hold(token, frozenset(), definition.admits, expires_at)

    async def _request(
        self, scope: Scope, receive: Receive, send: Send, exchange: _Exchange, definition: VirtualMcp
    ) -> None:
        principal = exchange.principal
        assert principal is not None  # noqa: S101  (admitted before answering)
        envelope = exchange.envelope
        params = as_dict(envelope.params)
        may_stream = "text/event-stream" in exchange.headers.get("accept", "")
        stateless = is_stateless(exchange.headers.get("mcp-protocol-version"))
        state = params.get("requestState")
        if stateless and envelope.method in INTERACTIVE and isinstance(state, str) and state.startswith(STATE_PREFIX):
            suspended = self._interactions.resume(caller_of(principal), state, as_dict(params.get("inputResponses")))
            if suspended is None:
                await self._send_answer(send, exchange, expired(envelope), {}, streaming=False)
                return
            work, channel, asked = suspended.work, suspended.channel, suspended.context
        else:
            try:
                view = await self._directory.view(definition)
            except MeshgateError as error:
                await self._error(scope, receive, send, error, exchange)
                return
            protocol = exchange.headers.get("mcp-protocol-version")
            asked = Asked(definition, view, principal, envelope, protocol, exchange.mode == "search")
            if exchange.mode == "code":
                asked.sandbox = self._sandbox
            channel = CallChannel(caller_of(principal), stateless)
            wants_progress = may_stream and as_dict(params.get("_meta")).get("progressToken") is not None
            interactive = envelope.method in INTERACTIVE and (stateless or may_stream)

            async def forward(target: CallTarget, method: str, upstream_params: dict[str, Any]) -> dict[str, Any]:
                return await self._forward(
                    exchange, asked, target, method, upstream_params, channel, wants_progress, interactive
                )

            work = asyncio.ensure_future(self._answer(asked, forward))
        key = in_flight_key(principal, exchange.headers.get("mcp-session-id"), envelope.id)
        if key is not None:
            self._in_flight[key] = work
        try:
            outcome = await drive(receive, send, work, channel, exchange.request_id, may_stream)
        finally:
            if key is not None:
                self._in_flight.pop(key, None)
        if outcome is None:
            return  # cancelled by the client, or the client went away: no answer (MCP cancellation rules)
        if outcome.questions:
            request_state = self._interactions.suspend(Suspended(work, channel, asked))
            result = {"resultType": "input_required", "inputRequests": outcome.questions, "requestState": request_state}
            await self._send_answer(
                send, exchange, result_message(envelope.id, result), {}, streaming=outcome.streaming
            )
            return
        message, extra, _error = outcome.answer  # audited by the call service
        await self._send_answer(send, exchange, {**message, "id": envelope.id}, extra, outcome.streaming)

    @staticmethod
    async def _send_answer(
        send: Send, exchange: _Exchange, message: dict[str, Any], extra: dict[str, str], streaming: bool
    ) -> None:
        body = orjson.dumps(message)
        if streaming:
            await send({"type": "http.response.body", "body": _event(body), "more_body": False})
            return
        out = [_JSON, (b"x-request-id", exchange.request_id.encode())]
        out += [(name.encode(), value.encode()) for name, value in extra.items()]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _answer(self, asked: Asked, forward: Any) -> tuple[dict[str, Any], dict[str, str], MeshgateError | None]:
        try:
            message, headers = await answer(asked, forward)
        except MeshgateError as error:
            if asked.envelope.method == "tools/call":
                result = refusal_result(error, asked.protocol_version)
                return result_message(asked.envelope.id, result), {}, error
            return error_message(asked.envelope.id, error), {}, error
        return message, headers, None

    async def _forward(  # noqa: PLR0917
        self,
        exchange: _Exchange,
        asked: Asked,
        target: CallTarget,
        method: str,
        params: dict[str, Any],
        channel: CallChannel,
        wants_progress: bool,
        interactive: bool,
    ) -> dict[str, Any]:
        """Send one request to the owning upstream through the call service (decision, credentials, audit)."""
        principal = asked.principal
        exchange.label = target.connection_id
        envelope = Envelope(method, asked.envelope.id, params)
        try:
            return await self._calls.request(
                principal,
                target,
                envelope,
                exchange.context,
                on_progress=channel.progress if wants_progress or interactive else None,
                on_server_request=partial(self._interactions.ask, channel) if interactive else None,
                answer_input_required=not channel.stateless,
            )
        except (UpstreamUnreachable, UpstreamUnavailable) as error:
            self._directory.catalog.left_out(principal.organization_id, target.connection_id, error.message)
            raise

    async def _reply(self, scope: Scope, receive: Receive, send: Send, exchange: _Exchange) -> None:
        """A handshake-era client answers a request meshgate relayed from an upstream."""
        assert exchange.principal is not None  # noqa: S101  (admitted before)
        if self._interactions.reply(caller_of(exchange.principal), exchange.envelope.message or {}):
            await _empty(send, 202)
            return
        error = NotFound(
            f"no request {str(exchange.envelope.id)[:100]!r} is waiting for an answer on this gateway process"
        )
        await self._error(scope, receive, send, error, exchange)

    def _cancel(self, exchange: _Exchange) -> None:
        assert exchange.principal is not None  # noqa: S101  (admitted before)
        named = as_dict(exchange.envelope.params).get("requestId")
        key = in_flight_key(exchange.principal, exchange.headers.get("mcp-session-id"), named)
        if exchange.envelope.method == "notifications/cancelled" and key is not None:
            waiting = self._in_flight.get(key)
            if waiting is not None:
                waiting.cancel()  # an upstream reached over a session hears notifications/cancelled

    async def _error(
        self, scope: Scope, receive: Receive, send: Send, error: MeshgateError, exchange: _Exchange
    ) -> None:
        exchange.telemetry.error = error.code
        metadata = f"{self._public_url}/.well-known/oauth-protected-resource{scope['path']}"
        response = mcp_http_error(error, resource_metadata=metadata, message_id=exchange.envelope.id)
        await response(scope, receive, send)


class _Exchange:
    """One HTTP request to a virtual MCP as the endpoint's helpers see it."""

    __slots__ = (
        "context",
        "envelope",
        "headers",
        "label",
        "mode",
        "principal",
        "request_id",
        "telemetry",
        "virtual_id",
    )

    def __init__(
        self, virtual_id: str, headers: dict[str, str], request_id: str, telemetry: RequestTelemetry, mode: str
    ) -> None:
        self.virtual_id = virtual_id
        self.headers = headers
        self.request_id = request_id
        self.telemetry = telemetry
        self.mode = mode  # "", "search" or "code"
        self.context = CallContext(
            request_id, headers.get("user-agent"), headers.get("mcp-protocol-version"), telemetry
        )
        self.principal: Principal | None = None
        self.envelope = NO_ENVELOPE
        self.label = virtual_id  # the metrics' connection label: the routed connection once known


def _mode(query: bytes) -> str:
    if b"mode=" not in query:
        return ""  # the usual case costs one search of a short string
    return "search" if b"mode=search" in query else "code" if b"mode=code" in query else ""


def _event(data: bytes) -> bytes:
    return b"event: message\ndata: " + data + b"\n\n"


async def _empty(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
