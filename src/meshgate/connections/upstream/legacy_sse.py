"""meshgate's session with an upstream that speaks the legacy HTTP+SSE transport (2024-11-05).

The server streams events on a GET; its first `endpoint` event names the URL (same origin only) to
POST messages to, and answers arrive as `message` events on the stream. meshgate keeps one such
session per connection and process, initialized by meshgate itself, and multiplexes every caller's
requests over it with fresh ids (mapped back on the way out). Progress notifications go to the
caller whose request carried the progress token. Requests from the server to a client (sampling,
elicitation, roots) are answered with an error for now: which caller they belong to is not known
on this transport. When the stream ends, waiting calls fail and the next call opens a new session.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from meshgate import __version__
from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout, Pool, Response
from meshgate.connections.upstream.sse import EventReader
from meshgate.errors import UpstreamError, UpstreamInvalidResponse, UpstreamTimeout, UpstreamUnreachable
from meshgate.jsonvalues import as_dict

log = logging.getLogger(__name__)

LEGACY_VERSION = "2024-11-05"
Listener = Callable[[dict[str, Any]], None]


class LegacySseSession:
    def __init__(
        self,
        url: str,
        title: str,
        headers: Mapping[str, str],
        *,
        ssl_context: Any,
        connect_timeout: float,
        call_timeout: float,
        addresses: AddressPolicy | None,
    ) -> None:
        self._url = url
        self._title = title
        self._headers = dict(headers)
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._addresses = addresses
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._progress: dict[Any, Listener] = {}
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._stream_pool: Pool | None = None
        self._post_pool: Pool | None = None
        self._stream: Response | None = None
        self.initialize_result: dict[str, Any] | None = None

    # --- public -------------------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        on_progress: Listener | None = None,
    ) -> dict[str, Any]:
        """Send a request; returns the upstream's response message (its id is meshgate's, not the caller's)."""
        await self._ensure_open()
        message_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id, "method": method}
        if params is not None:
            message["params"] = params
        token = _progress_token(params)
        if token is not None and on_progress is not None:
            self._progress[token] = on_progress
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            await self._post(message, extra_headers)
            return await asyncio.wait_for(future, self._call_timeout)
        except TimeoutError as exc:
            await self._notify("notifications/cancelled", {"requestId": message_id, "reason": "timed out"})
            raise UpstreamTimeout(f"upstream {self._title} did not answer within its timeout") from exc
        except asyncio.CancelledError:
            await asyncio.shield(self._notify("notifications/cancelled", {"requestId": message_id}))
            raise
        finally:
            self._waiting.pop(message_id, None)
            if token is not None:
                self._progress.pop(token, None)

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        await self._ensure_open()
        await self._notify(method, params)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        self._teardown(UpstreamUnreachable(f"the session with {self._title} was closed"))

    # --- the session --------------------------------------------------------------------------------------

    async def _ensure_open(self) -> None:
        if self.initialize_result is not None and self._reader is not None and not self._reader.done():
            return
        async with self._lock:
            if self.initialize_result is not None and self._reader is not None and not self._reader.done():
                return
            self._teardown(None)
            endpoint = await self._connect()
            self._post_pool = Pool(
                endpoint, ssl_context=self._ssl, connect_timeout=self._connect_timeout, addresses=self._addresses
            )
            self._reader = asyncio.get_running_loop().create_task(self._read())
            result = await self._initialize()
            self.initialize_result = result

    async def _connect(self) -> str:
        """Open the event stream; returns the message endpoint from the first `endpoint` event."""
        pool = Pool(self._url, ssl_context=self._ssl, connect_timeout=self._connect_timeout, addresses=self._addresses)
        self._stream_pool = pool
        headers = {**self._headers, "accept": "text/event-stream", "user-agent": f"meshgate/{__version__}"}
        try:
            stream = await pool.request("GET", headers, None, head_timeout=self._connect_timeout)
        except HttpTimeout as exc:
            raise UpstreamTimeout(f"upstream {self._title} did not open its event stream in time") from exc
        except HttpError as exc:
            raise UpstreamUnreachable(f"upstream {self._title} is unreachable: {exc}") from exc
        self._stream = stream
        if stream.status != 200 or not stream.headers.get("content-type", "").startswith("text/event-stream"):
            stream.release()
            if stream.status in (401, 403):
                raise UpstreamError(f"upstream {self._title} refused meshgate's credentials (HTTP {stream.status})")
            raise UpstreamInvalidResponse(
                f"upstream {self._title} answered HTTP {stream.status} "
                f"({stream.headers.get('content-type', 'no content type')}), not an SSE event stream"
            )
        self._events = EventReader()
        self._chunks = stream.iter_chunks(idle_s=None)
        try:
            async with asyncio.timeout(self._connect_timeout):
                while True:
                    for event in self._events.feed(await anext(self._chunks)):
                        if event.event == "endpoint":
                            return self._endpoint(event.data.strip())
        except (TimeoutError, StopAsyncIteration, HttpError) as exc:
            raise UpstreamInvalidResponse(f"upstream {self._title} sent no endpoint event") from exc

    def _endpoint(self, data: str) -> str:
        endpoint = urljoin(self._url, data)
        ours, theirs = urlsplit(self._url), urlsplit(endpoint)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise UpstreamInvalidResponse(
                f"upstream {self._title} named a message endpoint on another origin ({theirs.netloc[:100]})"
            )
        return endpoint

    async def _initialize(self) -> dict[str, Any]:
        params = {
            "protocolVersion": LEGACY_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "meshgate", "version": __version__},
        }
        message_id = 0
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        try:
            await self._post({"jsonrpc": "2.0", "id": message_id, "method": "initialize", "params": params})
            response = await asyncio.wait_for(future, self._connect_timeout)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self._title} did not answer initialize in time") from exc
        finally:
            self._waiting.pop(message_id, None)
        if "error" in response:
            message = response["error"].get("message", "")
            raise UpstreamInvalidResponse(f"upstream {self._title} refused to initialize: {message}")
        await self._notify("notifications/initialized", None)
        return dict(response.get("result") or {})

    async def _notify(self, method: str, params: Mapping[str, Any] | None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        try:
            await self._post(message)
        except UpstreamError as error:
            log.info("could not notify %s: %s", self._title, error.message)

    async def _post(self, message: Mapping[str, Any], extra_headers: Mapping[str, str] | None = None) -> None:
        pool = self._post_pool
        if pool is None:
            raise UpstreamUnreachable(f"no session with upstream {self._title}")
        headers = {
            **self._headers,
            **(extra_headers or {}),
            "content-type": "application/json",
            "user-agent": f"meshgate/{__version__}",
        }
        try:
            response = await pool.request("POST", headers, orjson.dumps(message), head_timeout=self._call_timeout)
        except HttpTimeout as exc:
            raise UpstreamTimeout(f"upstream {self._title} did not accept a message in time") from exc
        except HttpError as exc:
            raise UpstreamUnreachable(f"upstream {self._title} is unreachable: {exc}") from exc
        try:
            body = await response.read(64 * 1024, idle_s=self._call_timeout)
        except HttpError:
            body = b""
        finally:
            response.release()
        if response.status >= 400:
            raise UpstreamInvalidResponse(
                f"upstream {self._title} refused a message (HTTP {response.status}): "
                f"{body[:200].decode('utf-8', errors='replace')!r}"
            )

    async def _read(self) -> None:
        failure: UpstreamError = UpstreamUnreachable(f"upstream {self._title} closed its event stream")
        try:
            async for chunk in self._chunks:
                for event in self._events.feed(chunk):
                    if event.event in (None, "message") and event.data:
                        self._dispatch(event.data)
        except HttpError as exc:
            failure = UpstreamUnreachable(f"upstream {self._title} event stream broke: {exc}")
        except ValueError as exc:
            failure = UpstreamInvalidResponse(f"upstream {self._title}: {exc}")
        finally:
            self.initialize_result = None
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(failure)

    def _dispatch(self, data: str) -> None:
        try:
            message = as_dict(orjson.loads(data))
        except orjson.JSONDecodeError:
            return
        message_id = message.get("id")
        if "method" in message:
            if message_id is not None:  # a request from the server to a client: not routable here yet
                error = {"code": -32601, "message": "meshgate cannot route server-to-client requests on SSE yet"}
                reply = {"jsonrpc": "2.0", "id": message_id, "error": error}
                asyncio.get_running_loop().create_task(self._post_quietly(reply))
            elif message.get("method") == "notifications/progress":
                listener = self._progress.get(as_dict(message.get("params")).get("progressToken"))
                if listener is not None:
                    listener(message)
            return
        future = self._waiting.get(message_id) if isinstance(message_id, int) else None
        if future is not None and not future.done():
            future.set_result(message)

    async def _post_quietly(self, message: Mapping[str, Any]) -> None:
        try:
            await self._post(message)
        except UpstreamError as error:
            log.info("could not answer %s: %s", self._title, error.message)

    def _teardown(self, failure: UpstreamError | None) -> None:
        if self._stream is not None:
            self._stream.release()
            self._stream = None
        for pool in (self._stream_pool, self._post_pool):
            if pool is not None:
                pool.close()
        self._stream_pool = self._post_pool = None
        self.initialize_result = None
        if failure is not None:
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(failure)


def _progress_token(params: Mapping[str, Any] | None) -> Any:
    return as_dict((params or {}).get("_meta")).get("progressToken")
