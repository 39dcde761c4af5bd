"""Anthropic's Messages API behind OpenAI's Chat Completions: requests, answers, tool calls and streamed deltas
translated both ways (https://docs.anthropic.com/en/api/messages, .../messages-streaming)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from meshgate.ai.models import OpenedProvider
from meshgate.ai.openai_wire import model_ids
from meshgate.ai.usage import Tokens
from meshgate.ai.wire import ProviderHttp
from meshgate.errors import InvalidInput, ProviderError
from meshgate.jsonvalues import as_dict

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI's callers often leave it out
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


def _headers(opened: OpenedProvider) -> dict[str, str]:
    headers = {"anthropic-version": VERSION}
    if opened.secret is not None:
        headers["x-api-key"] = opened.secret
    return headers


# --- request: OpenAI → Anthropic -------------------------------------------------------------------------


def to_messages_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for index, given in enumerate(_list(body.get("messages"), "messages")):
        message = _object(given, f"messages[{index}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(message.get("content"), index))
        elif role == "user":
            _append(messages, "user", _user_blocks(message.get("content"), index))
        elif role == "assistant":
            _append(messages, "assistant", _assistant_blocks(message, index))
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id") or ""),
                "content": _text_of(message.get("content"), index),
            }
            _append(messages, "user", [result])
        else:
            raise InvalidInput(f"messages[{index}].role must be system, developer, user, assistant or tool")
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        request["system"] = "\n\n".join(system)
    _add_options(body, request)
    return request


def _add_options(body: dict[str, Any], request: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            request[name] = body[name]
    stop = body.get("stop")
    if stop is not None:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if body.get("tools"):
        request["tools"] = [_tool(tool, i) for i, tool in enumerate(_list(body["tools"], "tools"))]
    choice = body.get("tool_choice")
    if choice == "auto":
        request["tool_choice"] = {"type": "auto"}
    elif choice == "required":
        request["tool_choice"] = {"type": "any"}
    elif choice == "none":
        request.pop("tools", None)  # Anthropic's {"type": "none"} is newer than many deployments; same effect
    elif isinstance(choice, dict):
        function = as_dict(choice).get("function")
        if isinstance(function, dict) and isinstance(as_dict(function).get("name"), str):
            request["tool_choice"] = {"type": "tool", "name": as_dict(function)["name"]}
    if body.get("stream"):
        request["stream"] = True


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # Anthropic wants user and assistant turns to alternate: consecutive ones (several tool results) merge.
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _user_blocks(content: Any, index: int) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in _list(content, f"messages[{index}].content"):
        given = _object(part, f"messages[{index}].content[]")
        if given.get("type") == "text":
            blocks.append({"type": "text", "text": str(given.get("text", ""))})
        elif given.get("type") == "image_url":
            image = given.get("image_url")
            url = as_dict(image).get("url") if isinstance(image, dict) else image
            blocks.append({"type": "image", "source": _image_source(url, index)})
        else:
            raise InvalidInput(f"messages[{index}].content: parts of type text and image_url are supported")
    return blocks


def _image_source(url: Any, index: int) -> dict[str, Any]:
    if not isinstance(url, str):
        raise InvalidInput(f"messages[{index}]: image_url.url must be a string")
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        return {"type": "base64", "media_type": head[5:].split(";", 1)[0], "data": data}
    return {"type": "url", "url": url}


def _assistant_blocks(message: dict[str, Any], index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = message.get("content")
    if text:
        blocks.append({"type": "text", "text": _text_of(text, index)})
    for call in _list(message.get("tool_calls") or [], f"messages[{index}].tool_calls"):
        function = as_dict(_object(call, f"messages[{index}].tool_calls[]").get("function") or {})
        try:
            arguments: Any = orjson.loads(str(function.get("arguments") or "{}"))
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"messages[{index}].tool_calls: function.arguments must be JSON text") from exc
        blocks.append(
            {
                "type": "tool_use",
                "id": str(as_dict(call).get("id", "")),
                "name": str(function.get("name", "")),
                "input": arguments,
            }
        )
    return blocks


def _tool(tool: Any, index: int) -> dict[str, Any]:
    function = _object(_object(tool, f"tools[{index}]").get("function"), f"tools[{index}].function")
    described: dict[str, Any] = {
        "name": str(function.get("name", "")),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        described["description"] = str(function["description"])
    return described


def _text_of(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    parts = _list(content, f"messages[{index}].content")
    return "".join(str(as_dict(part).get("text", "")) for part in parts if isinstance(part, dict))


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{where} must be a list")
    return value  # pyright: ignore[reportUnknownVariableType]


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object")
    return as_dict(value)


# --- answer: Anthropic → OpenAI ---------------------------------------------------------------------------


def to_chat_completion(answer: dict[str, Any], model: str) -> dict[str, Any]:
    content = answer.get("content")
    if answer.get("type") != "message" or not isinstance(content, list):
        raise ProviderError("AI provider answered something that is not an Anthropic message")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:  # pyright: ignore[reportUnknownVariableType]
        given = as_dict(block) if isinstance(block, dict) else {}
        if given.get("type") == "text":
            texts.append(str(given.get("text", "")))
        elif given.get("type") == "tool_use":
            arguments = orjson.dumps(given.get("input") or {}).decode()
            calls.append(
                {
                    "id": given.get("id"),
                    "type": "function",
                    "function": {"name": given.get("name"), "arguments": arguments},
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{answer.get('id', '')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _FINISH.get(str(answer.get("stop_reason")), "stop")}
        ],
        "usage": _usage(as_dict(answer.get("usage") or {})),
    }


def _usage(usage: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class StreamTranslator:
    """Anthropic stream events in, OpenAI `chat.completion.chunk` SSE lines out, one event at a time."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = "chatcmpl-"
        self._created = int(time.time())
        self._tool_index: dict[int, int] = {}  # Anthropic content block index → OpenAI tool call index
        self._usage: dict[str, Any] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def feed(self, event: str, data: bytes) -> list[bytes]:  # noqa: PLR0911  (one answer per event type)
        try:
            value: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProviderError("AI provider sent a stream event that is not JSON") from exc
        payload = as_dict(value) if isinstance(value, dict) else {}
        kind = str(payload.get("type") or event)
        if kind == "message_start":
            message = as_dict(payload.get("message") or {})
            self._id = f"chatcmpl-{message.get('id', '')}"
            self._usage.update(as_dict(message.get("usage") or {}))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = as_dict(payload.get("content_block") or {})
            if block.get("type") != "tool_use":
                return []
            index = self._tool_index[int(payload.get("index") or 0)] = len(self._tool_index)
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "content_block_delta":
            delta = as_dict(payload.get("delta") or {})
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": str(delta.get("text", ""))})]
            if delta.get("type") == "input_json_delta":
                index = self._tool_index.get(int(payload.get("index") or 0), 0)
                call = {"index": index, "function": {"arguments": str(delta.get("partial_json", ""))}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            self._usage.update(as_dict(payload.get("usage") or {}))
            reason = _FINISH.get(str(as_dict(payload.get("delta") or {}).get("stop_reason")), "stop")
            return [self._chunk({}, reason)]
        if kind == "message_stop":
            return [*self._usage_chunk(), b"data: [DONE]\n\n"]
        if kind == "error":
            error = as_dict(payload.get("error") or {})
            raise ProviderError(
                f"AI provider failed while streaming: {str(error.get('message', 'unknown error'))[:300]}"
            )
        return []  # ping, content_block_stop, events added later

    @property
    def usage(self) -> dict[str, int] | None:
        """The tokens counted so far, in OpenAI's `usage` shape (None before the stream told any)."""
        return _usage(self._usage) if self._usage else None

    def _usage_chunk(self) -> list[bytes]:
        if not self._include_usage:
            return []
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [],
            "usage": _usage(self._usage),
        }
        return [b"data: " + orjson.dumps(chunk) + b"\n\n"]


