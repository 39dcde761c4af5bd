"""tools/list answers with the tools a caller may not call removed, as they pass through the proxy."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from meshgate.connections.upstream.sse import parse_events
from meshgate.jsonvalues import as_dict, as_list


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
    listed = as_list(result["tools"])
    tools = [t for t in listed if allowed(str(as_dict(t).get("name")))]
    if len(tools) == len(listed):
        return data  # nothing taken out: the upstream's bytes as they came
    result["tools"] = tools
    return orjson.dumps(message).decode()
