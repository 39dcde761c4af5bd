"""A real MCP server built with the official SDK, used as the upstream behind meshgate in tests and benchmarks.

Run: python -m support.upstream --port N [--token T] [--json] [--tools K] [--odd-names] [--spoof-names]
     [--library] [--sse] | --stdio
It serves both protocol generations at /mcp (the SDK's dual-era Streamable HTTP), or the same handlers over
the legacy HTTP+SSE transport (`--sse`, GET /sse) or stdio (`--stdio`), and records the HTTP headers of every
request so tests can see exactly what meshgate sent.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.subscriptions import ToolsListChanged
from starlette.types import ASGIApp, Receive, Scope, Send

from support.media_tools import MEDIA, MEDIA_TOOLS, PIXEL_PNG, media_tool
from support.transports import run_stdio, sse_app
from support.upstream_asks import (
    ASKING,
    ASKING_TOOLS,
    BUS,
    LISTEN,
    asking_tool,
    heard,
    roots_changed,
    subscribe,
    touch,
    unsubscribe,
)

Ctx = ServerRequestContext[Any, Any]

SEEN_HEADERS: list[dict[str, str]] = []
CANCELLED: list[str] = []
RELEASE = [anyio.Event()]  # `release` sets the current event and arms a new one for the next `slow`

BASE_TOOLS = [
    types.Tool(
        name="echo",
        description="Echo text back",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}},
    ),
    types.Tool(
        name="add",
        description="Add two numbers",
        input_schema={"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
    ),
    types.Tool(
        name="headers",
        description="The HTTP headers of the requests this server received",
        input_schema={"type": "object"},
    ),
    types.Tool(name="slow", description="Report progress, then wait for release", input_schema={"type": "object"}),
    types.Tool(name="release", description="Let slow finish", input_schema={"type": "object"}),
    types.Tool(name="cancellations", description="How many slow calls were cancelled", input_schema={"type": "object"}),
    types.Tool(name="fail", description="Answer isError", input_schema={"type": "object"}),
    types.Tool(name="secret_echo", description="Echo arguments (for redaction tests)", input_schema={"type": "object"}),
    types.Tool(
        name="headers_text",
        description="The HTTP headers of this request as `name: value` lines (an upstream that echoes them)",
        input_schema={"type": "object"},
    ),
    types.Tool(
        name="grow",
        description="Add a tool and announce tools/list_changed (unless quiet)",
        input_schema={"type": "object"},
    ),
    *ASKING_TOOLS,
]
GROWN: list[types.Tool] = []


def _meta(ctx: Ctx) -> dict[str, Any] | None:
    meta: Any = ctx.meta
    if meta is None or isinstance(meta, dict):
        return meta
    return meta.model_dump(by_alias=True, exclude_none=True)


ODD_NAMES = ("x" * 70, "weird name", "weird_name", "weird/name")
# Names a person could misread (security review 18): a right-to-left override and a bell, a zero-width space,
# a Cyrillic "\u0435" for a Latin "e", an edge space. And one printable name outside MCP's strict rule, kept.
HIDDEN_NAMES = ("x\u202e\u0007</script>", "read\u200bfile", "\u0435cho", " padded")
SPOOF_NAMES = (*HIDDEN_NAMES, "path/like.name")


# `--library`: more resources (listed two per page), templates and prompts, for the dashboard's pages. Other
# tests count what the plain server lists, so they stay off by default.
MARKUP = '<script>document.title = "pwned"</script><b>not bold</b> & more'
LIBRARY_RESOURCES = [
    types.Resource(uri="memo://one", name="one", mime_type="text/plain"),
    types.Resource(uri="memo://markup", name="markup", mime_type="text/html", description="Text with <b>tags</b>"),
    types.Resource(uri="memo://pixel.png", name="pixel", mime_type="image/png", description="A 1x1 image"),
    types.Resource(uri="memo://notes.bin", name="notes", mime_type="application/octet-stream"),
]
LIBRARY_BLOBS = {"memo://pixel.png": ("image/png", PIXEL_PNG), "memo://notes.bin": ("application/octet-stream", "AAEC")}
LIBRARY_TEMPLATES = [
    types.ResourceTemplate(uri_template="memo://{name}", name="memo"),
    types.ResourceTemplate(uri_template="shelf://{shelf}/{book}", name="book", description="A book on a shelf"),
]
LIBRARY_PROMPTS = [
    types.Prompt(name="greet", arguments=[types.PromptArgument(name="name", required=True)]),
    types.Prompt(
        name="poster",
        description="A caption and a picture",
        arguments=[types.PromptArgument(name="caption", description="Printed under the picture")],
    ),
]


def build_server(
    extra_tools: int, odd_names: bool = False, spoof_names: bool = False, library: bool = False
) -> Server[Any]:
    generated = [
        types.Tool(name=f"tool_{n:03d}", description=f"Generated tool number {n}", input_schema={"type": "object"})
        for n in range(extra_tools)
    ]
    odd = [
        types.Tool(name=name, description=f"Odd name {name!r}", input_schema={"type": "object"}) for name in ODD_NAMES
    ]
    spoof = [
        types.Tool(name=name, description="A tool whose name is meant to deceive", input_schema={"type": "object"})
        for name in SPOOF_NAMES
    ]
    tools = BASE_TOOLS + generated + (odd if odd_names else []) + (spoof if spoof_names else [])
    tools += MEDIA_TOOLS if library else []

    async def list_tools(_ctx: Ctx, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools + GROWN)

    async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> Any:
        args = params.arguments or {}
        if params.name == "echo":
            meta = _meta(ctx)
            # A plain dict, so fields the SDK types do not know survive to the client.
            result: dict[str, Any] = {
                "content": [{"type": "text", "text": str(args.get("text", ""))}],
                "structuredContent": {"text": args.get("text", ""), "receivedMeta": meta},
                "x-upstream-extra": {"kept": True},
            }
            if ctx.protocol_version >= "2026":
                result["resultType"] = "complete"
            return result
        if params.name == "blob":  # not listed: the benchmark's large results (`{"size": bytes}`)
            blob: dict[str, Any] = {"content": [{"type": "text", "text": "x" * int(args.get("size", 0))}]}
            if ctx.protocol_version >= "2026":
                blob["resultType"] = "complete"
            return blob
        if params.name == "add":
            total = float(args.get("a", 0)) + float(args.get("b", 0))
            return types.CallToolResult(content=[types.TextContent(text=str(total))], structured_content={"sum": total})
        if params.name == "headers":
            return types.CallToolResult(
                content=[types.TextContent(text="headers")], structured_content={"requests": SEEN_HEADERS[-20:]}
            )
        if params.name == "slow":
            meta = _meta(ctx) or {}
            token = meta.get("progressToken", meta.get("progress_token"))
            if token is not None:
                await ctx.session.send_progress_notification(token, 1, 2, "half way")
            released = RELEASE[-1]
            waiting_since = anyio.current_time()
            try:
                with anyio.fail_after(30):
                    await released.wait()
            except anyio.get_cancelled_exc_class():
                if anyio.current_time() - waiting_since < 25:  # not our own 30-s deadline
                    CANCELLED.append(str(ctx.request_id))  # the client's cancellation reached this server
                raise
            return types.CallToolResult(content=[types.TextContent(text="done")])
        if params.name == "cancellations":
            return types.CallToolResult(content=[types.TextContent(text=str(len(CANCELLED)))])
        if params.name == "release":
            RELEASE[-1].set()
            RELEASE.append(anyio.Event())
            del RELEASE[:-1]
            return types.CallToolResult(content=[types.TextContent(text="released")])
        if params.name == "fail":
            return types.CallToolResult(content=[types.TextContent(text="it failed on purpose")], is_error=True)
        if params.name == "headers_text":
            lines = [f"{name}: {value}" for name, value in SEEN_HEADERS[-1].items()]
            return types.CallToolResult(content=[types.TextContent(text="\n".join(lines))])
        if params.name == "secret_echo":
            return types.CallToolResult(content=[types.TextContent(text=str(args))], structured_content={"echo": args})
        if library and params.name in MEDIA:
            media = media_tool(params.name, args)
            if ctx.protocol_version >= "2026":
                media["resultType"] = "complete"
            return media
        if params.name in ASKING:
            return await asking_tool(ctx, params)
        if params.name == "touch":
            return await touch(args)
        if params.name == "heard":
            return heard()
        if params.name == "grow":
            name = f"grown_{len(GROWN) + 1}"
            GROWN.append(types.Tool(name=name, description="A tool added at run time", input_schema={"type": "object"}))
            if not args.get("quiet"):
                await ctx.session.send_tool_list_changed()  # handshake era: to the calling session
                await BUS.publish(ToolsListChanged())  # 2026-07-28: to subscriptions/listen streams
            return types.CallToolResult(content=[types.TextContent(text=name)])
        if params.name.startswith(("tool_", "grown_")) or params.name in ODD_NAMES or params.name in SPOOF_NAMES:
            return types.CallToolResult(content=[types.TextContent(text=params.name)])
        raise ValueError(f"unknown tool {params.name}")

    async def list_resources(_ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        if library:
            start = int(params.cursor) if params is not None and params.cursor else 0
            more = start + 2 < len(LIBRARY_RESOURCES)
            page = LIBRARY_RESOURCES[start : start + 2]
            return types.ListResourcesResult(resources=page, next_cursor=str(start + 2) if more else None)
        return types.ListResourcesResult(
            resources=[types.Resource(uri="memo://one", name="one", mime_type="text/plain")]
        )

    async def list_templates(
        _ctx: Ctx, _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        if library:
            return types.ListResourceTemplatesResult(resource_templates=LIBRARY_TEMPLATES)
        return types.ListResourceTemplatesResult(
            resource_templates=[types.ResourceTemplate(uri_template="memo://{name}", name="memo")]
        )

    async def read_resource(_ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if library and uri in LIBRARY_BLOBS:
            mime, blob = LIBRARY_BLOBS[uri]
            return types.ReadResourceResult(contents=[types.BlobResourceContents(uri=uri, blob=blob, mime_type=mime)])
        if library and uri == "memo://markup":
            return types.ReadResourceResult(
                contents=[types.TextResourceContents(uri=uri, text=MARKUP, mime_type="text/html")]
            )
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(uri=str(params.uri), text=f"memo {params.uri}", mime_type="text/plain")
            ]
        )

    async def list_prompts(_ctx: Ctx, _params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        if library:
            return types.ListPromptsResult(prompts=LIBRARY_PROMPTS)
        return types.ListPromptsResult(
            prompts=[types.Prompt(name="greet", arguments=[types.PromptArgument(name="name", required=True)])]
        )

    async def get_prompt(_ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        if library and params.name == "poster":
            caption = (params.arguments or {}).get("caption", "no caption")
            return types.GetPromptResult(
                description="A poster",
                messages=[
                    types.PromptMessage(role="user", content=types.TextContent(text=f"Caption: {caption}")),
                    types.PromptMessage(
                        role="assistant", content=types.ImageContent(data=PIXEL_PNG, mime_type="image/png")
                    ),
                ],
            )
        name = (params.arguments or {}).get("name", "world")
        return types.GetPromptResult(
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=f"Hello, {name}!"))]
        )

    async def complete(_ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        prefix = params.argument.value
        values = [v for v in ("alice", "albert", "bob") if v.startswith(prefix)]
        return types.CompleteResult(completion=types.Completion(values=values, total=len(values)))

    async def set_level(_ctx: Ctx, _params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Server(
            "upstream",
            version="1.0.0",
            instructions="A test upstream.",
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_resources=list_resources,
            on_list_resource_templates=list_templates,
            on_read_resource=read_resource,
            on_list_prompts=list_prompts,
            on_get_prompt=get_prompt,
            on_completion=complete,
            on_set_logging_level=set_level,
            on_subscribe_resource=subscribe,
            on_unsubscribe_resource=unsubscribe,
            on_subscriptions_listen=LISTEN,
            on_roots_list_changed=roots_changed,
        )


async def raw_echo(receive: Receive, send: Send) -> None:
    """`/raw`: a server that speaks JSON-RPC by hand, with fields no SDK type knows, and echoes requests."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body)
    if "id" not in request:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if request.get("method") == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": request["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw", "version": "1"},
        }
    elif request.get("method") == "tools/list":
        result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
    else:
        result = {"content": [{"type": "text", "text": "raw"}], "x-raw-extra": {"kept": True}, "received": request}
    answer = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result, "x-envelope-extra": 1}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


