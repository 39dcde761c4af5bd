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
