"""A forwarder that adds `Authorization: Bearer <key>` to every request and changes nothing else.

Run: MESHGATE_FORWARD_KEY=mg_… python -m support.auth_forwarder --port N --target http://127.0.0.1:M
(from tests/; listens on 127.0.0.1). For clients that cannot send headers of their own (the conformance
suite): method, path, query, headers (Host and Origin included, so meshgate's DNS-rebinding checks see
what the client sent) and body go to the target as they come, streamed; the answer comes back the
same way, SSE event by event. Only hop-by-hop headers are left to each leg.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator

import anyio
import httpx
import uvicorn
from starlette.types import Message, Receive, Scope, Send

# RFC 9110 §7.6.1 connection-specific fields: each leg manages its own.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class AuthForwarder:
    """Raw ASGI app: forward to `target` with one header added."""

    def __init__(self, target: str, key: str) -> None:
        self._target = target.rstrip("/")
        self._authorization = f"Bearer {key}".encode()
        # No read timeout: SSE streams stay open as long as both ends want them.
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(30, read=None), follow_redirects=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        # Transfer-Encoding stays on the request: it is what frames the streamed body on the next leg.
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name.lower() == b"transfer-encoding"
            or (name.lower() not in _HOP_BY_HOP and name.lower() != b"authorization")
        ]
        headers.append((b"authorization", self._authorization))
        url = self._target + scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        has_body = any(name.lower() in {b"content-length", b"transfer-encoding"} for name, _ in scope["headers"])
        request = self._http.build_request(scope["method"], url, content=_body(receive) if has_body else None)
        # Replace httpx's defaults (Accept-Encoding, User-Agent …) by exactly what the client sent.
        request.headers = httpx.Headers(headers)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            await _answer(send, 502, f"forwarder: {exc!r}".encode())
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP_BY_HOP],
                }
            )
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        except (OSError, httpx.TransportError):
            pass  # one side went away mid-answer; closing the response ends the other leg
        finally:
            await response.aclose()


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body"):
            return


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="scheme://host:port the requests go to")
    args = parser.parse_args()
    app = AuthForwarder(args.target, os.environ["MESHGATE_FORWARD_KEY"])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