class RecordHeaders:
    """Records request headers, and requires a bearer token when one is configured."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            SEEN_HEADERS.append(headers)
            del SEEN_HEADERS[:-100]
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                await send(
                    {"type": "http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"upstream wants its own token"})
                return
            if scope["path"] == "/raw":
                await raw_echo(receive, send)
                return
            if scope["path"] == "/html":
                await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
                await send({"type": "http.response.body", "body": b"<html>a login page</html>"})
                return
        await self.app(scope, receive, send)


class ModernOnly:
    """A server of the stateless era only: `initialize` is refused, as a 2026-07-28-only server would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if b'"initialize"' in body and json.loads(body).get("method") == "initialize":
            error = {"code": -32602, "message": "Unsupported protocol version", "data": {"supported": ["2026-07-28"]}}
            answer = json.dumps({"jsonrpc": "2.0", "id": json.loads(body).get("id"), "error": error}).encode()
            await send(
                {"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": answer})
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class LegacyOnly:
    """A server of the handshake era only: requests of the 2026-07-28 era are refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode(): v.decode() for k, v in scope.get("headers", [])}
        if scope["type"] == "http" and headers.get("mcp-protocol-version", "") >= "2026":
            error = {"code": -32600, "message": "Unsupported protocol version 2026-07-28"}
            answer = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
            await send(
                {"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": answer})
            return
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--token", default=None)
    parser.add_argument("--json", action="store_true", help="answer JSON instead of SSE streams")
    parser.add_argument("--tools", type=int, default=0, help="extra generated tools")
    parser.add_argument("--odd-names", action="store_true", help="tools with a 70-character name and clashing names")
    parser.add_argument("--spoof-names", action="store_true", help="tools with control, bidi and look-alike names")
    parser.add_argument("--library", action="store_true", help="more resources, templates and prompts")
    parser.add_argument("--modern-only", action="store_true", help="refuse initialize: speak only 2026-07-28")
    parser.add_argument("--legacy-only", action="store_true", help="refuse 2026-07-28 requests: handshake era only")
    parser.add_argument("--sse", action="store_true", help="the legacy HTTP+SSE transport (GET /sse) instead")
    parser.add_argument("--stdio", action="store_true", help="stdin/stdout instead of HTTP")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = build_server(args.tools, args.odd_names, args.spoof_names, args.library)
    if args.stdio:
        anyio.run(run_stdio, server)
        return
    if args.sse:
        served: ASGIApp = sse_app(server)
    else:
        app = server.streamable_http_app(json_response=args.json, host="127.0.0.1")
        served = ModernOnly(app) if args.modern_only else LegacyOnly(app) if args.legacy_only else app
    uvicorn.run(
        RecordHeaders(served, args.token),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off" if args.sse else "auto",
    )


if __name__ == "__main__":
    main()
