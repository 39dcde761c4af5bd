"""The management MCP server at `/mcp`, on the SDK's low-level `Server`.

It runs stateless for the handshake era too (no `Mcp-Session-Id` is handed out), so any replica can
answer any request: management tools need no server-to-client channel.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from meshgate import __version__
from meshgate.access import SELF, Principal
from meshgate.errors import MeshgateError, Unauthenticated
from meshgate.mcp.endpoint import PRINCIPAL_SCOPE_KEY
from meshgate.mcp.invoke import refusal, run_tool
from meshgate.mcp.middleware import hide_internal_errors
from meshgate.mcp.registry import ToolRegistry
from meshgate.mcp.results import failure, success
from meshgate.runtime import Runtime

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "meshgate administration: organizations, members, roles and API keys. "
    "Every tool answers JSON; a refused or failed call answers isError with a one-line reason."
)


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    """The caller that the HTTP layer authenticated for this request."""
    request = ctx.request
    principal = None if request is None else request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise Unauthenticated("no authenticated caller for this request")
    return principal


def build_management_server(runtime: Runtime, registry: ToolRegistry) -> Server[Any]:
    """An SDK server whose tools are the registry's, filtered by the caller's permissions."""
    listed = {
        spec.name: types.Tool(
            name=spec.name,
            description=spec.description,
            input_schema=spec.input_schema(),
            annotations=types.ToolAnnotations(read_only_hint=spec.read_only),
        )
        for spec in registry
    }
    schemas: Mapping[str, dict[str, Any]] = {spec.name: spec.input_schema() for spec in registry}

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal = principal_of(ctx)
        return types.ListToolsResult(tools=[tool for name, tool in listed.items() if principal.allows(SELF, name)])

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        principal = principal_of(ctx)
        spec = registry.get(params.name)
        if spec is None:
            return failure(refusal(params.name))
        try:
            payload = await run_tool(runtime, principal, spec, params.arguments)
        except MeshgateError as error:
            return failure(error)
        return success(payload)

    return Server(
        "meshgate",
        version=__version__,
        title="meshgate management",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=schemas.get,
    )


def management_sessions(runtime: Runtime, registry: ToolRegistry) -> StreamableHTTPSessionManager:
    """The stateless session manager that serves `/mcp` (see `meshgate.mcp.endpoint`)."""
    server = build_management_server(runtime, registry)
    server.middleware.append(hide_internal_errors)
    return StreamableHTTPSessionManager(
        app=server, stateless=True, json_response=True, max_request_body_size=runtime.settings.max_body_bytes
    )
