"""A handshake-era MCP server with two hostile tools: `tools/call endless` streams a log notification about
every millisecond until the client goes away (a chatty upstream, to test call deadlines); `tools/call huge`
answers with one 15 MiB SSE event sent in 1 KiB chunks (to test that parsing it stalls nobody).

Run: python -m support.chatty_upstream --port N [--token T]; tests start it with `start_chatty()`.
Raw ASGI on uvicorn, so nothing between the test and the bytes on the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send

from support.gateway import Upstream, free_port, spawn_server
from support.secrets import remember_secret

TOOLS = [
    {"name": "endless", "description": "Streams notifications and never answers", "inputSchema": {"type": "object"}},
    {"name": "huge", "description": "Answers with one 15 MiB event in 1 KiB chunks", "inputSchema": {"type": "object"}},
]
HUGE_BYTES = 15 * 1024 * 1024
CHUNK = 1024
TOKEN: list[str | None] = [None]
CHATTY_TOKEN = remember_secret("chatty-upstream-token-3141")


async def _json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    start = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _chatter(receive: Receive, send: Send) -> None:
    """One `notifications/message` event about every millisecond, until the client disconnects."""
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.get_running_loop().create_task(watch())
    count = 0
    try:
        while not gone.is_set():
            count += 1
            note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": count}}
            await send(
                {"type": "http.response.body", "body": f"data: {json.dumps(note)}\n\n".encode(), "more_body": True}
            )
            await asyncio.sleep(0.001)
    finally:
        watcher.cancel()


async def _huge(request_id: Any, send: Send) -> None:
    """One `message` event holding a 15 MiB text result, written 1 KiB at a time."""
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    text = "x" * HUGE_BYTES
    answer = {"jsonrpc": "2.0", "id": request_id, "result": {"content": [{"type": "text", "text": text}]}}
    event = b"event: message\ndata: " + json.dumps(answer).encode() + b"\n\n"
    for start in range(0, len(event), CHUNK):
        await send({"type": "http.response.body", "body": event[start : start + CHUNK], "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = dict(scope["headers"])
    if TOKEN[0] is not None and headers.get(b"authorization") != f"Bearer {TOKEN[0]}".encode():
        await _json(send, 401, {"error": "unauthorized"})
        return
    if scope["method"] != "POST":
        await _json(send, 405 if scope["method"] == "GET" else 200, None)
        return
    message = json.loads(await _body(receive))
    if "id" not in message:
        await _json(send, 202, None)
        return
    method, answer = message.get("method"), {"jsonrpc": "2.0", "id": message["id"]}
    if method == "initialize":
        result = {
            "protocolVersion": message["params"].get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "chatty", "version": "1"},
        }
        await _json(send, 200, {**answer, "result": result}, [(b"mcp-session-id", secrets.token_hex(8).encode())])
    elif method == "tools/list":
        await _json(send, 200, {**answer, "result": {"tools": TOOLS}})
    elif method == "ping":
        await _json(send, 200, {**answer, "result": {}})
    elif method == "tools/call" and message["params"].get("name") == "huge":
        await _huge(message["id"], send)
    elif method == "tools/call":
        await _chatter(receive, send)
    else:
        await _json(send, 200, {**answer, "error": {"code": -32601, "message": f"no method {method}"}})


def start_chatty() -> Upstream:
    """This server in a process of its own, behind a bearer token; `kill()` it when done."""
    port = free_port()
    args = ["--port", str(port), "--token", CHATTY_TOKEN]
    return Upstream(port, CHATTY_TOKEN, spawn_server("support.chatty_upstream", port, args))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    TOKEN[0] = args.token
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
