"""An MCP server (official SDK) that receives events: the ON_EVENTS binding, answering as a test tells it.

Run: python -m support.event_subscriber --port N [--token T]
Tools: `ON_EVENTS {events}` records each batch and answers the next queued answer (default `{success: true}`;
a queued `{"isError": true}` answers a failed tool call); `answer_with {answers: [...]}` queues answers;
`received` returns every batch so far.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from support.upstream import RecordHeaders

BATCHES: list[list[dict[str, Any]]] = []
ANSWERS: list[dict[str, Any]] = []

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
]


def build_server() -> Server[Any]:
    async def list_tools(_ctx: ServerRequestContext[Any, Any], _params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(_ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams) -> Any:
        args = params.arguments or {}
        if params.name == "ON_EVENTS":
            BATCHES.append(list(args.get("events", [])))
            answer = ANSWERS.pop(0) if ANSWERS else {"success": True}
            if answer.get("isError"):
                return types.CallToolResult(content=[types.TextContent(text="the subscriber broke")], is_error=True)
            return types.CallToolResult(content=[types.TextContent(text="ok")], structured_content=answer)
        if params.name == "answer_with":
            ANSWERS.extend(args.get("answers", []))
            return types.CallToolResult(content=[types.TextContent(text="queued")], structured_content={"queued": 1})
        if params.name == "received":
            return types.CallToolResult(
                content=[types.TextContent(text="batches")], structured_content={"batches": BATCHES}
            )
        return types.CallToolResult(content=[types.TextContent(text=f"unknown tool {params.name}")], is_error=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Server("event-subscriber", version="1.0.0", on_list_tools=list_tools, on_call_tool=call_tool)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build_server().streamable_http_app(json_response=True, host="127.0.0.1")
    uvicorn.run(RecordHeaders(app, args.token), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
