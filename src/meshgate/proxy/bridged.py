"""The proxy's bridged path: SSE and STDIO upstreams (and HTTP upstreams of the other protocol generation),
reached over meshgate's own session with the upstream.

meshgate answers the client's handshake itself (`proxy/bridge.py`) and sends every request through
`CallService.request`, streaming progress as SSE events before the answer; a client's
`notifications/cancelled` or its going away cancels meshgate's own upstream request. What the upstream
announces reaches clients' GET and `subscriptions/listen` streams (`proxy/_bridged_streams.py`).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from meshgate.calls.models import Target
from meshgate.calls.service import CallService
from meshgate.connections.upstream import UpstreamClient
from meshgate.errors import InvalidInput, MeshgateError, NotFound, UpstreamError
from meshgate.http.stream_grants import StreamGrants
from meshgate.jsonrpc import METHOD_NOT_FOUND, error_message, result_message, rpc_error
from meshgate.jsonvalues import as_dict
from meshgate.observability.metrics import GatewayMetrics
from meshgate.protocol import is_stateless
from meshgate.proxy._bridged_streams import listen_stream, session_stream
from meshgate.proxy._exchange import Call, held_stream, mcp_error
from meshgate.proxy.announcements import Announcements, SessionKey, checked_uri, offers_subscriptions
from meshgate.proxy.bridge import local_answer, stamped
from meshgate.proxy.interactions import (
    INTERACTIVE,
    STATE_PREFIX,
    CallChannel,
    InFlightKey,
    Interactions,
    Outcome,
    Suspended,
    Work,
    caller_of,
    drive,
    expired,
    in_flight_key,
)

_NO_SUCH_REQUEST = "no request with this id is waiting for an answer on this gateway process"


class BridgedCalls:
    """Serves clients of connections that meshgate reaches over its own session."""

    def __init__(  # noqa: PLR0917  (the collaborators of the bridged path)
        self,
        calls: CallService,
        streams: StreamGrants,
        announcements: Announcements,
        interactions: Interactions,
        metrics: GatewayMetrics | None,
        public_url: str,
    ) -> None:
        self._calls = calls
        self._streams = streams
        self._announcements = announcements
        self._interactions = interactions
        self._metrics = metrics
        self._public_url = public_url
        # Calls in flight, by (client session id, request id): a notifications/cancelled finds them.
        self._in_flight: dict[InFlightKey, asyncio.Future[Any]] = {}

    async def serve(self, scope: Scope, receive: Receive, send: Send, client: UpstreamClient, call: Call) -> None:
        """Serve the client from meshgate's own upstream session."""
        envelope = call.envelope
        self._announcements.watch(client)
        if scope["method"] != "POST" or envelope.id is None or envelope.method is None:
            await self._not_a_request(scope, receive, send, client, call)
            return
        version = call.headers.get("mcp-protocol-version")
        if envelope.method == "subscriptions/listen" and is_stateless(version):
            with held_stream(self._streams, call) as ended:
                assert call.principal is not None  # noqa: S101  (admitted before bridging)
                caller = call.principal.caller
                refusal = await listen_stream(
                    receive, send, self._announcements, client, caller, envelope, self._metrics, ended
                )
            if refusal is not None:
                await _send(send, call, refusal, {}, streaming=False)
            return
        if envelope.method in ("resources/subscribe", "resources/unsubscribe") and not is_stateless(version):
            await self._subscription(scope, receive, send, client, call)
            return
        started = self._started(client, call)
        if started is None:
            await _send(send, call, expired(envelope), {}, streaming=False)
            return
        work, channel = started
        assert call.principal is not None  # noqa: S101  (admitted before bridging)
        key = in_flight_key(call.principal, call.headers.get("mcp-session-id"), envelope.id)
        if key is not None:
            self._in_flight[key] = work
        try:
            may_stream = "text/event-stream" in call.headers.get("accept", "")
            outcome = await drive(receive, send, work, channel, call.request_id, may_stream)
        finally:
            if key is not None:
                self._in_flight.pop(key, None)
        if outcome is not None:
            await self._finish(scope, receive, send, call, outcome, work, channel)
        # else: cancelled by the client, or the client went away: no answer (MCP cancellation rules)

    async def _not_a_request(
        self, scope: Scope, receive: Receive, send: Send, client: UpstreamClient, call: Call
    ) -> None:
        """GET and DELETE, notifications, and a handshake-era client's answer to a request meshgate relayed."""
        envelope, principal = call.envelope, call.principal
        assert principal is not None  # noqa: S101  (admitted before bridging)
        if scope["method"] == "GET" and "text/event-stream" in call.headers.get("accept", ""):
            with held_stream(self._streams, call) as ended:
                key = _session_key(call)
                caller = principal.caller
                await session_stream(receive, send, self._announcements, client, caller, key, self._metrics, ended)
        elif scope["method"] != "POST":
            key = _session_key(call)
            if scope["method"] == "DELETE" and key is not None:
                await self._announcements.change_session(key, "end")
            status = 204 if scope["method"] == "DELETE" else 405
            allow = [(b"allow", b"GET, POST, DELETE")]
            await send({"type": "http.response.start", "status": status, "headers": allow})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif envelope.id is None:
            named = as_dict(envelope.params).get("requestId")
            key = in_flight_key(principal, call.headers.get("mcp-session-id"), named)
            if envelope.method == "notifications/cancelled" and key is not None:
                waiting = self._in_flight.get(key)
                if waiting is not None:
                    waiting.cancel()  # the upstream hears notifications/cancelled for meshgate's own id
            await _status(send, 202)
        elif self._interactions.reply(caller_of(principal), envelope.message or {}):
            await _status(send, 202)
        else:
            await mcp_error(scope, receive, send, NotFound(_NO_SUCH_REQUEST), call, self._public_url)

    async def _subscription(
        self, scope: Scope, receive: Receive, send: Send, client: UpstreamClient, call: Call
    ) -> None:
        """A handshake-era `resources/subscribe` or `unsubscribe`: it decides what the session's GET stream
        carries, wherever that stream is held (see `proxy/announcements.py`)."""
        envelope, key = call.envelope, _session_key(call)
        try:
            if key is None:
                raise InvalidInput(f"{envelope.method} needs the Mcp-Session-Id of an initialized session")
            uri = checked_uri(envelope.params)
            if call.principal is None or not await offers_subscriptions(client, call.principal.caller):
                reason = f"upstream {client.config.title} does not offer resource subscriptions"
                await _send(send, call, rpc_error(envelope.id, METHOD_NOT_FOUND, reason), {}, streaming=False)
                return
            operation = "subscribe" if envelope.method == "resources/subscribe" else "unsubscribe"
            await self._announcements.change_session(key, operation, uri)
        except MeshgateError as error:
            await mcp_error(scope, receive, send, error, call, self._public_url)
            return
        await _send(send, call, result_message(envelope.id, {}), {}, streaming=False)

    async def _finish(  # noqa: PLR0917
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        call: Call,
        outcome: Outcome,
        work: Work,
        channel: CallChannel,
    ) -> None:
        envelope = call.envelope
        if outcome.questions:
            state = self._interactions.suspend(Suspended(work, channel, None))
            result = {"resultType": "input_required", "inputRequests": outcome.questions, "requestState": state}
            await _send(send, call, result_message(envelope.id, result), {}, outcome.streaming)
            return
        message, headers, error = outcome.answer
        if error is not None and not outcome.streaming and envelope.method != "tools/call":
            await mcp_error(scope, receive, send, error, call, self._public_url)
            return
        await _send(send, call, {**message, "id": envelope.id}, headers, outcome.streaming)

    def _started(self, client: UpstreamClient, call: Call) -> tuple[Work, CallChannel] | None:
        """The call this request starts, or the suspended one a 2026-07-28 retry resumes (None: unknown)."""
        principal, envelope = call.principal, call.envelope
        assert principal is not None  # noqa: S101  (admitted before bridging)
        version = call.headers.get("mcp-protocol-version")
        stateless = is_stateless(version)
        params = as_dict(envelope.params)
        state = params.get("requestState")
        if stateless and envelope.method in INTERACTIVE and isinstance(state, str) and state.startswith(STATE_PREFIX):
            suspended = self._interactions.resume(caller_of(principal), state, as_dict(params.get("inputResponses")))
            return None if suspended is None else (suspended.work, suspended.channel)
        channel = CallChannel(caller_of(principal), stateless)
        may_stream = "text/event-stream" in call.headers.get("accept", "")
        interactive = envelope.method in INTERACTIVE and (stateless or may_stream)

        async def answering() -> tuple[dict[str, Any], dict[str, str], MeshgateError | None]:
            assert principal is not None  # noqa: S101
            try:
                local = await local_answer(client, envelope, principal.caller)
                if local is not None:
                    return local[0], local[1], None
                message = await self._calls.request(
                    principal,
                    Target(call.conn_id),
                    envelope,
                    call.context,
                    on_progress=channel.progress if may_stream else None,
                    on_server_request=partial(self._interactions.ask, channel) if interactive else None,
                    answer_input_required=not stateless,
                )
            except UpstreamError as error:
                return error_message(envelope.id, error), {}, error
            return stamped(message, envelope, version), {}, None

        return asyncio.ensure_future(answering()), channel


def _session_key(call: Call) -> SessionKey | None:
    """Which handshake-era session (of which caller, on which connection) a request belongs to."""
    session = call.headers.get("mcp-session-id")
    if session is None or call.principal is None:
        return None
    return (call.conn_id, session, caller_of(call.principal))


async def _send(send: Send, call: Call, message: dict[str, Any], headers: dict[str, str], streaming: bool) -> None:
    body = orjson.dumps(message)
    if streaming:
        event = b"event: message\ndata: " + body + b"\n\n"
        await send({"type": "http.response.body", "body": event, "more_body": False})
        return
    out = [(b"content-type", b"application/json"), (b"x-request-id", call.request_id.encode())]
    out += [(name.encode(), value.encode()) for name, value in headers.items()]
    await send({"type": "http.response.start", "status": 200, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _status(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
