"""The one place that turns a `MeshgateError` into an HTTP response."""

from __future__ import annotations

import math
from typing import Any

from starlette.responses import JSONResponse, Response

from meshgate.errors import MeshgateError, RateLimited, Unauthenticated
from meshgate.jsonrpc import error_message


def retry_after(error: RateLimited) -> str:
    """The `Retry-After` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(error.retry_after)))


def http_error(error: MeshgateError, headers: dict[str, str] | None = None) -> Response:
    """`{"error": {"code", "message"}}` with the error's status, for REST and plain endpoints."""
    if isinstance(error, RateLimited):
        headers = {**(headers or {}), "Retry-After": retry_after(error)}
    return JSONResponse({"error": error.to_dict()}, status_code=error.http_status, headers=headers)


def mcp_http_error(error: MeshgateError, *, resource_metadata: str | None = None, message_id: Any = None) -> Response:
    """A JSON-RPC error body (`meshgate.jsonrpc.error_message`) for MCP endpoints, with the error's HTTP status."""
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = retry_after(error)
    if isinstance(error, Unauthenticated) and resource_metadata is not None:
        value = f'Bearer resource_metadata="{resource_metadata}"'
        if error.message != "missing bearer token":
            value += ', error="invalid_token"'
        headers["WWW-Authenticate"] = value
    return JSONResponse(error_message(message_id, error), status_code=error.http_status, headers=headers)


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
}
_OPENAI_TYPES.update({409: "invalid_request_error", 413: "invalid_request_error", 415: "invalid_request_error"})
_OPENAI_TYPES[429] = "rate_limit_error"


def openai_error_body(error: MeshgateError) -> dict[str, Any]:
    """OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`, `code` being meshgate's."""
    kind = _OPENAI_TYPES.get(error.http_status, "api_error")
    return {"error": {"message": error.message, "type": kind, "param": None, "code": error.code}}


def openai_error(error: MeshgateError) -> Response:
    """An error of the OpenAI-compatible API (`/api/{org_slug}/v1`), in OpenAI's shape, with the error's status."""
    headers = {"Retry-After": retry_after(error)} if isinstance(error, RateLimited) else None
    return JSONResponse(openai_error_body(error), status_code=error.http_status, headers=headers)
