"""An MCP server that implements what the server scenarios of the official conformance suite
(npm `@modelcontextprotocol/conformance` 0.1.16) ask for, built on the official Python SDK.

Run (from tests/): python -m support.conformance_server --port N   (Streamable HTTP at /mcp on 127.0.0.1)
                   python -m support.conformance_server --sse --port N   (legacy HTTP+SSE at /sse)
                   python -m support.conformance_server --stdio

Names and answers follow the scenario descriptions in the suite (`conformance list`, and the text each
scenario prints when it fails): tools `test_*`, resources `test://…`, prompts `test_*_prompt…`.
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
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore

from support.transports import run_stdio, sse_app

Ctx = ServerRequestContext[Any, Any]

# A 1x1 red PNG and a 44-byte silent WAV header, base64.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}

JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}

ELICITATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "User's response"},
        "email": {"type": "string", "description": "User's email address"},
    },
    "required": ["username", "email"],
}

DEFAULTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "default": "John Doe"},
        "age": {"type": "integer", "default": 30},
        "score": {"type": "number", "default": 95.5},
        "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "default": True},
    },
}

ENUMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


def _tool(name: str, description: str, schema: dict[str, Any] | None = None) -> types.Tool:
    return types.Tool(name=name, description=description, input_schema=schema or NO_ARGS)


def _string_args(*names: str) -> dict[str, Any]:
    return {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": list(names)}


TOOLS = [
    _tool("test_simple_text", "Returns simple text"),
    _tool("test_image_content", "Returns a PNG image"),
    _tool("test_audio_content", "Returns a WAV clip"),
    _tool("test_embedded_resource", "Returns an embedded text resource"),
    _tool("test_multiple_content_types", "Returns text, an image and a resource"),
    _tool("test_tool_with_logging", "Sends three info log messages while it runs"),
    _tool("test_error_handling", "Always answers isError"),
    _tool("test_tool_with_progress", "Reports progress 0, 50 and 100 of 100"),
    _tool("test_sampling", "Asks the client's model", _string_args("prompt")),
    _tool("test_elicitation", "Asks the user for a username and email", _string_args("message")),
    _tool("test_elicitation_sep1034_defaults", "Elicitation with defaults for every primitive type"),
    _tool("test_elicitation_sep1330_enums", "Elicitation with the five enum shapes"),
    _tool("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", JSON_SCHEMA_2020_12),
    _tool("test_reconnection", "Closes its SSE stream mid-call when the transport allows, then answers"),
]

RESOURCES = [
    types.Resource(uri="test://static-text", name="static-text", description="A text resource", mime_type="text/plain"),
    types.Resource(
        uri="test://static-binary", name="static-binary", description="A binary resource", mime_type="image/png"
    ),
    types.Resource(
        uri="test://watched-resource",
        name="watched-resource",
        description="A subscribable resource",
        mime_type="text/plain",
    ),
]

PROMPTS = [
    types.Prompt(name="test_simple_prompt", description="A prompt without arguments"),
    types.Prompt(
        name="test_prompt_with_arguments",
        description="A prompt with two arguments",
        arguments=[
            types.PromptArgument(name="arg1", description="First test argument", required=True),
            types.PromptArgument(name="arg2", description="Second test argument", required=True),
        ],
    ),
    types.Prompt(
        name="test_prompt_with_embedded_resource",
        description="A prompt that embeds a resource",
        arguments=[types.PromptArgument(name="resourceUri", description="URI to embed", required=True)],
    ),
    types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
]

SUBSCRIPTIONS: set[str] = set()


def _text(text: str) -> types.TextContent:
    return types.TextContent(text=text)


def _result(*content: Any, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=list(content), is_error=is_error)


async def _elicit(ctx: Ctx, message: str, schema: dict[str, Any]) -> str:
    answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return f"action={answer.action}, content={json.dumps(answer.content)}"


STATIC_RESULTS: dict[str, types.CallToolResult] = {
    "test_simple_text": _result(_text("This is a simple text response for testing.")),
    "test_image_content": _result(types.ImageContent(data=PNG, mime_type="image/png")),
    "test_audio_content": _result(types.AudioContent(data=WAV, mime_type="audio/wav")),
    "test_embedded_resource": _result(
        types.EmbeddedResource(
            resource=types.TextResourceContents(
                uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
            )
        )
    ),
    "test_multiple_content_types": _result(
        _text("Multiple content types test:"),
        types.ImageContent(data=PNG, mime_type="image/png"),
        types.EmbeddedResource(
            resource=types.TextResourceContents(
                uri="test://mixed-content-resource",
                mime_type="application/json",
                text=json.dumps({"test": "data", "value": 123}),
            )
        ),
    ),
    "test_error_handling": _result(_text("This tool intentionally returns an error for testing"), is_error=True),
    "json_schema_2020_12_tool": _result(_text("ok")),
}


ELICITATIONS = {
    "test_elicitation_sep1034_defaults": ("Please review the defaults", DEFAULTS_SCHEMA),
    "test_elicitation_sep1330_enums": ("Please choose", ENUMS_SCHEMA),
}


async def call_tool(ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:  # noqa: PLR0911  # one answer per scenario tool
    args = params.arguments or {}
    if params.name in STATIC_RESULTS:
        return STATIC_RESULTS[params.name]
    if params.name == "test_tool_with_logging":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the logging capability is deprecated only in 2026-07-28
            for number, message in enumerate(
                ("Tool execution started", "Tool processing data", "Tool execution completed")
            ):
                if number:
                    await anyio.sleep(0.05)  # the scenario asks for ~50 ms between messages
                await ctx.session.send_log_message("info", message, related_request_id=ctx.request_id)
        return _result(_text("Logging test completed"))
    if params.name == "test_tool_with_progress":
        for step in (0, 50, 100):
            if step:
                await anyio.sleep(0.05)  # the scenario asks for ~50 ms between notifications
            await ctx.session.report_progress(step, 100)  # a no-op unless the caller sent a progressToken
        return _result(_text("Progress test completed"))
    if params.name == "test_sampling":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sampling is deprecated only in 2026-07-28
            sampled = await ctx.session.create_message(
                [types.SamplingMessage(role="user", content=_text(str(args.get("prompt", ""))))],
                max_tokens=100,
                related_request_id=ctx.request_id,
            )
        content: Any = sampled.content
        return _result(_text(f"LLM response: {getattr(content, 'text', content)}"))
    if params.name == "test_elicitation":
        answer = await _elicit(ctx, str(args.get("message", "Please provide your information")), ELICITATION_SCHEMA)
        return _result(_text(f"User response: {answer}"))
    if params.name in ELICITATIONS:
        answer = await _elicit(ctx, *ELICITATIONS[params.name])
        return _result(_text(f"Elicitation completed: {answer}"))
    if params.name == "test_reconnection":
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
        return _result(_text("Reconnection test completed successfully"))
    raise ValueError(f"unknown tool {params.name}")


async def list_tools(_ctx: Ctx, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def list_resources(_ctx: Ctx, _params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    return types.ListResourcesResult(resources=RESOURCES)


async def list_templates(_ctx: Ctx, _params: types.PaginatedRequestParams | None) -> types.ListResourceTemplatesResult:
    template = types.ResourceTemplate(
        uri_template="test://template/{id}/data",
        name="template",
        description="Data for an id",
        mime_type="application/json",
    )
    return types.ListResourceTemplatesResult(resource_templates=[template])


async def read_resource(_ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
    uri = str(params.uri)
    if uri == "test://static-binary":
        return types.ReadResourceResult(contents=[types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG)])
    if uri.startswith("test://template/") and uri.endswith("/data"):
        item = uri.removeprefix("test://template/").removesuffix("/data")
        text = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )
    texts = {
        "test://static-text": "This is the content of the static text resource.",
        "test://watched-resource": "Watched resource content.",
    }
    if uri not in texts:
        raise ValueError(f"unknown resource {uri}")
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type="text/plain", text=texts[uri])]
    )


async def subscribe(_ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
    SUBSCRIPTIONS.add(str(params.uri))
    return types.EmptyResult()


async def unsubscribe(_ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    SUBSCRIPTIONS.discard(str(params.uri))
    return types.EmptyResult()


async def list_prompts(_ctx: Ctx, _params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    return types.ListPromptsResult(prompts=PROMPTS)


async def get_prompt(_ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
    args = params.arguments or {}
    if params.name == "test_simple_prompt":
        messages = [types.PromptMessage(role="user", content=_text("This is a simple prompt for testing."))]
    elif params.name == "test_prompt_with_arguments":
        text = f"Prompt with arguments: arg1='{args.get('arg1', '')}', arg2='{args.get('arg2', '')}'"
        messages = [types.PromptMessage(role="user", content=_text(text))]
    elif params.name == "test_prompt_with_embedded_resource":
        resource = types.TextResourceContents(
            uri=args.get("resourceUri", "test://example-resource"),
            mime_type="text/plain",
            text="Embedded resource content for testing.",
        )
        messages = [
            types.PromptMessage(role="user", content=types.EmbeddedResource(resource=resource)),
            types.PromptMessage(role="user", content=_text("Please process the embedded resource above.")),
        ]
    elif params.name == "test_prompt_with_image":
        messages = [
            types.PromptMessage(role="user", content=types.ImageContent(data=PNG, mime_type="image/png")),
            types.PromptMessage(role="user", content=_text("Please analyze the image above.")),
        ]
    else:
        raise ValueError(f"unknown prompt {params.name}")
    return types.GetPromptResult(messages=messages)


async def complete(_ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
    values = [v for v in ("paris", "park", "party", "test", "testing") if v.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


async def set_level(_ctx: Ctx, _params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


class MemoryEventStore(EventStore):
    """Every SSE event, kept so a client can resume a stream with Last-Event-ID (SEP-1699)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, types.JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: types.JSONRPCMessage | None) -> str:
        event_id = str(len(self._events) + 1)
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        known = [event for event in self._events if event[0] == last_event_id]
        if not known:
            return None
        stream_id = known[0][1]
        for event_id, stream, message in self._events[int(last_event_id) :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def build_server() -> Server[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logging and subscriptions are deprecated only in 2026-07-28
        return Server(
            "meshgate-conformance-fixture",
            version="1.0.0",
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_resources=list_resources,
            on_list_resource_templates=list_templates,
            on_read_resource=read_resource,
            on_subscribe_resource=subscribe,
            on_unsubscribe_resource=unsubscribe,
            on_list_prompts=list_prompts,
            on_get_prompt=get_prompt,
            on_completion=complete,
            on_set_logging_level=set_level,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--sse", action="store_true", help="the legacy HTTP+SSE transport")
    transport.add_argument("--stdio", action="store_true", help="stdin/stdout instead of HTTP")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    server = build_server()
    if args.stdio:
        anyio.run(run_stdio, server)
        return
    if args.sse:
        app = sse_app(server)
    else:
        # An event store makes the SDK send priming events (id, retry) on 2025-11-25 streams and allow resumption.
        app = server.streamable_http_app(host="127.0.0.1", event_store=MemoryEventStore(), retry_interval=500)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off" if args.sse else "auto")


if __name__ == "__main__":
    main()
