"""One meshgate-owned MCP session with an upstream: a caller's own (`callers.py`), or meshgate's.

meshgate initializes the session itself and multiplexes requests over it: each gets a fresh id and
the answer is handed to the waiting caller. Progress notifications go to the caller whose request
carried the progress token. The session declares what meshgate's callers can answer (`CLIENT_CAPABILITIES`:
sampling, form and URL elicitation, roots), or nothing for sessions no caller uses (discovery). Requests
from the server to a client and log messages name no call on these transports: a request goes to the
caller while exactly one call is in flight and is refused at once otherwise; a log message goes to that
caller when it listens, else to `on_notification` (the clients' GET streams); `notifications/elicitation/complete`
goes to the caller that was sent to the URL.
The transport is composed in: a `Transport` opens with a `TransportLink` (what it calls for every message
and when it ends), sends, and shuts; `LegacySseTransport` and `StdioTransport` are the two.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import orjson

from meshgate import __version__
from meshgate.connections.upstream.breaker import CircuitBreaker
from meshgate.connections.upstream.progress import ProgressRoutes
from meshgate.connections.upstream.server_requests import ServerRequests
from meshgate.connections.upstream.session import Notification
from meshgate.errors import UpstreamError, UpstreamInvalidResponse, UpstreamTimeout, UpstreamUnreachable
from meshgate.jsonvalues import as_dict

log = logging.getLogger(__name__)

_WHOSE_UNKNOWN = "meshgate cannot tell which caller this request is for (no call, or several, are in flight)"
_CANNOT_ANSWER = "the caller whose call is in flight cannot answer server-to-client requests through meshgate"
_UNANSWERED = "the caller did not answer before its call ended or its wait ran out"
Listener = Notification
Asker = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class TransportLink:
    """What a transport tells its session: each message as it arrives, the end of the transport, and (asked)
    whether calls are in flight (an idle STDIO process may be stopped only when none are)."""

    receive: Callable[[str | bytes], None]
    ended: Callable[[UpstreamError], None]
    busy: Callable[[], bool]


class Transport(Protocol):
    """The wire under a multiplexed session: legacy HTTP+SSE or a STDIO process."""

    async def open(self, link: TransportLink) -> None:
        """Connect, then hand every message to `link.receive` and the end to `link.ended` (once)."""
        ...

    async def send(self, message: Mapping[str, Any], extra_headers: Mapping[str, str] | None = None) -> None: ...

    async def shut(self) -> None:
        """Disconnect (a no-op when not connected); `link.ended` is not called for it."""
        ...


class MultiplexedSession:
    """An `UpstreamSession` over a `Transport`."""

    def __init__(
        self,
        transport: Transport,
        title: str,
        breaker: CircuitBreaker,
        *,
        connect_timeout: float,
        call_timeout: float,
        version: str,
        capabilities: Mapping[str, Any],
    ) -> None:
        self.transport = transport
        self.title = title
        self._breaker = breaker
        self.capabilities = capabilities  # declared in initialize
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._version = version
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._progress = ProgressRoutes()
        self._listeners: dict[int, Listener] = {}
        self._askers: dict[int, Asker] = {}  # requests whose callers can answer the server's requests
        self._server_requests = ServerRequests(title, self._send_quietly)  # bounded (security review 15)
        self._asking: dict[int, set[asyncio.Future[dict[str, Any] | None]]] = {}  # callers asked, by call
        self._url_elicitations: dict[str, int] = {}  # elicitationId -> the call whose caller was sent to the URL
        self._lock = asyncio.Lock()
        self._open_now = False
        self.initialize_result: dict[str, Any] | None = None
        self.on_notification: Listener | None = None  # what the upstream announces (list_changed ...)
        self.on_reopen: Callable[[], None] | None = None  # a new session replaced one (subscriptions are gone)
        self._opened_before = False
        self._link = TransportLink(self._receive, self._ended, lambda: bool(self._waiting))

    # --- what callers use ---------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        on_progress: Listener | None = None,
        on_server_request: Asker | None = None,
    ) -> dict[str, Any]:
        """Send a request; returns the upstream's response message (its id is meshgate's, not the caller's).
        The connection's circuit breaker counts whether the upstream answered."""
        self._breaker.before_call()
        try:
            response = await self._request(method, params, extra_headers, on_progress, on_server_request)
        except (UpstreamUnreachable, UpstreamTimeout):
            self._breaker.record_failure()
            raise
        self._breaker.record_success()
        return response

    async def upstream_info(self) -> dict[str, Any]:
        await self.request("ping")
        return self.initialize_result or {}

    def watch(self, listener: Notification) -> None:
        self.on_notification = listener

    async def stream_ready(self) -> None:
        return  # what the upstream says outside a call arrives on the session itself

    async def _request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        extra_headers: Mapping[str, str] | None,
        on_progress: Listener | None,
        on_server_request: Asker | None,
    ) -> dict[str, Any]:
        await self._ensure_open()
        message_id = next(self._ids)
        params, progress_key = self._progress.register(params, on_progress)
        if on_progress is not None:
            self._listeners[message_id] = on_progress
        if on_server_request is not None:
            self._askers[message_id] = on_server_request
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id, "method": method}
        if params is not None:
            message["params"] = params
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            await self.transport.send(message, extra_headers)
            async with asyncio.timeout(self._call_timeout):  # not wait_for: it can swallow a cancel on 3.11
                return await future
        except TimeoutError as exc:
            await self._notify("notifications/cancelled", {"requestId": message_id, "reason": "timed out"})
            raise UpstreamTimeout(f"upstream {self.title} did not answer within its timeout") from exc
        except asyncio.CancelledError:
            await asyncio.shield(self._notify("notifications/cancelled", {"requestId": message_id}))
            raise
        finally:
            self._waiting.pop(message_id, None)
            self._listeners.pop(message_id, None)
            self._askers.pop(message_id, None)
            for asking in self._asking.pop(message_id, ()):
                asking.cancel()  # the server's request is answered with an error now, not after the caller's wait
            self._progress.release(progress_key)
            for elicitation in [key for key, call in self._url_elicitations.items() if call == message_id]:
                del self._url_elicitations[elicitation]

    async def close(self) -> None:
        async with self._lock:
            self._open_now = False
            self.initialize_result = None
            await self.transport.shut()
        await self._server_requests.close()
        self._fail_waiting(UpstreamUnreachable(f"the session with {self.title} was closed"))

    # --- what the transport calls -------------------------------------------------------------------------

    def _receive(self, data: str | bytes) -> None:
        """One message from the upstream."""
        try:
            message = as_dict(orjson.loads(data))
        except orjson.JSONDecodeError:
            log.info("upstream %s sent something that is not JSON; ignored", self.title)
            return
        message_id = message.get("id")
        if "method" in message:
            if message_id is not None:
                call = next(iter(self._waiting)) if len(self._waiting) == 1 else None  # as it stands on arrival
                self._server_requests.take(message, len(data), partial(self._answer_server, message, call))
            elif message.get("method") == "notifications/progress":
                self._progress.deliver(message)
            elif message.get("method") == "notifications/elicitation/complete":
                elicitation = as_dict(message.get("params")).get("elicitationId")
                listener = self._listeners.get(self._url_elicitations.get(str(elicitation), -1))
                if listener is not None:
                    listener(message)
            elif not self._told_caller(message) and self.on_notification is not None:
                self.on_notification(message)
            return
        # Popped now, not when the caller wakes: what the server sends after an answer is not that call's.
        future = self._waiting.pop(message_id, None) if isinstance(message_id, int) else None
        if future is not None and not future.done():
            future.set_result(message)

    def _told_caller(self, message: dict[str, Any]) -> bool:
        """A log message names no request on these transports: it goes to the caller only while its call is
        the one in flight (so it cannot reach the wrong caller) and that caller listens."""
        if message.get("method") != "notifications/message" or len(self._waiting) != 1:
            return False
        listener = self._listeners.get(next(iter(self._waiting)))
        if listener is None:
            return False
        listener(message)
        return True

    async def _answer_server(self, request: dict[str, Any], call: int | None) -> None:
        """A request of the server's (sampling, elicitation, roots). These transports do not say which call it
        belongs to, so it goes to the caller of `call`, the one call in flight when it came; otherwise (and
        when that caller cannot be asked) it is refused at once."""
        handler = None if call is None else self._askers.get(call)
        params = as_dict(request.get("params"))
        if handler is not None and call is not None and params.get("mode") == "url" and "elicitationId" in params:
            self._url_elicitations[str(params["elicitationId"])] = call
        if handler is None or call is None:
            reason = _WHOSE_UNKNOWN if call is None else _CANNOT_ANSWER
            answer: dict[str, Any] = {"error": {"code": -32601, "message": reason}}
        else:
            answer = await self._ask(call, handler, request)
        await self._send_quietly({**answer, "jsonrpc": "2.0", "id": request["id"]})

    async def _ask(self, call: int, handler: Asker, request: dict[str, Any]) -> dict[str, Any]:
        """The caller's answer, or an error when it cannot answer, its call ends first or its wait runs out."""
        asking = asyncio.ensure_future(handler(request))
        self._asking.setdefault(call, set()).add(asking)
        try:
            await asyncio.wait({asking})
        finally:
            asking.cancel()
            self._asking.get(call, set()).discard(asking)
        if asking.cancelled() or asking.exception() is not None:
            return {"error": {"code": -32603, "message": _UNANSWERED}}
        answer = asking.result()
        return answer if answer is not None else {"error": {"code": -32601, "message": _CANNOT_ANSWER}}

    def _ended(self, failure: UpstreamError) -> None:
        """The transport is gone: fail the waiting calls; the next call opens a new session."""
        self._open_now = False
        self.initialize_result = None
        self._fail_waiting(failure)

    # --- internals ----------------------------------------------------------------------------------------

    async def _ensure_open(self) -> None:
        if self._open_now and self.initialize_result is not None:
            return
        async with self._lock:
            if self._open_now and self.initialize_result is not None:
                return
            await self.transport.shut()
            await self.transport.open(self._link)
            self._open_now = True
            try:
                self.initialize_result = await self._initialize()
            except BaseException:
                self._open_now = False
                await self.transport.shut()
                raise
            if self._opened_before and self.on_reopen is not None:
                self.on_reopen()
            self._opened_before = True

    async def _initialize(self) -> dict[str, Any]:
        params = {
            "protocolVersion": self._version,
            "capabilities": self.capabilities,
            "clientInfo": {"name": "meshgate", "version": __version__},
        }
        message_id = 0
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            await self.transport.send({"jsonrpc": "2.0", "id": message_id, "method": "initialize", "params": params})
            async with asyncio.timeout(self._connect_timeout):
                response = await future
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.title} did not answer initialize in time") from exc
        finally:
            self._waiting.pop(message_id, None)
        if "error" in response:
            message = as_dict(response["error"]).get("message", "")
            raise UpstreamInvalidResponse(f"upstream {self.title} refused to initialize: {message}")
        await self._notify("notifications/initialized", None)
        return as_dict(response.get("result"))

    async def _notify(self, method: str, params: Mapping[str, Any] | None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self._send_quietly(message)

    async def _send_quietly(self, message: Mapping[str, Any]) -> None:
        try:
            await self.transport.send(message)
        except UpstreamError as error:
            log.info("could not send to %s: %s", self.title, error.message)

    def _fail_waiting(self, failure: UpstreamError) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(failure)
