"""Providers that speak OpenAI's wire format (OpenAI, Gemini's compatible endpoint, OpenRouter, Ollama, vLLM,
LM Studio): the request passes through with the model renamed, the answer comes back as sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from meshgate.ai.models import OpenedProvider
from meshgate.ai.wire import ProviderHttp
from meshgate.connections.upstream.http11 import HttpError, HttpTimeout
from meshgate.errors import ProviderError, ProviderTimeout
from meshgate.jsonvalues import as_dict, as_list


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
    http: ProviderHttp, opened: OpenedProvider, body: dict[str, Any], model: str
) -> AsyncIterator[bytes]:
    """The provider's own SSE bytes, chunk by chunk as they arrive (the stream is already OpenAI's format)."""
    name = opened.key.name
    response = await http.send(
        name,
        "POST",
        opened.key.api_root + "/chat/completions",
        _headers(opened),
        orjson.dumps({**body, "model": model}),
    )
    if response.status >= 400:
        await http.fail(name, response)
    if "text/event-stream" not in response.headers.get("content-type", ""):
        response.release()
        raise ProviderError(f"AI provider {name} did not answer a stream (text/event-stream) to stream: true")
    return _relay(http, name, response)


async def _relay(http: ProviderHttp, name: str, response: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.iter_chunks(idle_s=http.timeout_s):
            yield chunk
    except HttpTimeout as exc:
        raise ProviderTimeout(f"AI provider {name} stopped streaming for {http.timeout_s:g} s") from exc
    except HttpError as exc:
        raise ProviderError(f"AI provider {name} broke off its stream: {exc}") from exc
    finally:
        response.release()


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
