"""Mixed into `UpstreamClient`: what the upstream says to meshgate's own session outside a call.

Parts of meshgate (the virtual MCP catalog, the proxy's announcements) watch a client by name. For HTTP
upstreams meshgate then keeps its session's GET stream open (servers that do not offer one answer 405 and
are not asked again); for SSE and STDIO upstreams the multiplexed session hands its notifications over.
Progress goes to the request that carries the token; a request on the GET stream (the SDK sends
`roots/list` there) goes to the caller while exactly one call is in flight, as on multiplexed sessions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from meshgate import __version__
from meshgate.connections.models import UpstreamConfig
from meshgate.connections.upstream.http11 import HttpError, Pool
from meshgate.connections.upstream.multiplex import MultiplexedSession
from meshgate.connections.upstream.progress import ProgressRoutes
from meshgate.connections.upstream.sse import EventReader, messages
from meshgate.errors import UpstreamError

log = logging.getLogger(__name__)

Notification = Callable[[dict[str, Any]], None]
ServerRequestHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]


class WatchedSession:
    """The watching half of `UpstreamClient` (its state is set up in `UpstreamClient.__init__`)."""

    config: UpstreamConfig
    credential_headers: dict[str, str]
    call_timeout: float
    session: MultiplexedSession | None
    stream_open: asyncio.Event  # meshgate's GET stream with an HTTP upstream is being read
    stream_refused: bool  # the HTTP upstream offers no GET stream
    _pool: Pool
    _version: str
    _session_id: str | None
    _progress: ProgressRoutes
    _tasks: set[asyncio.Task[None]]
    _watchers: dict[str, Notification]
    _listening: asyncio.Task[None] | None
    _in_flight: dict[int, ServerRequestHandler | None]  # meshgate's own requests, by a local key

    async def _ensure_session(self) -> None:
        raise NotImplementedError

    async def _reset_session(self) -> None:
        raise NotImplementedError

    async def _answer_server(self, request: dict[str, Any], answer: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def watch(self, watcher: str, listener: Notification) -> None:
        """Let `watcher` (one per part of meshgate) hear the upstream's notifications to meshgate's own
        session (list_changed, resources/updated ...); a second call for the same watcher changes nothing.

        For HTTP upstreams meshgate's session's GET stream is opened (servers that do not offer one answer
        405 and are not asked again; some send list_changed without announcing `listChanged`), and
        notifications that arrive on the answers to meshgate's own requests are heard too.
        """
        if watcher in self._watchers:
            return
        self._watchers[watcher] = listener
        if self.session is not None:
            self.session.on_notification = self._tell_watchers
        elif self._listening is None:
            self._listening = asyncio.get_running_loop().create_task(self._listen())

    def watching(self, watcher: str) -> bool:
        return watcher in self._watchers

    def _tell_watchers(self, message: dict[str, Any]) -> None:
        for listener in list(self._watchers.values()):
            listener(message)

    async def _listen(self) -> None:
        """Keep meshgate's GET stream open while the upstream offers one, reconnecting with backoff."""
        delay = 1.0
        while True:
            try:
                await self._ensure_session()
                if not await self._read_stream():
                    return
                delay = 1.0
            except (UpstreamError, HttpError, ValueError) as error:
                log.info("notification stream of upstream %s broke off: %s", self.config.title, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _read_stream(self) -> bool:
        """Read one GET stream to its end; False when the upstream does not offer one."""
        headers = {
            **self.credential_headers,
            "accept": "text/event-stream",
            "mcp-protocol-version": self._version,
            "user-agent": f"meshgate/{__version__}",
        }
        if self._session_id is not None:
            headers["mcp-session-id"] = self._session_id
        response = await self._pool.request("GET", headers, None, head_timeout=self.call_timeout)
        try:
            if response.status == 404:
                await self._reset_session()
                return True
            if response.status != 200:
                self.stream_refused = True
                return False
            self.stream_open.set()
            reader = EventReader()
            async for chunk in response.iter_chunks(None):
                for event in reader.feed(chunk):
                    self._heard(messages(event.data.encode(), "application/json"))
            return True
        finally:
            self.stream_open.clear()
            response.release()

    def _heard(self, found: Any) -> None:
        """Notifications to meshgate's session: progress to its request's caller, the rest to the watcher."""
        for message in found:
            if "method" not in message:
                continue
            if "id" in message:  # a request on the GET stream (the SDK sends roots/list there)
                self._tasks.add(task := asyncio.get_running_loop().create_task(self._answer_outside(message)))
                task.add_done_callback(self._tasks.discard)
            elif message["method"] == "notifications/progress":
                self._progress.deliver(message)
            else:
                self._tell_watchers(message)

    async def _answer_outside(self, request: dict[str, Any]) -> None:
        """A request that names no call of meshgate's goes to the caller only while exactly one call is in
        flight (as on SSE and STDIO sessions), so it never reaches the wrong caller; otherwise it is refused."""
        handlers = list(self._in_flight.values())
        handler = handlers[0] if len(handlers) == 1 else None
        answer = None
        if handler is not None:
            try:
                answer = await handler(request)
            except TimeoutError:  # the caller's wait ran out: the upstream still gets an answer
                answer = {"error": {"code": -32603, "message": "the caller did not answer in time"}}
        await self._answer_server(request, answer)
