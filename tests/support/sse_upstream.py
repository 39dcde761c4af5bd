"""An MCP server on the legacy HTTP+SSE transport (the SDK's `sse_app`), behind a bearer token check.

Run: python -m support.sse_upstream --port N --token T [--tools K]
Tools: echo, progress (reports three progress steps, then answers), headers (what the last message POST
carried, so tests can see meshgate's headers, and as `session` the session id it was posted to).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from urllib.parse import parse_qs

import anyio
import mcp_types as types
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

SEEN: list[dict[str, str]] = []
CANCELLED: list[str] = []


class _Name(BaseModel):
    name: str


def _answering(n: int) -> Callable[[], str]:
    def tool() -> str:
        return f"legacy {n}"

    return tool


def build(token: str, generated: int = 0) -> ASGIApp:
    server = MCPServer("legacy-sse-upstream", instructions="A server on the 2024-11-05 HTTP+SSE transport")
    for n in range(generated):
        server.tool(name=f"legacy_{n:03d}", description=f"Generated legacy tool number {n}")(_answering(n))

    @server.tool(description="Echo text back")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Report three progress steps, then answer")
    async def progress(ctx: Context) -> str:
        for step in range(1, 4):
            await ctx.report_progress(step, 3, f"step {step}")
            await anyio.sleep(0.2)
        return "done"

    @server.tool(description="Wait up to 20 s; a cancellation is recorded")
    async def wait() -> str:
        try:
            await anyio.sleep(20)
        except anyio.get_cancelled_exc_class():
            CANCELLED.append("wait")
            raise
        return "waited"

    @server.tool(description="How many wait calls were cancelled")
    def cancellations() -> str:
        return str(len(CANCELLED))

    @server.tool(description="Ask the user's name (elicitation), then greet")
    async def ask(ctx: Context) -> str:
        answer = await ctx.elicit("What is your name?", _Name)
        return f"Hello, {answer.data.name}!" if answer.action == "accept" else f"no name ({answer.action})"

    @server.tool(description="Ask the client's model (sampling), then answer")
    async def sample(ctx: Context) -> str:
        said = await ctx.session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(text="Say hi"))],
            max_tokens=20,
            related_request_id=ctx.request_id,
        )
        return f"the model said: {said.content.text}"  # type: ignore[union-attr]

    @server.tool(description="Headers of the last message POST this server received")
    def headers() -> str:
        return json.dumps(SEEN[-1] if SEEN else {})

    app = server.sse_app()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen = {k.decode(): v.decode() for k, v in scope["headers"]}
            if scope["method"] == "POST":
                query = parse_qs(scope.get("query_string", b"").decode())
                SEEN.append({**seen, "session": query.get("session_id", [""])[0]})
            if seen.get("authorization") != f"Bearer {token}":
                await send(
                    {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"bearer token required"})
                return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--tools", type=int, default=0, help="extra generated tools")
    args = parser.parse_args()
    uvicorn.run(build(args.token, args.tools), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
