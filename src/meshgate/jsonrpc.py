"""JSON-RPC messages meshgate writes itself: errors built from the error tree, results and refusals.

The one place that decides how a `MeshgateError` looks inside a JSON-RPC message (HTTP status and
headers for MCP endpoints are added by `meshgate.http.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from meshgate.errors import InvalidInput, MalformedJson, MeshgateError
from meshgate.jsonvalues import as_dict
from meshgate.protocol import completed

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
GATEWAY_ERROR = -32001  # server-defined range: meshgate (or the upstream behind it) failed the request

# Errors that mean the message itself was wrong; every other meshgate error is the gateway's answer.
_CODES = {
    "invalid_json": PARSE_ERROR,
    "invalid_input": INVALID_REQUEST,
    "payload_too_large": INVALID_REQUEST,
    "unsupported_media_type": INVALID_REQUEST,
}


# What an audit record and a permission decision name in each method's params.
_TARGET_KEYS = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}


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
        key = _TARGET_KEYS.get(self.method or "")
        value = None if key is None else self.params.get(key)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        return value if isinstance(value, str) else None


NO_ENVELOPE = Envelope(None, None, None)


def request(method: str, params: dict[str, Any], message_id: Any = None) -> Envelope:
    """An envelope for a request meshgate makes itself (REST, the dashboard, workers)."""
    return Envelope(method, message_id, params)


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


def error_code(error: MeshgateError) -> int:
    return _CODES.get(error.code, GATEWAY_ERROR)


def error_message(message_id: Any, error: MeshgateError) -> dict[str, Any]:
    """The JSON-RPC error answer for a meshgate error: its code mapped, its own shape in `data`."""
    body = {"code": error_code(error), "message": error.message, "data": error.to_dict()}
    return {"jsonrpc": "2.0", "id": message_id, "error": body}


def rpc_error(message_id: Any, code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC error of the protocol itself (unknown method, bad params) that is not a meshgate error."""
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": message}}


def result_message(message_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": result}


def refusal_result(error: MeshgateError, protocol_version: str | None = None) -> dict[str, Any]:
    """A tools/call that meshgate refused or could not complete, as a tool result with `isError`.

    MCP keeps protocol errors for malformed requests; a denied or failed call is a result the model reads."""
    result = {"content": [{"type": "text", "text": f"{error.code}: {error.message}"}], "isError": True}
    return completed(result, protocol_version)
