"""The connection to one upstream MCP server, shared by every caller of the connection.

`open()` forwards a request to a Streamable HTTP upstream and hands back the streaming response (the
proxy's hot path). `request()` is meshgate's own JSON-RPC client, over an `UpstreamSession`: for Streamable
HTTP a `StreamableHttpSession` on the connection's pooled HTTP client, for legacy SSE and STDIO a
`MultiplexedSession` over their `Transport`. The client holds what all of them share: the configuration,
the circuit breaker and meshgate's credential headers.

Requests made for a caller (`caller=`: its credential) go on that caller's own session (`callers.py`), since
an upstream keeps state per session; only a stateless-era HTTP upstream, which keeps none, is shared. meshgate's
own requests (discovery, tests, the virtual catalog) go on meshgate's session, `session`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson

from meshgate import __version__
from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.models import UpstreamConfig
from meshgate.connections.upstream.breaker import CircuitBreaker
from meshgate.connections.upstream.callers import CallerSessions, SessionLimits
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout, Pool, Response
from meshgate.connections.upstream.legacy_sse import LEGACY_VERSION, LegacySseTransport
from meshgate.connections.upstream.multiplex import MultiplexedSession
from meshgate.connections.upstream.session import CLIENT_CAPABILITIES, ServerRequestHandler, UpstreamSession
from meshgate.connections.upstream.sse import response_for
from meshgate.connections.upstream.stdio import StdioSupervisor, StdioTransport
from meshgate.connections.upstream.streamable import MAX_OWN_RESPONSE, StreamableHttpSession, stateless_message
from meshgate.errors import (
    UpstreamInvalidResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from meshgate.jsonvalues import as_dict
from meshgate.protocol import HANDSHAKE_VERSION, STATELESS_VERSION

_ssl_context: ssl.SSLContext | None = None
_MAX_INPUT_ROUNDS = 8
# Hears what the upstream says outside a call, and on whose session: a caller's, or None for meshgate's own.
Heard = Callable[[dict[str, Any], str | None], None]


def shared_ssl_context() -> ssl.SSLContext:
    """One SSL context for every upstream (creating one costs tens of milliseconds)."""
    global _ssl_context  # noqa: PLW0603  (a process-wide cache, created on first use)
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
    return _ssl_context


class UpstreamClient:
    """The connection to one upstream MCP server.

    Its sessions declare `capabilities` to the upstream: by default what meshgate's callers can answer
    (sampling, elicitation, roots); `{}` for a client no caller uses (discovery when a connection is saved).
    """

    def __init__(
        self,
        config: UpstreamConfig,
        addresses: AddressPolicy | None = None,
        stdio: StdioSupervisor | None = None,
        *,
        capabilities: Mapping[str, Any] = CLIENT_CAPABILITIES,
        sessions: SessionLimits | None = None,
    ) -> None:
        if config.url is None and config.connection_type != "STDIO":
            raise UpstreamInvalidResponse(f"connection {config.title} has no URL")
        if config.connection_type == "STDIO" and (stdio is None or config.secrets.stdio is None):
            raise UpstreamUnavailable(
                f"connection {config.title} runs a local command: start meshgate with --local-mode"
            )
        self.config = config
        self.breaker = CircuitBreaker(config.title)
        self.credential_headers = self._credential_headers()
        self.call_timeout = config.call_timeout_ms / 1000
        self.capabilities = capabilities
        self._addresses = addresses
        self._stdio = stdio
        self._watchers: dict[str, Heard] = {}
        self._reopened: Callable[[str | None], None] | None = None
        self._serves_stateless: bool | None = None
        self._stateless_era: bool | None = None  # a Streamable HTTP upstream's era, once meshgate's session knows
        # Streamable HTTP only: the pooled HTTP client the proxy forwards through (none for SSE and STDIO).
        self._pool: Pool | None = None
        if config.connection_type not in ("SSE", "STDIO"):
            self._pool = Pool(
                config.url or "",
                ssl_context=shared_ssl_context(),
                connect_timeout=config.connect_timeout_ms / 1000,
                addresses=addresses,
            )
        self.session: UpstreamSession = self._new_session()  # meshgate's own session
        self.session.on_reopen = lambda: self._session_reopened(None)
        self.callers = CallerSessions(
            config.title,
            sessions or SessionLimits(),
            self._caller_session,
            prepare=None if self._pool is None else _stream_ready,
        )

    @property
    def multiplexed(self) -> bool:
        """Whether the upstream is reached over a multiplexed session only (SSE, STDIO): nothing is forwarded."""
        return self._pool is None

    @property
    def initialize_result(self) -> dict[str, Any] | None:
        return self.session.initialize_result

    def _credential_headers(self) -> dict[str, str]:
        headers = {k: v for k, v in self.config.secrets.headers.items() if k.lower() not in ("host", "content-length")}
        if self.config.secrets.token:
            headers["authorization"] = f"Bearer {self.config.secrets.token}"
        return headers

    def _new_session(self) -> UpstreamSession:
        config, connect_timeout = self.config, self.config.connect_timeout_ms / 1000
        if self._pool is not None:
            return StreamableHttpSession(
                config.title,
                self._pool,
                self._forward,
                self.credential_headers,
                call_timeout=self.call_timeout,
                capabilities=self.capabilities,
            )
        if config.connection_type == "STDIO":
            assert self._stdio is not None and config.secrets.stdio is not None  # noqa: S101  (checked in __init__)
            transport: StdioTransport | LegacySseTransport = StdioTransport(
                config.title, config.secrets.stdio, self._stdio
            )
            version = HANDSHAKE_VERSION
        else:
            transport = LegacySseTransport(
                config.url or "",
                config.title,
                self.credential_headers,
                ssl_context=shared_ssl_context(),
                connect_timeout=connect_timeout,
                call_timeout=self.call_timeout,
                addresses=self._addresses,
            )
            version = LEGACY_VERSION
        return MultiplexedSession(
            transport,
            config.title,
            self.breaker,
            connect_timeout=connect_timeout,
            call_timeout=self.call_timeout,
            version=version,
            capabilities=self.capabilities,
        )

    def _caller_session(self, caller: str) -> UpstreamSession:
        session = self._new_session()
        session.on_reopen = lambda: self._session_reopened(caller)
        # Always watched: what the upstream tells this caller's session (its log messages, updates of its
        # subscriptions) is for this caller's streams; an HTTP session reads its GET stream for it.
        session.watch(lambda message: self._tell_watchers(message, caller))
        return session

    @asynccontextmanager
    async def session_for(self, caller: str | None) -> AsyncGenerator[UpstreamSession]:
        """The session requests for `caller` go on, in use for the block: the caller's own, or meshgate's
        (`caller` None, or a stateless-era HTTP upstream, which keeps no per-session state)."""
        if caller is None or not await self._per_caller():
            yield self.session
            return
        async with self.callers.lease(caller) as session:
            yield session

    async def _per_caller(self) -> bool:
        if self._pool is None:
            return True
        if self._stateless_era is None:
            self._stateless_era = await self.refuses_handshake()
        return not self._stateless_era

    # --- the proxy's hot path (Streamable HTTP) ------------------------------------------------------------

    async def open(
        self, method: str, headers: Mapping[str, str], body: bytes | None, *, stream: bool = False
    ) -> Response:
        """Send one HTTP request upstream and return the response with its body unread.

        The caller releases it. `stream` (long-lived GET streams) lifts the wait for the response head. The
        body is the caller's to bound: `call_deadline()` is when a call's whole answer is due.
        """
        pool = self._pool
        if pool is None:
            raise UpstreamUnavailable(f"connection {self.config.title} is not reached over Streamable HTTP")
        probe = self.breaker.before_call()
        try:
            response = await pool.request(method, headers, body, head_timeout=None if stream else self.call_timeout)
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

    async def _forward(self, method: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        return await self.open(method, headers, body)

    def call_deadline(self) -> float:
        """When a call sent now must have its whole answer (event loop time): the connection's call timeout."""
        return asyncio.get_running_loop().time() + self.call_timeout

    # --- meshgate's own requests ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        on_server_request: ServerRequestHandler | None = None,
        answer_input_required: bool = False,
        caller: str | None = None,
    ) -> dict[str, Any]:
        """A JSON-RPC request on `caller`'s session (meshgate's own without one); returns the response message
        (result or error).

        Progress notifications for the request go to `on_progress` as they arrive; a request the server
        sends meanwhile (sampling, elicitation, roots) goes to `on_server_request`, whose answer is sent
        back, or is refused when there is none. With `answer_input_required`, a 2026-07-28 server's
        `input_required` result is answered the same way (each input request through `on_server_request`)
        and the request retried with the responses, for callers that cannot take such a result.
        """
        async with self.session_for(caller) as session:
            return await self._request(
                session, method, params, extra_headers, on_progress, on_server_request, answer_input_required
            )

    async def _request(  # noqa: PLR0917  (request()'s arguments, on the session chosen)
        self,
        session: UpstreamSession,
        method: str,
        params: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        on_progress: Callable[[dict[str, Any]], None] | None,
        on_server_request: ServerRequestHandler | None,
        answer_input_required: bool,
    ) -> dict[str, Any]:
        response = await session.request(
            method, params, extra_headers=extra_headers, on_progress=on_progress, on_server_request=on_server_request
        )
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
            response = await session.request(
                method,
                params,
                extra_headers=extra_headers,
                on_progress=on_progress,
                on_server_request=on_server_request,
            )
        return response

    async def upstream_info(self, caller: str | None = None) -> dict[str, Any]:
        """The upstream's initialize result (opening `caller`'s session, or meshgate's, when needed)."""
        async with self.session_for(caller) as session:
            return await session.upstream_info()

    async def refuses_handshake(self) -> bool:
        """Whether a Streamable HTTP upstream speaks only the stateless era (meshgate's session tells)."""
        session = self.session
        return isinstance(session, StreamableHttpSession) and await session.stateless()

    async def serves_stateless(self) -> bool:
        """Whether the upstream takes 2026-07-28 requests: asked once with `server/discover`, then remembered."""
        if self._pool is None:
            return False
        if self._serves_stateless is None:
            headers = {
                **self.credential_headers,
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": STATELESS_VERSION,
                "user-agent": f"meshgate/{__version__}",
            }
            message = stateless_message({"jsonrpc": "2.0", "id": 0, "method": "server/discover"}, headers, {})
            response = await self.open("POST", headers, orjson.dumps(message))
            try:
                body = await response.read(MAX_OWN_RESPONSE, idle_s=self.call_timeout)
            except HttpError:
                body = b""
            finally:
                response.release()
            found = response_for(body, response.headers.get("content-type", ""), 0) if response.status < 400 else None
            self._serves_stateless = found is not None and "result" in found
        return self._serves_stateless

    # --- what the upstream says outside a call -------------------------------------------------------------

    def watch(self, watcher: str, listener: Heard) -> None:
        """Let `watcher` (one per part of meshgate) hear the upstream's notifications outside calls
        (list_changed, resources/updated ...) with the caller whose session they came on (None: meshgate's);
        a second call for the same watcher changes nothing.

        For HTTP upstreams meshgate's session's GET stream is opened (servers that do not offer one answer
        405 and are not asked again; some send list_changed without announcing `listChanged`), and
        notifications that arrive on the answers to meshgate's own requests are heard too.
        """
        if watcher in self._watchers:
            return
        self._watchers[watcher] = listener
        self.session.watch(self._tell_watchers)

    def watching(self, watcher: str) -> bool:
        return watcher in self._watchers

    def on_reopen(self, callback: Callable[[str | None], None]) -> None:
        """Call `callback(caller)` whenever a session is replaced by a new one (its subscriptions are gone)."""
        self._reopened = callback

    def _session_reopened(self, caller: str | None) -> None:
        if self._reopened is not None:
            self._reopened(caller)

    def _tell_watchers(self, message: dict[str, Any], caller: str | None = None) -> None:
        for listener in list(self._watchers.values()):
            listener(message, caller)

    def retire(self) -> None:
        """The connection changed: callers' sessions close now (those in use once their calls end)."""
        self.callers.retire()

    async def close(self) -> None:
        await self.callers.close()
        await self.session.close()
        if self._pool is not None:
            self._pool.close()


async def _stream_ready(session: UpstreamSession) -> None:
    await session.stream_ready()  # a new HTTP caller session: its GET stream is read before its first call
