"""`POST /mcp/{connection_id}/call-tool/{tool}`: REST for scripts. The JSON body is the tool's arguments;
the answer is the tool result JSON (or a meshgate error as HTTP JSON). An adapter over `CallService`:
the same admission, decision, credentials and audit as the MCP path, over meshgate's own session.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from meshgate.calls.models import CallContext, Target
from meshgate.calls.service import CallService
from meshgate.errors import InvalidInput, MeshgateError
from meshgate.http.errors import http_error
from meshgate.http.guard import Admission
from meshgate.jsonvalues import as_dict


class RestCalls:
    """The REST call-tool route."""

    def __init__(self, calls: CallService, admission: Admission) -> None:
        self._calls = calls
        self._admission = admission

    async def serve(  # noqa: PLR0917  (the parts of one routed request)
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        connection_id: str,
        tool: str,
        context: CallContext,
    ) -> None:
        try:
            if scope["method"] != "POST":
                raise InvalidInput("use POST with a JSON object of arguments")
            with context.trace.child("meshgate.authenticate"):
                principal, body = await self._admission.admit(scope, receive, headers)
            result = await self._calls.call_tool(principal, Target(connection_id), tool, tool_arguments(body), context)
        except MeshgateError as error:
            context.trace.error = error.code
            await http_error(error, headers={"x-request-id": context.request_id})(scope, receive, send)
            return
        start_headers = [(b"content-type", b"application/json"), (b"x-request-id", context.request_id.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        # Reading and recording the answer ran without a pause; let other requests in before encoding it
        # (up to 16 MiB: tens of milliseconds), so no one waits for both.
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": orjson.dumps(result), "more_body": False})


def tool_arguments(body: bytes) -> dict[str, Any]:
    try:
        arguments: Any = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(arguments, dict):
        raise InvalidInput("the request body must be a JSON object of tool arguments")
    return as_dict(arguments)
