"""The proxy's bridged path: SSE and STDIO upstreams, reached over meshgate's own multiplexed session.

meshgate answers the client's handshake itself (`proxy/bridge.py`) and forwards every request over the
connection's session, streaming progress as SSE events before the answer; a client's
`notifications/cancelled` or its going away cancels meshgate's own upstream request. What the upstream
announces reaches clients' GET and `subscriptions/listen` streams (`proxy/_bridged_streams.py`).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from meshgate.access import Principal
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.http11 import Response
from meshgate.errors import InvalidInput, MeshgateError, NotFound, UpstreamError
from meshgate.jsonvalues import as_dict, as_list
from meshgate.monitoring.models import AUDITED_METHODS
from meshgate.proxy._bridged_streams import listen_stream, session_stream
from meshgate.proxy._exchange import Call, held_stream
from meshgate.proxy.announcements import Announcements, SessionKey, checked_uri, offers_subscriptions
from meshgate.proxy.bridge import bridged_answer, is_stateless
from meshgate.proxy.interactions import (
    INTERACTIVE,
    STATE_PREFIX,
    CallChannel,
    Interactions,
    Outcome,
    Suspended,
    Work,
    caller_of,
    drive,
    expired,
)
from meshgate.proxy.messages import Envelope
from meshgate.runtime import Runtime

_NO_SUCH_REQUEST = "no request with this id is waiting for an answer on this gateway process"


class BridgedPath:
    """Mixed into `ProxyEndpoint`: the methods it uses for connections with a multiplexed session."""

    _runtime: Runtime
    _bridged: dict[tuple[str, bytes], asyncio.Future[Any]]
    _interactions: Interactions
    _announcements: Announcements

    async def _error(self, scope: Scope, receive: Receive, send: Send, error: MeshgateError, call: Call) -> None:
        raise NotImplementedError

    def _audit(
        self,
        call: Call,
        *,
        response: Response | None = None,
        body: bytes | None = None,
        error: MeshgateError | None = None,
    ) -> None:
        raise NotImplementedError

    async def _bridge(self, scope: Scope, receive: Receive, send: Send, client: UpstreamClient, call: Call) -> None:
        """Serve the client from meshgate's own upstream session (SSE and STDIO upstreams)."""
        envelope = call.envelope
        self._announcements.watch(client)
        if scope["method"] != "POST" or envelope.id is None or envelope.method is None:
            await self._not_a_request(scope, receive, send, client, call)
            return
        version = call.headers.get("mcp-protocol-version")
        if envelope.method == "subscriptions/listen" and is_stateless(version):
            with held_stream(self._runtime.streams, call) as ended:
                metrics = self._runtime.metrics
                refusal = await listen_stream(receive, send, self._announcements, client, envelope, metrics, ended)
            if refusal is not None:
                await self._send(send, call, refusal, {}, streaming=False)
            return
        if envelope.method in ("resources/subscribe", "resources/unsubscribe") and not is_stateless(version):
            await self._subscription(scope, receive, send, client, call)
            return
        session = call.headers.get("mcp-session-id")
        started = self._bridged_call(client, call)
        if started is None:
            await self._send(send, call, expired(envelope), {}, streaming=False)
            return
        work, channel = started
        key = None if session is None else (session, orjson.dumps(envelope.id))
        if key is not None:
            self._bridged[key] = work
        try:
            may_stream = "text/event-stream" in call.headers.get("accept", "")
            outcome = await drive(receive, send, work, channel, call.request_id, may_stream)
        finally:
            if key is not None:
                self._bridged.pop(key, None)
        if outcome is not None:
            await self._finish_bridged(scope, receive, send, call, outcome, work, channel)
        # else: cancelled by the client, or the client went away: no answer (MCP cancellation rules)

    async def _not_a_request(
        self, scope: Scope, receive: Receive, send: Send, client: UpstreamClient, call: Call
    ) -> None:
        """GET and DELETE, notifications, and a handshake-era client's answer to a request meshgate relayed."""
        envelope, principal = call.envelope, call.principal
        assert principal is not None  # noqa: S101  (admitted before bridging)
        if scope["method"] == "GET" and "text/event-stream" in call.headers.get("accept", ""):
            with held_stream(self._runtime.streams, call) as ended:
                key, metrics = _session_key(call), self._runtime.metrics
                await session_stream(receive, send, self._announcements, client, key, metrics, ended)
        elif scope["method"] != "POST":
            key = _session_key(call)
            if scope["method"] == "DELETE" and key is not None:
                await self._announcements.change_session(key, "end")
            status = 204 if scope["method"] == "DELETE" else 405
            allow = [(b"allow", b"GET, POST, DELETE")]
            await send({"type": "http.response.start", "status": status, "headers": allow})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif envelope.id is None:
            session = call.headers.get("mcp-session-id")
            if envelope.method == "notifications/cancelled" and session is not None:
                waiting = self._bridged.get((session, orjson.dumps(as_dict(envelope.params).get("requestId"))))
                if waiting is not None:
                    waiting.cancel()  # the upstream hears notifications/cancelled for meshgate's own id
            await _status(send, 202)
        elif self._interactions.reply(caller_of(principal), envelope.message or {}):
            await _status(send, 202)
        else:
            await self._error(scope, receive, send, NotFound(_NO_SUCH_REQUEST), call)

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
            if not await offers_subscriptions(client):
                reason = f"upstream {client.config.title} does not offer resource subscriptions"
                error = {"jsonrpc": "2.0", "id": envelope.id, "error": {"code": -32601, "message": reason}}
                await self._send(send, call, error, {}, streaming=False)
                return
            operation = "subscribe" if envelope.method == "resources/subscribe" else "unsubscribe"
            await self._announcements.change_session(key, operation, uri)
        except MeshgateError as error:
            await self._error(scope, receive, send, error, call)
            return
        await self._send(send, call, {"jsonrpc": "2.0", "id": envelope.id, "result": {}}, {}, streaming=False)

    async def _finish_bridged(  # noqa: PLR0917
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
            await self._send(send, call, {"jsonrpc": "2.0", "id": envelope.id, "result": result}, {}, outcome.streaming)
            return
        message, headers, error = outcome.answer
        if error is not None and not outcome.streaming and envelope.method != "tools/call":
            if envelope.method in AUDITED_METHODS:
                self._audit(call, error=error)
            await self._error(scope, receive, send, error, call)
            return
        body = await self._send(send, call, {**message, "id": envelope.id}, headers, outcome.streaming)
        if envelope.method in AUDITED_METHODS:
            self._audit(call, body=body, error=error)

    def _bridged_call(self, client: UpstreamClient, call: Call) -> tuple[Work, CallChannel] | None:
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
        extra = {
            "x-mesh-token": self._runtime.mesh_tokens.token(principal, call.conn_id),
            "x-request-id": call.request_id,
        }
        call.telemetry.propagate(extra)

        async def answering() -> tuple[dict[str, Any], dict[str, str], MeshgateError | None]:
            assert principal is not None  # noqa: S101
            try:
                answer, headers = await bridged_answer(
                    client,
                    envelope,
                    version,
                    extra,
                    channel.progress if may_stream else None,
                    partial(self._interactions.ask, channel) if interactive else None,
                )
            except UpstreamError as error:
                failure = {"jsonrpc": "2.0", "id": envelope.id, "error": {"code": -32603, "message": error.message}}
                return failure, {}, error
            return self._filtered(principal, call.conn_id, envelope, answer or {}), headers, None

        return asyncio.ensure_future(answering()), channel

    @staticmethod
    async def _send(send: Send, call: Call, message: dict[str, Any], headers: dict[str, str], streaming: bool) -> bytes:
        body = orjson.dumps(message)
        if streaming:
            event = b"event: message\ndata: " + body + b"\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": False})
            return body
        out = [(b"content-type", b"application/json"), (b"x-request-id", call.request_id.encode())]
        out += [(name.encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return body

    @staticmethod
    def _filtered(principal: Principal, conn_id: str, envelope: Envelope, answer: dict[str, Any]) -> dict[str, Any]:
        """A tools/list answer without the tools this caller may not call."""
        result = as_dict(answer.get("result"))
        if envelope.method != "tools/list" or principal.allows(conn_id, "*") or not result:
            return answer
        tools = [t for t in as_list(result.get("tools")) if principal.allows(conn_id, str(as_dict(t).get("name")))]
        return {**answer, "result": {**result, "tools": tools}}


def _session_key(call: Call) -> SessionKey | None:
    """Which handshake-era session (of which caller, on which connection) a request belongs to."""
    session = call.headers.get("mcp-session-id")
    if session is None or call.principal is None:
        return None
    return (call.conn_id, session, caller_of(call.principal))


async def _status(send: Send, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
