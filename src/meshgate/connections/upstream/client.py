"""One pooled HTTP client per upstream connection, shared by every caller.

`open()` forwards a request and hands back the streaming response (the proxy's path). `request()` is
meshgate's own JSON-RPC client for discovery, tests and REST calls: it keeps one handshake-era session
with the upstream and re-initializes when the upstream forgets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from meshgate import __version__
from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.models import UpstreamConfig
from meshgate.connections.upstream._watching import Notification, ServerRequestHandler, WatchedSession
from meshgate.connections.upstream.breaker import CircuitBreaker
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout, Pool, Response
from meshgate.connections.upstream.legacy_sse import LegacySseSession
from meshgate.connections.upstream.multiplex import CLIENT_CAPABILITIES, MultiplexedSession
from meshgate.connections.upstream.progress import ProgressRoutes
from meshgate.connections.upstream.sse import EventReader, messages, response_for
from meshgate.connections.upstream.stdio import StdioSession, StdioSupervisor
from meshgate.errors import (
    UpstreamError,
    UpstreamInvalidResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from meshgate.jsonvalues import as_dict

log = logging.getLogger(__name__)

HANDSHAKE_VERSION = "2025-11-25"
_ssl_context: ssl.SSLContext | None = None
_MAX_OWN_RESPONSE = 16 * 1024 * 1024
STATELESS_VERSION = "2026-07-28"
_MAX_INPUT_ROUNDS = 8
_SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"
# Notifications that belong to the caller whose call they arrive with (not to meshgate's session).
CALLERS_NOTIFICATIONS = frozenset({"notifications/message", "notifications/elicitation/complete"})
_NAMED_BY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}


def shared_ssl_context() -> ssl.SSLContext:
    """One SSL context for every upstream (creating one costs tens of milliseconds)."""
    global _ssl_context  # noqa: PLW0603  (a process-wide cache, created on first use)
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
    return _ssl_context


class UpstreamClient(WatchedSession):
    """The connection to one upstream MCP server.

    Its session declares `capabilities` to the upstream: by default what meshgate's callers can answer
    (sampling, elicitation, roots); `{}` for a client no caller uses (discovery when a connection is saved).
    """

    def __init__(
        self,
        config: UpstreamConfig,
        addresses: AddressPolicy | None = None,
        stdio: StdioSupervisor | None = None,
        *,
        capabilities: Mapping[str, Any] = CLIENT_CAPABILITIES,
    ) -> None:
        if config.url is None and config.connection_type != "STDIO":
            raise UpstreamInvalidResponse(f"connection {config.title} has no URL")
        self.config = config
        self.url = config.url or "http://stdio.invalid/"  # STDIO: the pool below is never used
        self.breaker = CircuitBreaker(config.title)
        self.credential_headers = self._credential_headers()
        self.call_timeout = config.call_timeout_ms / 1000
        self.capabilities = capabilities
        self._pool = Pool(
            self.url,
            ssl_context=shared_ssl_context(),
            connect_timeout=config.connect_timeout_ms / 1000,
            addresses=addresses,
        )
        self._ids = itertools.count(1)
        self._session_id: str | None = None
        self._version = HANDSHAKE_VERSION
        self._init_lock = asyncio.Lock()
        self.initialize_result: dict[str, Any] | None = None
        self.session: MultiplexedSession | None = None
        self._watchers: dict[str, Notification] = {}
        self._serves_stateless: bool | None = None
        self._progress = ProgressRoutes()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[int, ServerRequestHandler | None] = {}  # meshgate's requests, by a local key
        self._in_flight_keys = itertools.count()
        self._listening: asyncio.Task[None] | None = None
        self.stream_open = asyncio.Event()  # meshgate's GET stream with an HTTP upstream is being read
        self.stream_refused = False  # the HTTP upstream offers no GET stream
        if config.connection_type == "STDIO":
            if stdio is None or config.secrets.stdio is None:
                raise UpstreamUnavailable(
                    f"connection {config.title} runs a local command: start meshgate with --local-mode"
                )
            self.session = StdioSession(
                config.title,
                config.secrets.stdio,
                stdio,
                connect_timeout=config.connect_timeout_ms / 1000,
                call_timeout=self.call_timeout,
                capabilities=capabilities,
            )
        elif config.connection_type == "SSE":
            self.session = LegacySseSession(
                self.url,
                config.title,
                self.credential_headers,
                ssl_context=shared_ssl_context(),
                connect_timeout=config.connect_timeout_ms / 1000,
                call_timeout=self.call_timeout,
                addresses=addresses,
                capabilities=capabilities,
            )

    def _credential_headers(self) -> dict[str, str]:
        headers = {k: v for k, v in self.config.secrets.headers.items() if k.lower() not in ("host", "content-length")}
        if self.config.secrets.token:
            headers["authorization"] = f"Bearer {self.config.secrets.token}"
        return headers

    async def open(
        self, method: str, headers: Mapping[str, str], body: bytes | None, *, stream: bool = False
    ) -> Response:
        """Send one HTTP request upstream and return the response with its body unread.

        The caller releases it. `stream` (long-lived GET streams) lifts the wait for the response head. The
        body is the caller's to bound: `call_deadline()` is when a call's whole answer is due.
        """
        probe = self.breaker.before_call()
        try:
            response = await self._pool.request(
                method, headers, body, head_timeout=None if stream else self.call_timeout
            )
        except HttpTimeout as exc:
            self.breaker.record_failure("no answer within its timeout")
            raise UpstreamTimeout(f"upstream {self.config.title} did not answer within its timeout") from exc
        except HttpError as exc:
            self.breaker.record_failure(f"unreachable: {exc}")
            raise UpstreamUnreachable(f"upstream {self.config.title} is unreachable: {exc}") from exc
        except BaseException:
            self.breaker.abandon(probe)  # cancelled: no outcome to learn from
            raise
        if response.status >= 500:
            self.breaker.record_failure(f"answered HTTP {response.status}")
        else:
            self.breaker.record_success()
        return response

    def call_deadline(self) -> float:
        """When a call sent now must have its whole answer (event loop time): the connection's call timeout."""
        return asyncio.get_running_loop().time() + self.call_timeout

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        on_server_request: ServerRequestHandler | None = None,
        answer_input_required: bool = False,
    ) -> dict[str, Any]:
        """A JSON-RPC request on meshgate's own session; returns the response message (result or error).

        Progress notifications for the request go to `on_progress` as they arrive; a request the server
        sends meanwhile (sampling, elicitation, roots) goes to `on_server_request`, whose answer is sent
        back, or is refused when there is none. With `answer_input_required`, a 2026-07-28 server's
        `input_required` result is answered the same way (each input request through `on_server_request`)
        and the request retried with the responses, for callers that cannot take such a result.
        """
        response = await self._request_once(method, params, extra_headers, on_progress, on_server_request)
        if not answer_input_required or on_server_request is None:
            return response
        for _ in range(_MAX_INPUT_ROUNDS):
            result = as_dict(response.get("result"))
            if result.get("resultType") != "input_required":
                return response
            responses: dict[str, Any] = {}
            for key, wanted in as_dict(result.get("inputRequests")).items():
                request = {"jsonrpc": "2.0", "id": f"input-{key}", **as_dict(wanted)}
                answer = as_dict(await on_server_request(request))
                if "result" not in answer:
                    error = as_dict(answer.get("error")) or {"code": -32603, "message": "no answer to " + key}
                    return {"jsonrpc": "2.0", "id": response.get("id"), "error": error}
                responses[key] = answer["result"]
            retry = {k: v for k, v in as_dict(params).items() if k not in ("inputResponses", "requestState")}
            retry["inputResponses"] = responses
            if isinstance(result.get("requestState"), str):
                retry["requestState"] = result["requestState"]
            params = retry
            response = await self._request_once(method, params, extra_headers, on_progress, on_server_request)
        return response

    async def _request_once(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        on_progress: Callable[[dict[str, Any]], None] | None,
        on_server_request: ServerRequestHandler | None,
    ) -> dict[str, Any]:
        if self.session is not None:
            return await self._session_request(method, params, extra_headers, on_progress, on_server_request)
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

    async def _request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        on_message: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> dict[str, Any]:
        """One request within the connection's call timeout, however chatty or slow the upstream is."""
        deadline = self.call_deadline()
        try:
            async with asyncio.timeout_at(deadline):
                for attempt in range(2):
                    message_id = next(self._ids)
                    message: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id, "method": method}
                    if params is not None:
                        message["params"] = params
                    sent_session = self._session_id
                    status, content_type, body = await self._post(message, extra_headers, on_message, deadline)
                    if (
                        attempt == 0
                        and sent_session is not None
                        and _session_gone(status, content_type, body, message_id)
                    ):
                        # The upstream forgot our session (restart, idle timeout): start a new one, once.
                        log.info(
                            "upstream %s forgot meshgate's session (HTTP %s): opening a new one",
                            self.config.title,
                            status,
                        )
                        await self._reset_session(sent_session)
                        await self._ensure_session()
                        continue
                    return self._expect_response(status, content_type, body, message_id)
        except TimeoutError as exc:
            raise self._past_call_timeout() from exc
        raise UpstreamInvalidResponse(f"upstream {self.config.title} keeps rejecting meshgate's session")

    async def _answer_server(self, request: dict[str, Any], answer: dict[str, Any] | None) -> None:
        """Send the answer to a server-to-client request back on meshgate's session."""
        if answer is None:
            error = {"code": -32601, "message": "this client of meshgate cannot answer server-to-client requests"}
            answer = {"jsonrpc": "2.0", "id": request["id"], "error": error}
        try:
            await self._post({**answer, "jsonrpc": "2.0", "id": request["id"]})
        except UpstreamError as error:
            log.info("could not answer a request of upstream %s: %s", self.config.title, error.message)

    async def refuses_handshake(self) -> bool:
        """Whether the upstream speaks only the stateless era (meshgate's own session tells, once opened)."""
        if self.session is not None:
            return False
        await self._ensure_session()
        return self._version >= "2026"

    async def serves_stateless(self) -> bool:
        """Whether the upstream takes 2026-07-28 requests: asked once with `server/discover`, then remembered."""
        if self.session is not None:
            return False
        if self._serves_stateless is None:
            headers = {
                **self.credential_headers,
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": STATELESS_VERSION,
                "user-agent": f"meshgate/{__version__}",
            }
            message = _stateless({"jsonrpc": "2.0", "id": 0, "method": "server/discover"}, headers)
            response = await self.open("POST", headers, orjson.dumps(message))
            try:
                body = await response.read(_MAX_OWN_RESPONSE, idle_s=self.call_timeout)
            except HttpError:
                body = b""
            finally:
                response.release()
            found = response_for(body, response.headers.get("content-type", ""), 0) if response.status < 400 else None
            self._serves_stateless = found is not None and "result" in found
        return self._serves_stateless

    async def upstream_info(self) -> dict[str, Any]:
        """The upstream's initialize result (opening meshgate's session when needed)."""
        if self.session is not None:
            await self._session_request("ping", None, None, None)
            return self.session.initialize_result or {}
        await self._ensure_session()
        return self.initialize_result or {}

    async def _session_request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        on_progress: Callable[[dict[str, Any]], None] | None,
        on_server_request: ServerRequestHandler | None = None,
    ) -> dict[str, Any]:
        assert self.session is not None  # noqa: S101  (only called for SSE and STDIO connections)
        self.breaker.before_call()
        try:
            response = await self.session.request(
                method,
                params,
                extra_headers=extra_headers,
                on_progress=on_progress,
                on_server_request=on_server_request,
            )
        except (UpstreamUnreachable, UpstreamTimeout):
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        self.initialize_result = self.session.initialize_result
        return response

    async def _post(
        self,
        message: dict[str, Any],
        extra_headers: Mapping[str, str] | None = None,
        on_message: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        deadline: float | None = None,
    ) -> tuple[int, str, bytes]:
        """POST one message on meshgate's session. An SSE answer is read event by event: other messages
        go to `on_message` as they come, and the response to `message` is returned as JSON. The answer
        must be whole by `deadline` (event loop time; by default the call timeout from now)."""
        if deadline is None:
            deadline = self.call_deadline()
        headers = {
            **self.credential_headers,
            **(extra_headers or {}),
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": self._version,
            "user-agent": f"meshgate/{__version__}",
        }
        if self._session_id is not None:
            headers["mcp-session-id"] = self._session_id
        if self._version >= "2026" and "method" in message:
            message = _stateless(message, headers)
        response = await self.open("POST", headers, orjson.dumps(message))
        try:
            if response.status < 400 and "mcp-session-id" in response.headers:
                self._session_id = response.headers["mcp-session-id"]
            content_type = response.headers.get("content-type", "")
            if on_message is not None and response.status < 400 and content_type.startswith("text/event-stream"):
                body = await self._read_events(response, message, on_message, deadline)
                content_type = "application/json"
            else:
                body = await response.read(_MAX_OWN_RESPONSE, idle_s=self.call_timeout, deadline=deadline)
        except HttpTimeout as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise self._past_call_timeout() from exc
            raise UpstreamTimeout(f"upstream {self.config.title} did not finish its answer in time") from exc
        except (HttpError, ValueError) as exc:
            raise UpstreamInvalidResponse(f"upstream {self.config.title} broke off its answer: {exc}") from exc
        finally:
            response.release()
        return response.status, content_type, body

    def _past_call_timeout(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"upstream {self.config.title} did not answer within its call timeout ({self.call_timeout:g} s)"
        )

    async def _read_events(
        self,
        response: Response,
        message: dict[str, Any],
        on_message: Callable[[dict[str, Any]], Awaitable[None]],
        deadline: float,
    ) -> bytes:
        reader = EventReader(_MAX_OWN_RESPONSE)
        async for chunk in response.iter_chunks(self.call_timeout, deadline=deadline):
            for event in reader.feed(chunk):
                data = event.data.encode()
                for found in messages(data, "application/json"):
                    if found.get("id") == message.get("id") and ("result" in found or "error" in found):
                        return data
                    await on_message(found)
        return b""

    def _expect_response(self, status: int, content_type: str, body: bytes, message_id: int) -> dict[str, Any]:
        if status in (401, 403):
            raise UpstreamError(f"upstream {self.config.title} refused meshgate's credentials (HTTP {status})")
        response = response_for(body, content_type, message_id)
        if response is None:
            snippet = body[:200].decode("utf-8", errors="replace")
            raise UpstreamInvalidResponse(
                f"upstream {self.config.title} answered HTTP {status} without a JSON-RPC response: {snippet!r}"
            )
        return response

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
            status, content_type, body = await self._post(
                {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
            )
            response = None if status in (401, 403) else response_for(body, content_type, 0)
            if response is None or "error" in response:
                # A server of the stateless era only (2026-07-28) has no handshake: ask it what it is instead.
                discovered = await self._discover() if status not in (401, 403) else None
                if discovered is not None:
                    self.initialize_result = discovered
                    return
                response = self._expect_response(status, content_type, body, 0)
                raise UpstreamInvalidResponse(
                    f"upstream {self.config.title} refused to initialize: {response['error'].get('message', '')}"
                )
            result: dict[str, Any] = response["result"]
            self._version = str(result.get("protocolVersion", HANDSHAKE_VERSION))
            await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
            self.initialize_result = result

    async def _discover(self) -> dict[str, Any] | None:
        """`server/discover` in the 2026-07-28 era, shaped like an initialize result; None if refused."""
        previous, self._version = self._version, STATELESS_VERSION
        status, content_type, body = await self._post({"jsonrpc": "2.0", "id": 0, "method": "server/discover"})
        response = response_for(body, content_type, 0) if status < 400 else None
        result = as_dict(None if response is None else response.get("result"))
        if not result:
            self._version = previous
            return None
        found: dict[str, Any] = {
            "protocolVersion": STATELESS_VERSION,
            "capabilities": as_dict(result.get("capabilities")),
            "serverInfo": as_dict(as_dict(result.get("_meta")).get(_SERVER_INFO_META)) or {"name": self.config.title},
        }
        if isinstance(result.get("instructions"), str):
            found["instructions"] = result["instructions"]
        return found

    async def _reset_session(self, gone: str | None = None) -> None:
        """Forget meshgate's session (`gone`: only if it is still that one, not one a concurrent call opened)."""
        async with self._init_lock:
            if gone is not None and self._session_id != gone:
                return
            self._session_id = None
            self.initialize_result = None

    async def close(self) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
        if self.session is not None:
            await self.session.close()
        if self._session_id is not None:
            headers = {
                **self.credential_headers,
                "mcp-session-id": self._session_id,
                "mcp-protocol-version": self._version,
            }
            try:
                async with asyncio.timeout(3):
                    response = await self._pool.request("DELETE", headers, None, head_timeout=2)
                response.release()
            except (TimeoutError, HttpError):
                pass  # the upstream will expire the session by itself
        self._pool.close()


def _session_gone(status: int, content_type: str, body: bytes, message_id: int) -> bool:
    """Whether an answer says the upstream no longer knows the session the request carried: 404 (the spec's
    answer), or 400 that is no JSON-RPC answer to the request (what some servers send for unknown ids)."""
    return status == 404 or (status == 400 and response_for(body, content_type, message_id) is None)


def _stateless(message: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """A message for a 2026-07-28 server: the per-request `_meta` envelope and the Mcp-Method/-Name headers."""
    method = str(message["method"])
    params = as_dict(message.get("params"))
    meta = {
        **as_dict(params.get("_meta")),
        "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
        "io.modelcontextprotocol/clientCapabilities": CLIENT_CAPABILITIES,
        "io.modelcontextprotocol/clientInfo": {"name": "meshgate", "version": __version__},
    }
    headers["mcp-method"] = method
    name = params.get(_NAMED_BY.get(method, ""))
    if isinstance(name, str) and name.isascii() and name.isprintable():
        headers["mcp-name"] = name
    return {**message, "params": {**params, "_meta": meta}}
