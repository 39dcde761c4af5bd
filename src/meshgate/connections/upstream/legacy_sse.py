"""The legacy HTTP+SSE transport (2024-11-05) under meshgate's multiplexed upstream session.

The server streams events on a GET; its first `endpoint` event names the URL (same origin only) to
POST messages to, and answers arrive as `message` events on the stream. Each POST carries the
connection's credentials plus the caller's `x-mesh-token`, `x-request-id` and `traceparent`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson

from meshgate import __version__
from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout, Pool, Response
from meshgate.connections.upstream.multiplex import TransportLink
from meshgate.connections.upstream.sse import EventReader
from meshgate.errors import UpstreamError, UpstreamInvalidResponse, UpstreamTimeout, UpstreamUnreachable

LEGACY_VERSION = "2024-11-05"


class LegacySseTransport:
    """A `Transport`: one GET event stream to read, and POSTs to the endpoint it names."""

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
        self.title = title
        self._connect_timeout = connect_timeout
        self._call_timeout = call_timeout
        self._url = url
        self._headers = dict(headers)
        self._ssl = ssl_context
        self._addresses = addresses
        self._reader: asyncio.Task[None] | None = None
        self._stream_pool: Pool | None = None
        self._post_pool: Pool | None = None
        self._stream: Response | None = None

    async def open(self, link: TransportLink) -> None:
        pool = Pool(self._url, ssl_context=self._ssl, connect_timeout=self._connect_timeout, addresses=self._addresses)
        self._stream_pool = pool
        headers = {**self._headers, "accept": "text/event-stream", "user-agent": f"meshgate/{__version__}"}
        try:
            stream = await pool.request("GET", headers, None, head_timeout=self._connect_timeout)
        except HttpTimeout as exc:
            raise UpstreamTimeout(f"upstream {self.title} did not open its event stream in time") from exc
        except HttpError as exc:
            raise UpstreamUnreachable(f"upstream {self.title} is unreachable: {exc}") from exc
        self._stream = stream
        if stream.status != 200 or not stream.headers.get("content-type", "").startswith("text/event-stream"):
            if stream.status in (401, 403):
                raise UpstreamError(f"upstream {self.title} refused meshgate's credentials (HTTP {stream.status})")
            raise UpstreamInvalidResponse(
                f"upstream {self.title} answered HTTP {stream.status} "
                f"({stream.headers.get('content-type', 'no content type')}), not an SSE event stream"
            )
        events = EventReader()
        chunks = stream.iter_chunks(idle_s=None)
        endpoint: str | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                while endpoint is None:
                    for event in events.feed(await anext(chunks)):
                        if event.event == "endpoint":
                            endpoint = self._endpoint(event.data.strip())
                            break
        except (TimeoutError, StopAsyncIteration, HttpError) as exc:
            raise UpstreamInvalidResponse(f"upstream {self.title} sent no endpoint event") from exc
        self._post_pool = Pool(
            endpoint, ssl_context=self._ssl, connect_timeout=self._connect_timeout, addresses=self._addresses
        )
        self._reader = asyncio.get_running_loop().create_task(self._read(events, chunks, link))

    def _endpoint(self, data: str) -> str:
        endpoint = urljoin(self._url, data)
        ours, theirs = urlsplit(self._url), urlsplit(endpoint)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise UpstreamInvalidResponse(
                f"upstream {self.title} named a message endpoint on another origin ({theirs.netloc[:100]})"
            )
        return endpoint

    async def _read(self, events: EventReader, chunks: Any, link: TransportLink) -> None:
        failure: UpstreamError = UpstreamUnreachable(f"upstream {self.title} closed its event stream")
        try:
            async for chunk in chunks:
                for event in events.feed(chunk):
                    if event.event in (None, "message") and event.data:
                        link.receive(event.data)
        except HttpError as exc:
            failure = UpstreamUnreachable(f"upstream {self.title} event stream broke: {exc}")
        except ValueError as exc:
            failure = UpstreamInvalidResponse(f"upstream {self.title}: {exc}")
        finally:
            link.ended(failure)

    async def send(self, message: Mapping[str, Any], extra_headers: Mapping[str, str] | None = None) -> None:
        pool = self._post_pool
        if pool is None:
            raise UpstreamUnreachable(f"no session with upstream {self.title}")
        headers = {
            **self._headers,
            **(extra_headers or {}),
            "content-type": "application/json",
            "user-agent": f"meshgate/{__version__}",
        }
        try:
            response = await pool.request("POST", headers, orjson.dumps(message), head_timeout=self._call_timeout)
        except HttpTimeout as exc:
            raise UpstreamTimeout(f"upstream {self.title} did not accept a message in time") from exc
        except HttpError as exc:
            raise UpstreamUnreachable(f"upstream {self.title} is unreachable: {exc}") from exc
        try:
            body = await response.read(64 * 1024, idle_s=self._call_timeout)
        except HttpError:
            body = b""
        finally:
            response.release()
        if response.status >= 400:
            raise UpstreamInvalidResponse(
                f"upstream {self.title} refused a message (HTTP {response.status}): "
                f"{body[:200].decode('utf-8', errors='replace')!r}"
            )

    async def shut(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._stream is not None:
            self._stream.release()
            self._stream = None
        for pool in (self._stream_pool, self._post_pool):
            if pool is not None:
                pool.close()
        self._stream_pool = self._post_pool = None
