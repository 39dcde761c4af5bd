"""Serving one low-level SDK `Server` over the legacy HTTP+SSE transport or stdio (test upstreams)."""

from __future__ import annotations

from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.stdio import stdio_server
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


def sse_app(server: Server[Any]) -> ASGIApp:
    """The server over the legacy HTTP+SSE transport: GET /sse, POST /messages/."""
    transport = SseServerTransport("/messages/")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/sse":
            async with transport.connect_sse(scope, receive, send) as (read, write):
                await server.run(read, write, server.create_initialization_options())
        elif scope["path"].startswith("/messages/"):
            await transport.handle_post_message(scope, receive, send)
        else:
            await Response(status_code=404)(scope, receive, send)

    return app


async def run_stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