# --- calls ------------------------------------------------------------------------------------------------


async def chat(
    http: ProviderHttp, opened: OpenedProvider, body: dict[str, Any], model: str, shown_as: str
) -> dict[str, Any]:
    request = to_messages_request(body, model)
    name = opened.key.name
    response = await http.send(name, "POST", opened.key.api_root + "/messages", _headers(opened), orjson.dumps(request))
    answer = await http.json(name, response)
    try:
        return to_chat_completion(answer, shown_as)
    except ProviderError as exc:
        raise ProviderError(f"AI provider {name} answered something that is not an Anthropic message") from exc


async def chat_stream(  # noqa: PLR0917  (the call's parts, as chat's)
    http: ProviderHttp, opened: OpenedProvider, body: dict[str, Any], model: str, shown_as: str, tokens: Tokens
) -> AsyncIterator[bytes]:
    request = to_messages_request({**body, "stream": True}, model)
    name = opened.key.name
    response = await http.send(name, "POST", opened.key.api_root + "/messages", _headers(opened), orjson.dumps(request))
    if response.status >= 400:
        await http.fail(name, response)
    if "text/event-stream" not in response.headers.get("content-type", ""):
        response.release()
        raise ProviderError(f"AI provider {name} did not answer a stream (text/event-stream) to stream: true")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(as_dict(options).get("include_usage"))
    return _translated(http, name, response, StreamTranslator(shown_as, include_usage), tokens)


async def _translated(
    http: ProviderHttp, name: str, response: Any, translator: StreamTranslator, tokens: Tokens
) -> AsyncIterator[bytes]:
    finished = False
    try:
        async for event, data in http.events(name, response):
            for line in translator.feed(event, data):
                finished = finished or line == b"data: [DONE]\n\n"
                yield line
    finally:
        tokens.read(translator.usage)
    if not finished:
        raise ProviderError(f"AI provider {name} ended its stream before message_stop")


async def models(http: ProviderHttp, opened: OpenedProvider) -> list[str]:
    name = opened.key.name
    response = await http.send(name, "GET", opened.key.api_root + "/models?limit=1000", _headers(opened), None)
    return model_ids(name, await http.json(name, response))
