"""Code mode (`/mcp/virtual/{id}?mode=code`): the model writes one program that calls many tools.

Three tools stand in for the virtual MCP's list: `search_tools` (as in search mode), `describe_tools` (full
definitions with TypeScript declarations) and `run_code`, whose program calls `await tools.<name>(args)`.
Each such call is a tools/call of the virtual MCP as the caller makes it from outside (the same decision,
refusal and audit record); what the program logs and returns is the result.
"""

from __future__ import annotations

from typing import Any

import orjson

from meshgate.errors import MeshgateError
from meshgate.jsonvalues import as_dict, as_list
from meshgate.sandbox.service import RunOutcome
from meshgate.sandbox.typescript import declaration

RUN_CODE = "run_code"

RUN_CODE_TOOL: dict[str, Any] = {
    "name": RUN_CODE,
    "description": (
        "Run JavaScript (the body of an async function). Call tools with `await tools.<name>(args)`: it resolves "
        "to the tool's structured result (or its text) and throws a ToolError when the tool fails or is refused. "
        "`console.log` output and the value you `return` (JSON) come back. No network, files, timers or modules; "
        "limits on memory, CPU and wall time, output size and the number of tool calls."
    ),
    "inputSchema": {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "e.g. const r = await tools.x({a: 1}); return r"}},
        "required": ["code"],
    },
    "outputSchema": {
        "type": "object",
        "properties": {"result": {}, "logs": {"type": "array", "items": {"type": "string"}}, "toolCalls": {}},
    },
}

DESCRIBE_DESCRIPTION = (
    "Full definitions of tools found with search_tools: input and output schemas and a TypeScript declaration "
    "of `tools.<name>` as run_code's programs call it."
)


def described(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool's definition with its TypeScript declaration."""
    return {**tool, "typescript": declaration(tool)}


def tool_value(result: dict[str, Any]) -> dict[str, Any]:
    """What `await tools.x()` resolves to (`value`) or throws (`error`) for a tools/call result."""
    texts = [
        str(as_dict(item).get("text")) for item in as_list(result.get("content")) if as_dict(item).get("type") == "text"
    ]
    if result.get("isError"):
        return {"error": "\n".join(texts) or "the tool failed", "code": "tool_error", "result": result}
    if "structuredContent" in result:
        return {"value": result["structuredContent"]}
    if len(texts) == 1:
        try:
            return {"value": orjson.loads(texts[0])}
        except orjson.JSONDecodeError:
            return {"value": texts[0]}
    return {"value": result.get("content", [])}


def run_result(outcome: RunOutcome) -> dict[str, Any]:
    """The tools/call result of a run: logs and the returned value, or the error that ended it."""
    content: list[dict[str, Any]] = []
    if outcome.logs:
        content.append({"type": "text", "text": "\n".join(outcome.logs)})
    if outcome.error is not None:
        error: MeshgateError = outcome.error
        content.append({"type": "text", "text": f"{error.code}: {error.message}"})
        structured = {"error": error.to_dict(), "logs": outcome.logs, "toolCalls": outcome.tool_calls}
        return {"content": content, "structuredContent": structured, "isError": True}
    value = outcome.returned()
    if value is not None:
        content.append({"type": "text", "text": outcome.value or "null"})
    structured = {"result": value, "logs": outcome.logs, "toolCalls": outcome.tool_calls}
    return {"content": content, "structuredContent": structured}
