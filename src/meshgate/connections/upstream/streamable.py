"""meshgate's own session with a Streamable HTTP upstream (an `UpstreamSession`).

It opens with `initialize` (handshake era), or, when the upstream speaks only the stateless era, with
`server/discover`, and then sends each request with the `_meta` envelope and `Mcp-Method`/`Mcp-Name`. An
answer that the upstream no longer knows the session (404, or 400 without a JSON-RPC answer) opens a new one,
once, transparently. What the upstream says outside a call arrives on the session's GET stream
(`get_stream.py`), opened once something watches the session. POSTs go through `UpstreamClient.open`, so the
connection's circuit breaker and credentials apply.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import orjson

from meshgate import __version__
from meshgate.connections.upstream.get_stream import GetStream
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout, Pool, Response
from meshgate.connections.upstream.progress import ProgressRoutes
from meshgate.connections.upstream.server_requests import ServerRequests
from meshgate.connections.upstream.session import Notification, ServerRequestHandler
from meshgate.connections.upstream.sse import EventReader, event_message, response_for
from meshgate.errors import UpstreamError, UpstreamInvalidResponse, UpstreamTimeout
from meshgate.jsonvalues import as_dict
from meshgate.protocol import (
    CLIENT_CAPABILITIES_META,
    CLIENT_INFO_META,
    HANDSHAKE_VERSION,
    PROTOCOL_VERSION_META,
    SERVER_INFO_META,
    STATELESS_VERSION,
    is_stateless,
    routing_headers,
)

log = logging.getLogger(__name__)

MAX_OWN_RESPONSE = 16 * 1024 * 1024
# Notifications that belong to the caller whose call they arrive with (not to the session).
CALLERS_NOTIFICATIONS = frozenset({"notifications/message", "notifications/elicitation/complete"})
Forward = Callable[[str, Mapping[str, str], bytes | None], Awaitable[Response]]
OnMessage = Callable[[dict[str, Any]], Awaitable[None]]


def stateless_message(
    message: dict[str, Any], headers: dict[str, str], capabilities: Mapping[str, Any]
) -> dict[str, Any]:
    """A request for a stateless-era server: the per-request `_meta` envelope, and its routing headers."""
    method = str(message["method"])
    params = as_dict(message.get("params"))
    meta = {
        **as_dict(params.get("_meta")),
        PROTOCOL_VERSION_META: STATELESS_VERSION,
        CLIENT_CAPABILITIES_META: dict(capabilities),
        CLIENT_INFO_META: {"name": "meshgate", "version": __version__},
    }
    headers.update(routing_headers(method, params))
    return {**message, "params": {**params, "_meta": meta}}


_BIG_EVENT = 1024 * 1024  # characters of event data past which parsing takes milliseconds


class StreamableHttpSession:
    """One session of meshgate's with a Streamable HTTP upstream."""

    def __init__(
        self,
        title: str,
        pool: Pool,
        forward: Forward,
        credential_headers: Mapping[str, str],
        *,
        call_timeout: float,
        capabilities: Mapping[str, Any],
    ) -> None:
        self.title = title
        self.capabilities = capabilities
        self._pool = pool
        self._forward = forward
        self._credentials = dict(credential_headers)
        self._call_timeout = call_timeout
        self._ids = itertools.count(1)
        self._session_id: str | None = None
        self.version = HANDSHAKE_VERSION
        self._init_lock = asyncio.Lock()
        self.initialize_result: dict[str, Any] | None = None
        self.on_reopen: Callable[[], None] | None = None
        self._opened_before = False
        self._progress = ProgressRoutes()
        self._watcher: Notification | None = None
        self._in_flight: dict[int, ServerRequestHandler | None] = {}  # requests of this session, by a local key
        self._in_flight_keys = itertools.count()
        self._server_requests = ServerRequests(title, self._send_quietly)  # bounded (security review 15)
        self.stream = GetStream(
            title,
            pool,
            self._stream_headers,
            self._ensure_session,
            self._forget,
            self._heard,
            head_timeout=call_timeout,
        )

    # --- UpstreamSession --------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        on_progress: Notification | None = None,
        on_server_request: ServerRequestHandler | None = None,
    ) -> dict[str, Any]:
        await self._ensure_session()

        async def on_message(message: dict[str, Any]) -> None:
            if "id" in message and "method" in message:
                answer = None if on_server_request is None else await on_server_request(message)
                await self._answer_server(message, answer)
            elif message.get("method") in CALLERS_NOTIFICATIONS and on_progress is not None:
                on_progress(message)  # a log message (or elicitation notice) on this call's stream is its caller's
            else:
                self._heard([message])

        params, progress_key = self._progress.register(params, on_progress)
        key = next(self._in_flight_keys)
        self._in_flight[key] = on_server_request
        try:
            return await self._request(method, params, extra_headers, on_message)
        finally:
            self._progress.release(progress_key)
            del self._in_flight[key]

    async def upstream_info(self) -> dict[str, Any]:
        await self._ensure_session()
        return self.initialize_result or {}

    def watch(self, listener: Notification) -> None:
        self._watcher = listener
        self.stream.start()

    async def stream_ready(self) -> None:
        await self.stream.ready()

    async def stateless(self) -> bool:
        """Whether the upstream speaks only the stateless era (the session tells once opened)."""
        await self._ensure_session()
        return is_stateless(self.version)

    async def close(self) -> None:
        await self.stream.close()
        await self._server_requests.close()
        if self._session_id is None:
            return
        headers = {**self._credentials, "mcp-session-id": self._session_id, "mcp-protocol-version": self.version}
        try:
            async with asyncio.timeout(3):
                response = await self._pool.request("DELETE", headers, None, head_timeout=2)
            response.release()
        except (TimeoutError, HttpError):
            pass  # the upstream will expire the session by itself

    # --- requests ---------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        on_message: OnMessage,
    ) -> dict[str, Any]:
        """One request within the connection's call timeout, however chatty or slow the upstream is."""
        deadline = asyncio.get_running_loop().time() + self._call_timeout
        try:
            async with asyncio.timeout_at(deadline):
                for attempt in range(2):
                    message_id = next(self._ids)
                    message: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id, "method": method}
                    if params is not None:
                        message["params"] = params
                    sent_session = self._session_id
                    status, content_type, body, found = await self._post(message, extra_headers, on_message, deadline)
                    if attempt == 0 and sent_session is not None and _gone(status, content_type, body, message_id):
                        # The upstream forgot the session (restart, idle timeout): start a new one, once.
                        log.info(
                            "upstream %s forgot meshgate's session (HTTP %s): opening a new one", self.title, status
                        )
                        await self._forget(sent_session)
                        await self._ensure_session()
                        continue
                    if found is not None:  # read from an SSE stream: parsed once, already
                        return found
                    return self._expect_response(status, content_type, body, message_id)
        except TimeoutError as exc:
            raise self._past_call_timeout() from exc
        raise UpstreamInvalidResponse(f"upstream {self.title} keeps rejecting meshgate's session")

    async def _answer_server(self, request: dict[str, Any], answer: dict[str, Any] | None) -> None:
        """Send the answer to a server-to-client request back on the session."""
        if answer is None:
            error = {"code": -32601, "message": "this client of meshgate cannot answer server-to-client requests"}
            answer = {"jsonrpc": "2.0", "id": request["id"], "error": error}
        await self._send_quietly({**answer, "jsonrpc": "2.0", "id": request["id"]})

    async def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            await self._post(message)
        except UpstreamError as error:
            log.info("could not answer a request of upstream %s: %s", self.title, error.message)

    async def _post(
        self,
        message: dict[str, Any],
        extra_headers: Mapping[str, str] | None = None,
        on_message: OnMessage | None = None,
        deadline: float | None = None,
    ) -> tuple[int, str, bytes, dict[str, Any] | None]:
        """POST one message on the session: status, content type, body and, for an SSE answer, the response.

        An SSE answer is read event by event: other messages go to `on_message` as they come, and the
        response to `message` is returned parsed (a big answer is parsed once, not again from its bytes).
        The answer must be whole by `deadline` (event loop time; by default the call timeout from now)."""
        if deadline is None:
            deadline = asyncio.get_running_loop().time() + self._call_timeout
        headers = {
            **self._credentials,
            **(extra_headers or {}),
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": self.version,
            "user-agent": f"meshgate/{__version__}",
        }
        if self._session_id is not None:
            headers["mcp-session-id"] = self._session_id
        if is_stateless(self.version) and "method" in message:
            message = stateless_message(message, headers, self.capabilities)
        response = await self._forward("POST", headers, orjson.dumps(message))
        try:
            if response.status < 400 and "mcp-session-id" in response.headers:
                self._session_id = response.headers["mcp-session-id"]
            content_type = response.headers.get("content-type", "")
            found = None
            if on_message is not None and response.status < 400 and content_type.startswith("text/event-stream"):
                found = await self._read_events(response, message, on_message, deadline)
                body, content_type = b"", "application/json"
            else:
                body = await response.read(MAX_OWN_RESPONSE, idle_s=self._call_timeout, deadline=deadline)
        except HttpTimeout as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise self._past_call_timeout() from exc
            raise UpstreamTimeout(f"upstream {self.title} did not finish its answer in time") from exc
        except (HttpError, ValueError) as exc:
            raise UpstreamInvalidResponse(f"upstream {self.title} broke off its answer: {exc}") from exc
        finally:
            response.release()
        return response.status, content_type, body, found

    def _past_call_timeout(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"upstream {self.title} did not answer within its call timeout ({self._call_timeout:g} s)"
        )

    async def _read_events(
        self, response: Response, message: dict[str, Any], on_message: OnMessage, deadline: float
    ) -> dict[str, Any] | None:
        reader = EventReader(MAX_OWN_RESPONSE)
        async for chunk in response.iter_chunks(self._call_timeout, deadline=deadline):
            for event in reader.feed(chunk):
                big = len(event.data) > _BIG_EVENT
                if big:  # splitting, parsing and using a big event are turns of their own: others get in between
                    await asyncio.sleep(0)
                found = event_message(event)
                if big:
                    await asyncio.sleep(0)
                if found is None:
                    continue
                if found.get("id") == message.get("id") and ("result" in found or "error" in found):
                    return found
                await on_message(found)
        return None

    def _expect_response(self, status: int, content_type: str, body: bytes, message_id: int) -> dict[str, Any]:
        if status in (401, 403):
            raise UpstreamError(f"upstream {self.title} refused meshgate's credentials (HTTP {status})")
        response = response_for(body, content_type, message_id)
        if response is None:
            snippet = body[:200].decode("utf-8", errors="replace")
            raise UpstreamInvalidResponse(
                f"upstream {self.title} answered HTTP {status} without a JSON-RPC response: {snippet!r}"
            )
        return response

    # --- the session itself -----------------------------------------------------------------------------

    async def _ensure_session(self) -> None:
        if self.initialize_result is not None:
            return
        async with self._init_lock:
            if self.initialize_result is not None:
                return
            params = {
                "protocolVersion": HANDSHAKE_VERSION,
                "capabilities": self.capabilities,
                "clientInfo": {"name": "meshgate", "version": __version__},
            }
            status, content_type, body, _ = await self._post(
                {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
            )
            response = None if status in (401, 403) else response_for(body, content_type, 0)
            if response is None or "error" in response:
                # A server of the stateless era only (2026-07-28) has no handshake: ask it what it is instead.
                discovered = await self._discover() if status not in (401, 403) else None
                if discovered is None:
                    response = self._expect_response(status, content_type, body, 0)
                    reason = as_dict(response.get("error")).get("message", "")
                    raise UpstreamInvalidResponse(f"upstream {self.title} refused to initialize: {reason}")
                self.initialize_result = discovered
            else:
                self.version = str(as_dict(response.get("result")).get("protocolVersion", HANDSHAKE_VERSION))
                await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
                self.initialize_result = as_dict(response.get("result"))
            if self._opened_before and self.on_reopen is not None:
                self.on_reopen()
            self._opened_before = True

    async def _discover(self) -> dict[str, Any] | None:
        """`server/discover` in the stateless era, shaped like an initialize result; None if refused."""
        previous, self.version = self.version, STATELESS_VERSION
        status, content_type, body, _ = await self._post({"jsonrpc": "2.0", "id": 0, "method": "server/discover"})
        response = response_for(body, content_type, 0) if status < 400 else None
        result = as_dict(None if response is None else response.get("result"))
        if not result:
            self.version = previous
            return None
        found: dict[str, Any] = {
            "protocolVersion": STATELESS_VERSION,
            "capabilities": as_dict(result.get("capabilities")),
            "serverInfo": as_dict(as_dict(result.get("_meta")).get(SERVER_INFO_META)) or {"name": self.title},
        }
        if isinstance(result.get("instructions"), str):
            found["instructions"] = result["instructions"]
        return found

    async def _forget(self, gone: str | None = None) -> None:
        """Forget the session (`gone`: only if it is still that one, not one a concurrent call opened)."""
        async with self._init_lock:
            if gone is not None and self._session_id != gone:
                return
            self._session_id = None
            self.initialize_result = None

    # --- what the upstream says outside a call ----------------------------------------------------------

    def _stream_headers(self) -> dict[str, str]:
        headers = {
            **self._credentials,
            "accept": "text/event-stream",
            "mcp-protocol-version": self.version,
            "user-agent": f"meshgate/{__version__}",
        }
        if self._session_id is not None:
            headers["mcp-session-id"] = self._session_id
        return headers

    def _heard(self, found: list[dict[str, Any]], size: int = 0) -> None:
        """Messages outside a call: progress to its request's caller, requests to the one caller in flight,
        the rest to the watcher."""
        for message in found:
            if "method" not in message:
                continue
            if "id" in message:  # a request on the GET stream (the SDK sends roots/list there)
                self._server_requests.take(message, size, partial(self._answer_outside, message))
            elif message["method"] == "notifications/progress":
                self._progress.deliver(message)
            elif self._watcher is not None:
                self._watcher(message)

    async def _answer_outside(self, request: dict[str, Any]) -> None:
        """A request that names no call goes to the caller only while exactly one call is in flight (as on SSE
        and STDIO sessions), so it never reaches the wrong caller; otherwise it is refused."""
        handlers = list(self._in_flight.values())
        handler = handlers[0] if len(handlers) == 1 else None
        answer = None
        if handler is not None:
            try:
                answer = await handler(request)
            except TimeoutError:  # the caller's wait ran out: the upstream still gets an answer
                answer = {"error": {"code": -32603, "message": "the caller did not answer in time"}}
        await self._answer_server(request, answer)


def _gone(status: int, content_type: str, body: bytes, message_id: int) -> bool:
    """Whether an answer says the upstream no longer knows the session the request carried: 404 (the spec's
    answer), or 400 that is no JSON-RPC answer to the request (what some servers send for unknown ids)."""
    return status == 404 or (status == 400 and response_for(body, content_type, message_id) is None)
