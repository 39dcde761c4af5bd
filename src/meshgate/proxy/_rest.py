"""`POST /mcp/{connection_id}/call-tool/{tool}`: REST for scripts. The JSON body is the tool's arguments;
the answer is the tool result JSON (or a meshgate error as HTTP JSON). Same admission, permissions,
credentials and audit as the MCP path; the call goes over meshgate's own session with the upstream.
"""

from __future__ import annotations

from typing import Any

import orjson
from opentelemetry.trace import SpanKind
from starlette.types import Receive, Scope, Send

from meshgate.access import Principal
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.http11 import Response
from meshgate.errors import InvalidInput, MeshgateError, PermissionDenied, UpstreamError
from meshgate.http.errors import http_error
from meshgate.http.guard import Admission
from meshgate.jsonvalues import as_dict
from meshgate.proxy._exchange import Call, tool_arguments
from meshgate.proxy.messages import Envelope
from meshgate.proxy.telemetry import Telemetry
from meshgate.runtime import Runtime


class RestPath:
    """Mixed into `ProxyEndpoint`: the REST call-tool route."""

    _runtime: Runtime
    _admission: Admission
    _telemetry: Telemetry

    async def _client(self, principal: Principal, conn_id: str) -> UpstreamClient:
        raise NotImplementedError

    @staticmethod
    def _authorize(principal: Principal, conn_id: str, envelope: Envelope) -> None:
        raise NotImplementedError

    def _audit(
        self,
        call: Call,
        *,
        response: Response | None = None,
        body: bytes | None = None,
        error: MeshgateError | None = None,
    ) -> None:
        raise NotImplementedError

    async def _rest_call(self, scope: Scope, receive: Receive, send: Send, call: Call, tool: str) -> None:
        """REST: the JSON body is the tool's arguments; answers the tool result JSON."""
        conn_id, headers, telemetry = call.conn_id, call.headers, call.telemetry
        try:
            if scope["method"] != "POST":
                raise InvalidInput("use POST with a JSON object of arguments")
            with telemetry.child("meshgate.authenticate"):
                call.principal, body = await self._admission.admit(scope, receive, headers)
            client = await self._client(call.principal, conn_id)
            arguments = tool_arguments(body)
            call.envelope = Envelope("tools/call", None, {"name": tool, "arguments": arguments})
            telemetry.identify(
                call.principal, conn_id, call.envelope, self._telemetry.label(tool, client.config.tool_names)
            )
            self._authorize(call.principal, conn_id, call.envelope)
            if client.config.oauth:
                client = await self._runtime.oauth_ready(call.principal.organization_id, client)
            with telemetry.child("mcp.upstream tools/call", SpanKind.CLIENT, **{"server.address": client.config.title}):
                extra = {
                    "x-mesh-token": self._runtime.mesh_tokens.token(call.principal, conn_id),
                    "x-request-id": call.request_id,
                }
                telemetry.propagate(extra)
                message = await client.request(
                    "tools/call", {"name": tool, "arguments": arguments}, extra_headers=extra
                )
        except MeshgateError as error:
            telemetry.error = error.code
            if call.envelope.method is not None and isinstance(error, PermissionDenied | UpstreamError):
                self._audit(call, error=error)
            await http_error(error, headers={"x-request-id": call.request_id})(scope, receive, send)
            return
        self._audit(call, body=orjson.dumps({**message, "id": None}))
        if "error" in message:
            error = as_dict(message["error"])
            telemetry.error = "upstream_rpc_error"
            status = 502
            payload: Any = {"error": {"code": "upstream_error", "message": str(error.get("message")), "rpc": error}}
        else:
            status, payload = 200, message.get("result")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", call.request_id.encode())],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(payload), "more_body": False})
