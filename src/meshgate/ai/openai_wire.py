"""Providers that speak OpenAI's wire format (OpenAI, Gemini's compatible endpoint, OpenRouter, Ollama, vLLM,
LM Studio): the request passes through with the model renamed, the answer comes back as sent."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from meshgate.ai.models import OpenedProvider
from meshgate.ai.usage import Tokens
from meshgate.ai.wire import MAX_ANSWER, ProviderHttp
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout
from meshgate.errors import ProviderError, ProviderTimeout
from meshgate.jsonvalues import as_dict, as_list

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def _headers(opened: OpenedProvider) -> dict[str, str]:
    return {} if opened.secret is None else {"authorization": f"Bearer {opened.secret}"}


async def post_json(http: ProviderHttp, opened: OpenedProvider, path: str, body: dict[str, Any]) -> dict[str, Any]:
    name = opened.key.name
    response = await http.send(name, "POST", opened.key.api_root + path, _headers(opened), orjson.dumps(body))
    return await http.json(name, response)


async def chat(http: ProviderHttp, opened: OpenedProvider, body: dict[str, Any], model: str) -> dict[str, Any]:
    answer = await post_json(http, opened, "/chat/completions", {**body, "model": model})
    if not isinstance(answer.get("choices"), list):
        raise ProviderError(f"AI provider {opened.key.name} answered without choices: not a chat completion")
    return answer


async def chat_stream(
    http: ProviderHttp, opened: OpenedProvider, body: dict[str, Any], model: str, tokens: Tokens
) -> AsyncIterator[bytes]:
    """The provider's own SSE bytes, event by event as they arrive (the stream is already OpenAI's format).

    The provider is always asked for its usage chunk (`stream_options.include_usage`), which fills `tokens`;
    a caller who did not ask for it does not get it (clients that read `choices[0]` of every chunk break on
    its empty `choices`)."""
    name = opened.key.name
    options = body.get("stream_options")
    wanted = isinstance(options, dict) and bool(as_dict(options).get("include_usage"))
    request = {
        **body,
        "model": model,
        "stream_options": {**(as_dict(options) if wanted else {}), "include_usage": True},
    }
    response = await http.send(
        name, "POST", opened.key.api_root + "/chat/completions", _headers(opened), orjson.dumps(request)
    )
    if response.status >= 400:
        await http.fail(name, response)
    if "text/event-stream" not in response.headers.get("content-type", ""):
        response.release()
        raise ProviderError(f"AI provider {name} did not answer a stream (text/event-stream) to stream: true")
    return _relay(http, name, response, tokens, keep_usage=wanted)


async def _relay(
    http: ProviderHttp, name: str, response: Any, tokens: Tokens, *, keep_usage: bool
) -> AsyncIterator[bytes]:
    buffer = b""  # an event not yet complete: it is sent whole, so the usage chunk can be read (or left out)
    try:
        async for chunk in response.iter_chunks(idle_s=http.timeout_s):
            buffer += chunk
            end = _last_event_end(buffer)
            if end == 0:
                if len(buffer) > MAX_ANSWER:
                    raise ProviderError(f"AI provider {name} sent an event of more than {MAX_ANSWER} bytes")
                continue
            ready, buffer = buffer[:end], buffer[end:]
            if b'"usage"' in ready:
                ready = _read_usage(ready, tokens, keep_usage)
            if ready:
                yield ready
        if buffer:
            yield buffer
    except HttpTimeout as exc:
        raise ProviderTimeout(f"AI provider {name} stopped streaming for {http.timeout_s:g} s") from exc
    except HttpError as exc:
        raise ProviderError(f"AI provider {name} broke off its stream: {exc}") from exc
    finally:
        response.release()


def _last_event_end(buffer: bytes) -> int:
    """Where the last complete server-sent event of `buffer` ends (0: none is complete)."""
    return max(buffer.rfind(b"\n\n") + 2, buffer.rfind(b"\r\n\r\n") + 4, buffer.rfind(b"\r\r") + 2, 0)


def _read_usage(events: bytes, tokens: Tokens, keep_usage: bool) -> bytes:
    """Fill `tokens` from the usage chunk among `events`; without `keep_usage`, leave that chunk out."""
    kept: list[bytes] = []
    for event in _EVENT_END.split(events):
        data = event.strip().removeprefix(b"data:").strip()
        if b'"usage"' in data and data.startswith(b"{"):
            try:
                value: Any = orjson.loads(data)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                chunk = as_dict(value)
                tokens.read(chunk.get("usage"))
                if not keep_usage and chunk.get("choices") == []:
                    continue
        if event:
            kept.append(event + b"\n\n")
    return b"".join(kept)


async def models(http: ProviderHttp, opened: OpenedProvider) -> list[str]:
    name = opened.key.name
    response = await http.send(name, "GET", opened.key.api_root + "/models", _headers(opened), None)
    listing = await http.json(name, response)
    return model_ids(name, listing)


def model_ids(name: str, listing: dict[str, Any]) -> list[str]:
    """The `id`s of a `{"data": [{"id": …}]}` listing (OpenAI's and Anthropic's shape)."""
    data = listing.get("data")
    if not isinstance(data, list):
        raise ProviderError(f"AI provider {name} answered a model listing without data")
    entries = [as_dict(entry) for entry in as_list(data)]
    return [str(entry["id"]) for entry in entries if isinstance(entry.get("id"), str)]
