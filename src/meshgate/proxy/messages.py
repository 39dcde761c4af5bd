"""JSON-RPC pieces the proxy reads or writes itself: the envelope, refusals, and tools/list filtering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from meshgate.connections.upstream.sse import parse_events
from meshgate.errors import InvalidInput, MalformedJson
from meshgate.jsonvalues import as_dict, as_list


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parts of a client's JSON-RPC message that routing, permissions and audit need."""

    method: str | None
    id: Any
    params: Any
    message: dict[str, Any] | None = None

    @property
    def tool_name(self) -> str | None:
        if self.method == "tools/call" and isinstance(self.params, dict):
            name = self.params.get("name")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            return name if isinstance(name, str) else None
        return None

    @property
    def target(self) -> str | None:
        """What an audit record names: the tool, the resource URI or the prompt."""
        if not isinstance(self.params, dict):
            return None
        key = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}.get(self.method or "")
        value = None if key is None else self.params.get(key)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        return value if isinstance(value, str) else None


def parse_envelope(body: bytes) -> Envelope:
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise InvalidInput("request body must be one JSON-RPC object")
    method = message.get("method")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return Envelope(
        method=method if isinstance(method, str) else None,
        id=message.get("id"),  # pyright: ignore[reportUnknownMemberType]
        params=message.get("params"),  # pyright: ignore[reportUnknownMemberType]
        message=as_dict(message),
    )


def refusal(message_id: Any, text: str, protocol_version: str | None) -> bytes:
    """A tools/call result with isError: refusals are tool results, not protocol errors."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": True}
    if protocol_version is not None and protocol_version >= "2026":
        result["resultType"] = "complete"
    return orjson.dumps({"jsonrpc": "2.0", "id": message_id, "result": result})


def filter_tools(body: bytes, content_type: str, allowed: Callable[[str], bool]) -> bytes:
    """A tools/list response with the tools the caller may not call removed (JSON or SSE)."""
    if content_type.startswith("text/event-stream"):
        out: list[bytes] = []
        for event in parse_events(body):
            event.data = _filter_message(event.data, allowed)
            out.append(event.encode())
        return b"".join(out)
    return _filter_message(body.decode(), allowed).encode()


def _filter_message(data: str, allowed: Callable[[str], bool]) -> str:
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    result = message.get("result") if isinstance(message, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    if not isinstance(result, dict) or not isinstance(result.get("tools"), list):  # pyright: ignore[reportUnknownMemberType]
        return data
    result["tools"] = [t for t in as_list(result["tools"]) if allowed(str(as_dict(t).get("name")))]
    return orjson.dumps(message).decode()
