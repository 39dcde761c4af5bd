"""Tool results: JSON text plus `structuredContent`; failures are `isError` results with one line."""

from __future__ import annotations

from typing import Any, cast

import mcp_types as types
import orjson

from meshgate.errors import MeshgateError


def success(payload: Any) -> types.CallToolResult:
    structured = cast("dict[str, Any]", payload) if isinstance(payload, dict) else {"result": payload}
    text = orjson.dumps(structured).decode()
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured)


def failure(error: MeshgateError) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{error.code}: {error.message}")],
        structured_content={"error": error.to_dict()},
        is_error=True,
    )
