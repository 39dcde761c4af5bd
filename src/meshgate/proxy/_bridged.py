"""The proxy's bridged path: SSE and STDIO upstreams, reached over meshgate's own multiplexed session.

meshgate answers the client's handshake itself (`proxy/bridge.py`) and forwards every request over the
connection's session, streaming progress as SSE events before the answer; a client's
`notifications/cancelled` or its going away cancels meshgate's own upstream request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from meshgate.access import Principal
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.http11 import Response
from meshgate.errors import MeshgateError, UpstreamError
from meshgate.jsonvalues import as_dict, as_list
from meshgate.monitoring.models import AUDITED_METHODS
from meshgate.proxy._exchange import Call, disconnected
from meshgate.proxy.bridge import bridged_answer
from meshgate.proxy.messages import Envelope
from meshgate.runtime import Runtime


class BridgedPath:
    """Mixed into `ProxyEndpoint`: the methods it uses for connections with a multiplexed session."""

    _runtime: Runtime
    _bridged: dict[tuple[str, bytes], asyncio.Future[Any]]

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
        """Serve the client from meshgate's own upstream session (legacy SSE upstreams)."""
        principal, envelope = call.principal, call.envelope
        assert principal is not None  # noqa: S101  (admitted before bridging)
        if scope["method"] != "POST":
            status = 204 if scope["method"] == "DELETE" else 405
            await send({"type": "http.response.start", "status": status, "headers": [(b"allow", b"POST, DELETE")]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        session = call.headers.get("mcp-session-id")
        if envelope.method == "notifications/cancelled" and session is not None:
            request_id = as_dict(envelope.params).get("requestId")
            waiting = self._bridged.get((session, orjson.dumps(request_id)))
            if waiting is not None:
                waiting.cancel()  # the upstream hears notifications/cancelled for meshgate's own id
        extra = {
            "x-mesh-token": self._runtime.mesh_tokens.token(principal, call.conn_id),
            "x-request-id": call.request_id,
        }
        call.telemetry.propagate(extra)
        version = call.headers.get("mcp-protocol-version")
        token = as_dict(as_dict(envelope.params).get("_meta")).get("progressToken")
        # Calls stream what the server says meanwhile (progress, log messages) when the client takes SSE.
        streaming = "text/event-stream" in call.headers.get("accept", "") and (
            token is not None or envelope.method in ("tools/call", "prompts/get", "resources/read")
        )
        progress: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        answering = asyncio.ensure_future(
            bridged_answer(client, envelope, version, extra, progress.put_nowait if streaming else None)
        )
        key = None if session is None or envelope.id is None else (session, orjson.dumps(envelope.id))
        if key is not None:
            self._bridged[key] = answering
        try:
            await self._answer_bridged(scope, receive, send, call, answering, progress if streaming else None)
        finally:
            if key is not None:
                self._bridged.pop(key, None)

    async def _answer_bridged(  # noqa: PLR0917
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        call: Call,
        answering: asyncio.Future[tuple[dict[str, Any] | None, dict[str, str]]],
        progress: asyncio.Queue[dict[str, Any]] | None,
    ) -> None:
        principal, envelope = call.principal, call.envelope
        assert principal is not None  # noqa: S101  (admitted before bridging)
        watching = asyncio.ensure_future(disconnected(receive))
        try:
            if progress is not None:
                await self._stream_bridged(send, call, answering, progress, watching)
                return
            await asyncio.wait({answering, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
        if not answering.done():
            answering.cancel()  # the client went away: the upstream hears notifications/cancelled
            await asyncio.gather(answering, return_exceptions=True)
            return
        answer: dict[str, Any] | None = None
        headers: dict[str, str] = {}
        if not answering.cancelled():  # a call the client cancelled gets no answer (MCP cancellation rules)
            try:
                answer, headers = answering.result()
            except UpstreamError as error:
                if envelope.method in AUDITED_METHODS:
                    self._audit(call, error=error)
                await self._error(scope, receive, send, error, call)
                return
        if answer is None:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        body = orjson.dumps(self._filtered(principal, call.conn_id, envelope, answer))
        out = [(b"content-type", b"application/json"), (b"x-request-id", call.request_id.encode())]
        out += [(name.encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        if envelope.method in AUDITED_METHODS:
            self._audit(call, body=body)

    async def _stream_bridged(
        self,
        send: Send,
        call: Call,
        answering: asyncio.Future[tuple[dict[str, Any] | None, dict[str, str]]],
        progress: asyncio.Queue[dict[str, Any]],
        gone: asyncio.Future[None],
    ) -> None:
        """Progress notifications as SSE events while the upstream works, then the answer."""
        headers = [(b"content-type", b"text/event-stream"), (b"x-request-id", call.request_id.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while not answering.done():
            waiting = asyncio.ensure_future(progress.get())
            await asyncio.wait({waiting, answering, gone}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                await send(_event(waiting.result()))
            else:
                waiting.cancel()
            if gone.done() and not answering.done():
                answering.cancel()  # the client went away: the upstream hears notifications/cancelled
                await asyncio.gather(answering, return_exceptions=True)
                return
        while not progress.empty():
            await send(_event(progress.get_nowait()))
        error: UpstreamError | None = None
        try:
            answer, _headers = answering.result()
        except UpstreamError as failure:
            error = failure
            answer = {"jsonrpc": "2.0", "id": call.envelope.id, "error": {"code": -32603, "message": failure.message}}
        assert call.principal is not None  # noqa: S101
        answer = self._filtered(call.principal, call.conn_id, call.envelope, answer or {})
        body = orjson.dumps(answer)
        await send({**_event(answer), "more_body": False})
        if call.envelope.method in AUDITED_METHODS:
            self._audit(call, body=body, error=error)

    @staticmethod
    def _filtered(principal: Principal, conn_id: str, envelope: Envelope, answer: dict[str, Any]) -> dict[str, Any]:
        """A tools/list answer without the tools this caller may not call."""
        result = as_dict(answer.get("result"))
        if envelope.method != "tools/list" or principal.allows(conn_id, "*") or not result:
            return answer
        tools = [t for t in as_list(result.get("tools")) if principal.allows(conn_id, str(as_dict(t).get("name")))]
        return {**answer, "result": {**result, "tools": tools}}


def _event(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http.response.body",
        "body": b"event: message\ndata: " + orjson.dumps(message) + b"\n\n",
        "more_body": True,
    }
