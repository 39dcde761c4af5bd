"""An MCP server (official SDK) that receives events: the ON_EVENTS binding, answering as a test tells it.

Run: python -m support.event_subscriber --port N [--token T] [--count-only]
Tools: `ON_EVENTS {events}` records each batch and answers the next queued answer (default `{success: true}`;
a queued `{"isError": true}` answers a failed tool call, a queued `{"hold": true}` answers nothing until
`release` is called, to catch a delivery mid-call); `answer_with {answers: [...]}` queues answers;
`received` returns every batch so far; `stats` counts events and measures, per event, the time from its `time`
to its arrival (for bench/events.py; `--count-only` keeps no batches); `reset` forgets both.

It can also act as its own connection, as an upstream of meshgate would: `as_connection {url, message, headers?}`
sends a JSON-RPC message to meshgate's `url` with the connection credential that came with this very call
(`x-mesh-connection-token`) as its bearer, plus any `headers` (e.g. a forged one); `connection_token` answers
that credential (to use it from a test).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import warnings
from datetime import UTC, datetime
from typing import Any

import httpx
import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from support.upstream import RecordHeaders

BATCHES: list[list[dict[str, Any]]] = []
ANSWERS: list[dict[str, Any]] = []
STATS: dict[str, Any] = {"count": 0, "first": None, "last": None, "latencies_ms": []}
KEEP_BATCHES = [True]
RELEASED = asyncio.Event()  # set by `release`: held ON_EVENTS calls answer (created unbound; Python >= 3.10)

TOOLS = [
    types.Tool(
        name="ON_EVENTS",
        description="Receive a batch of CloudEvents",
        input_schema={"type": "object", "properties": {"events": {"type": "array"}}, "required": ["events"]},
    ),
    types.Tool(
        name="answer_with",
        description="Queue the answers of the next ON_EVENTS calls",
        input_schema={"type": "object", "properties": {"answers": {"type": "array"}}},
    ),
    types.Tool(name="received", description="Every batch received so far", input_schema={"type": "object"}),
    types.Tool(name="release", description="Let held ON_EVENTS calls answer", input_schema={"type": "object"}),
    types.Tool(name="stats", description="Events received, and their delays", input_schema={"type": "object"}),
    types.Tool(name="reset", description="Forget what was received", input_schema={"type": "object"}),
    types.Tool(
        name="as_connection",
        description="Send a JSON-RPC message to meshgate with this connection's own credential",
        input_schema={"type": "object", "properties": {"url": {"type": "string"}, "message": {"type": "object"}}},
    ),
    types.Tool(
        name="connection_token", description="The credential that came with this call", input_schema={"type": "object"}
    ),
]
CONNECTION_TOKEN = "x-mesh-connection-token"


def _count(events: list[dict[str, Any]]) -> None:
    now, arrived = time.monotonic(), datetime.now(UTC)
    STATS["count"] += len(events)
    STATS["first"] = STATS["first"] or now
    STATS["last"] = now
    for event in events:
        sent = datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00"))
        STATS["latencies_ms"].append((arrived - sent).total_seconds() * 1000)


def _result(text: str, structured: dict[str, Any] | None = None, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured, is_error=error)


async def on_events(args: dict[str, Any]) -> types.CallToolResult:
    events = list(args.get("events", []))
    _count(events)
    if KEEP_BATCHES[0]:
        BATCHES.append(events)
    answer = ANSWERS.pop(0) if ANSWERS else {"success": True}
    if answer.get("hold"):
        await RELEASED.wait()
        return _result("ok", {"success": True})
    if answer.get("isError"):
        return _result("the subscriber broke", error=True)
    return _result("ok", answer)


def answer_with(args: dict[str, Any]) -> types.CallToolResult:
    ANSWERS.extend(args.get("answers", []))
    return _result("queued", {"queued": len(ANSWERS)})


def reset(_args: dict[str, Any]) -> types.CallToolResult:
    BATCHES.clear()
    STATS.update(count=0, first=None, last=None, latencies_ms=[])
    return _result("reset", {"reset": 1})


def release(_args: dict[str, Any]) -> types.CallToolResult:
    RELEASED.set()
    return _result("released", {"released": True})


HANDLERS = {
    "release": release,
    "answer_with": answer_with,
    "received": lambda _args: _result("batches", {"batches": BATCHES}),
    "stats": lambda _args: _result("stats", dict(STATS)),
    "reset": reset,
}


def _connection_token(ctx: ServerRequestContext[Any, Any]) -> str | None:
    headers = getattr(ctx.request, "headers", None)
    return None if headers is None else headers.get(CONNECTION_TOKEN)


async def as_connection(ctx: ServerRequestContext[Any, Any], args: dict[str, Any]) -> types.CallToolResult:
    """Call meshgate as this connection (the upstream side of a connection credential)."""
    headers = {"accept": "application/json, text/event-stream", **dict(args.get("headers") or {})}
    token = _connection_token(ctx)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(str(args["url"]), json=args["message"], headers=headers)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    return _result("called", {"status": response.status_code, "answer": answer})


def build_server() -> Server[Any]:
    async def list_tools(_ctx: ServerRequestContext[Any, Any], _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
        if params.name == "as_connection":
            return await as_connection(ctx, params.arguments or {})
        if params.name == "ON_EVENTS":
            return await on_events(params.arguments or {})
        if params.name == "connection_token":
            return _result("token", {"token": _connection_token(ctx)})
        handler = HANDLERS.get(params.name)
        if handler is None:
            return _result(f"unknown tool {params.name}", error=True)
        return handler(params.arguments or {})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Server("event-subscriber", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--token", default=None)
    parser.add_argument("--count-only", action="store_true", help="keep no batches, only counts and delays")
    args = parser.parse_args()
    KEEP_BATCHES[0] = not args.count_only
    logging.basicConfig(level=logging.WARNING)
    app = build_server().streamable_http_app(json_response=True, host="127.0.0.1")
    uvicorn.run(RecordHeaders(app, args.token), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
