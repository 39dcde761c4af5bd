"""Stand-ins for AI providers we cannot reach, speaking their documented wire formats over 127.0.0.1:
OpenAI's Chat Completions / Models / Embeddings (platform.openai.com/docs/api-reference) under `/openai/v1`,
Anthropic's Messages / Models (docs.anthropic.com/en/api/messages, .../messages-streaming) under `/anthropic/v1`,
and misbehaving ones: `/garbage/v1` answers what is not JSON, `/slow/v1` never answers, `/broken/v1` fails.

The model behaves the same everywhere: asked about the weather with tools offered, it calls `get_weather`
with `{"city": "Paris"}`; given a tool result, it answers "It is sunny in Paris"; otherwise it echoes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

OPENAI_KEY = "sk-standin-openai-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-standin-0123456789abcdef"


@dataclass
class Providers:
    """The stand-in app; `requests` keeps what each provider received (path, headers, body)."""

    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(
        default_factory=list[tuple[str, dict[str, str], dict[str, Any]]]
    )
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)  # a streamed answer to "hold …" waits for it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": kind + ".complete"})
                if kind == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path: str = scope["path"]
        given: dict[str, Any] = orjson.loads(body) if body else {}
        self.requests.append((path, headers, given))
        flavour, _, endpoint = path.strip("/").partition("/v1/")
        if flavour == "slow":
            await self.release.wait()
            await _json(send, 503, {"error": {"message": "released"}})
        elif flavour == "garbage":
            await _raw(send, 200, b"<html>this is not an API</html>", b"application/json")
        elif flavour == "broken":
            await _json(send, 500, {"error": {"message": "the stand-in is broken", "type": "server_error"}})
        elif flavour == "openai":
            await _openai(endpoint, headers, given, send, self.held)
        elif flavour == "anthropic":
            await _anthropic(endpoint, headers, given, send, self.held)
        else:
            await _json(send, 404, {"error": {"message": f"no stand-in at {path}"}})


# --- the model --------------------------------------------------------------------------------------------


def _decide(messages: list[dict[str, Any]], has_tools: bool) -> tuple[str, dict[str, Any] | None]:
    """(text, tool call arguments or None) from the conversation in a neutral form."""
    texts = [m["text"] for m in messages if m["role"] == "user" and m.get("text")]
    if any(m["role"] == "tool" for m in messages):
        return "It is sunny in Paris", None
    last = texts[-1] if texts else ""
    if has_tools and "weather" in last:
        return "", {"city": "Paris"}
    return f"echo: {last}", None


# --- OpenAI -----------------------------------------------------------------------------------------------


async def _openai(
    endpoint: str, headers: dict[str, str], body: dict[str, Any], send: Send, held: asyncio.Event
) -> None:
    if headers.get("authorization") != f"Bearer {OPENAI_KEY}":
        await _json(send, 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        return
    if endpoint == "models":
        await _json(
            send,
            200,
            {
                "object": "list",
                "data": [{"id": "gpt-4o", "object": "model"}, {"id": "text-embedding-3-small", "object": "model"}],
            },
        )
        return
    if endpoint == "embeddings":
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, float(len(str(x)))]}
            for i, x in enumerate(inputs)
        ]
        await _json(
            send,
            200,
            {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}},
        )
        return
    if body.get("model") != "gpt-4o":
        await _json(
            send,
            404,
            {"error": {"message": f"The model `{body.get('model')}` does not exist", "type": "invalid_request_error"}},
        )
        return
    neutral = []
    for m in body["messages"]:
        content = m.get("content")
        text = (
            content
            if isinstance(content, str)
            else "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
        )
        neutral.append({"role": m["role"], "text": text})
    text, call = _decide(neutral, bool(body.get("tools")))
    tool_calls = (
        None
        if call is None
        else [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": orjson.dumps(call).decode()},
            }
        ]
    )
    finish = "tool_calls" if call else "stop"
    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        await _json(
            send,
            200,
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-4o",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            },
        )
        return
    await _start_sse(send)

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }

    await _event(send, chunk({"role": "assistant", "content": ""}))
    if call is None:
        for i, word in enumerate(text.split(" ")):
            await _event(send, chunk({"content": word + " "}))
            if i == 0 and "hold" in text:
                await held.wait()
    else:
        arguments = orjson.dumps(call).decode()
        await _event(
            send,
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                }
            ),
        )
        for piece in (arguments[:5], arguments[5:]):
            await _event(send, chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    await _event(send, chunk({}, finish))
    await _usage_chunk(send, body)
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


async def _usage_chunk(send: Send, body: dict[str, Any]) -> None:
    """With `stream_options.include_usage`, the last chunk before [DONE]: no choices, the whole call's usage."""
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        chunk = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
        await _event(send, {**chunk, "choices": [], "usage": usage})


# --- Anthropic --------------------------------------------------------------------------------------------


async def _anthropic(
    endpoint: str, headers: dict[str, str], body: dict[str, Any], send: Send, held: asyncio.Event
) -> None:
    if headers.get("x-api-key") != ANTHROPIC_KEY or headers.get("anthropic-version") != "2023-06-01":
        await _json(
            send, 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
        )
        return
    if endpoint.startswith("models"):
        await _json(
            send,
            200,
            {
                "data": [{"type": "model", "id": "claude-sonnet-4", "display_name": "Claude Sonnet 4"}],
                "has_more": False,
            },
        )
        return
    if "max_tokens" not in body or not isinstance(body.get("messages"), list):
        await _json(
            send,
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}},
        )
        return
    neutral = []
    for m in body["messages"]:
        for block in m["content"]:
            if block["type"] == "tool_result":
                neutral.append({"role": "tool", "text": block["content"]})
            elif block["type"] == "text":
                neutral.append({"role": m["role"], "text": block["text"]})
    text, call = _decide(neutral, bool(body.get("tools")))
    stop = "tool_use" if call else "end_turn"
    if not body.get("stream"):
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        if call:
            content.append({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": call})
        await _json(
            send,
            200,
            {
                "id": "msg_standin",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 7, "output_tokens": 4},
            },
        )
        return
    await _anthropic_stream(body, text, call, send, held)


async def _anthropic_stream(
    body: dict[str, Any], text: str, call: dict[str, Any] | None, send: Send, held: asyncio.Event
) -> None:
    stop = "tool_use" if call else "end_turn"
    await _start_sse(send)

    async def event(name: str, data: dict[str, Any]) -> None:
        payload = b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"
        await send({"type": "http.response.body", "body": payload, "more_body": True})

    await event(
        "message_start",
        {
            "message": {
                "id": "msg_standin",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": body["model"],
                "usage": {"input_tokens": 7, "output_tokens": 1},
            }
        },
    )
    await event("ping", {})
    if call is None:
        await event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        for i, word in enumerate(text.split(" ")):
            await event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word + " "}})
            if i == 0 and "hold" in text:
                await held.wait()
        await event("content_block_stop", {"index": 0})
    else:
        arguments = orjson.dumps(call).decode()
        await event(
            "content_block_start",
            {"index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
        )
        for piece in (arguments[:5], arguments[5:]):
            await event(
                "content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}}
            )
        await event("content_block_stop", {"index": 0})
    await event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 4}})
    await event("message_stop", {})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


# --- HTTP -------------------------------------------------------------------------------------------------


async def _json(send: Send, status: int, payload: Any) -> None:
    await _raw(send, status, orjson.dumps(payload), b"application/json")


async def _raw(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def _start_sse(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})


async def _event(send: Send, data: dict[str, Any]) -> None:
    await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(data) + b"\n\n", "more_body": True})
