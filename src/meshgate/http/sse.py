"""Server-sent event streams that meshgate itself serves to clients (notification streams).

`serve_events` answers 200 `text/event-stream`, sends an optional first message, then one `message`
event per queued item until the client goes away, or until `ended` is set (then an optional last message
and the end of the response: the stream's grant ended, see `meshgate.http.stream_grants`); a comment line
every 25 s keeps proxies from closing an idle stream and finds clients that vanished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson
from starlette.types import Receive, Send

KEEPALIVE_S = 25.0
Item = TypeVar("Item")
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]


class OpenStreams(Protocol):
    """The gauge of open streams (`meshgate_open_streams`)."""

    def inc(self) -> None: ...
    def dec(self) -> None: ...


def event(message: dict[str, Any]) -> bytes:
    """One SSE `message` event carrying a JSON-RPC message."""
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


async def disconnected(receive: Receive) -> None:
    """Returns once the client has gone away."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def serve_events(  # noqa: PLR0917
    receive: Receive,
    send: Send,
    queue: asyncio.Queue[Item],
    frame: Callable[[Item], dict[str, Any] | None],
    first: dict[str, Any] | None = None,
    open_streams: OpenStreams | None = None,
    ended: asyncio.Event | None = None,
    last: dict[str, Any] | None = None,
    *,
    encode: Callable[[dict[str, Any]], bytes] = event,
) -> None:
    """Stream `frame(item)` for every queued item (None: skip it) until the client goes away or `ended`.
    `encode` writes one frame as SSE bytes (by default a `message` event of JSON-RPC)."""
    gone = asyncio.ensure_future(disconnected(receive))
    ending = asyncio.ensure_future((ended or asyncio.Event()).wait())
    if open_streams is not None:
        open_streams.inc()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        if first is not None:
            await send(_body(encode(first)))
        while not gone.done():
            waiting = asyncio.ensure_future(queue.get())
            await asyncio.wait({waiting, gone, ending}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
            if ending.done():
                waiting.cancel()
                await send({"type": "http.response.body", "body": b"" if last is None else encode(last)})
                return
            if not waiting.done():
                waiting.cancel()
                if not gone.done():
                    await send(_body(b": keep-alive\n\n"))
                continue
            message = frame(waiting.result())
            if message is not None:
                await send(_body(encode(message)))
    finally:
        gone.cancel()
        ending.cancel()
        if open_streams is not None:
            open_streams.dec()


def _body(data: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": True}
