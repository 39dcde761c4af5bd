"""What a virtual MCP answers to each MCP method, given its merged view and the caller.

Calls that belong to an upstream go through `forward(target, method, params)` (the call service, which
also makes the permission decision); everything else is answered from the view. Answers are JSON-RPC
messages with the caller's id.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from meshgate import __version__
from meshgate.access import Principal
from meshgate.calls.models import Target as CallTarget
from meshgate.calls.service import reachable, visible
from meshgate.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, Envelope, rpc_error
from meshgate.jsonvalues import as_dict, as_list
from meshgate.protocol import SERVER_INFO_META, SUPPORTED_VERSIONS, handshake_version, is_stateless
from meshgate.sandbox import codemode
from meshgate.sandbox.service import SandboxService
from meshgate.virtual.models import VirtualMcp
from meshgate.virtual.search import CALL_TOOL, DESCRIBE_TOOL, MAX_RESULTS, SEARCH_TOOL, SEARCH_TOOLS, rank
from meshgate.virtual.view import Route, VirtualView

Forward = Callable[[CallTarget, str, dict[str, Any]], Awaitable[dict[str, Any]]]

_CAPABILITIES = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"listChanged": True},
    "completions": {},
    "logging": {},
}
_LISTS = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})


@dataclass(frozen=True, slots=True)
class Target:
    """Where a routed request went: for audit, metrics and the failure message."""

    connection_id: str
    name: str


class RpcError(Exception):
    """A JSON-RPC error answer (unknown method or name, bad params)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Asked:
    """One client request to a virtual MCP."""

    definition: VirtualMcp
    view: VirtualView
    principal: Principal
    envelope: Envelope
    protocol_version: str | None
    search_mode: bool
    target: Target | None = None
    sandbox: SandboxService | None = None  # code mode: set when the client asked for `?mode=code`


def tool_allowed(principal: Principal, virtual_id: str, exposed: str, route: Route) -> bool:
    """A tool of a virtual MCP may be called with a grant on the virtual MCP or on the connection's tool
    (the call service's own rule, so that tools/list shows exactly what tools/call allows)."""
    return visible(principal, CallTarget(route.connection_id, virtual_id, exposed), route.name)


def reaches(principal: Principal, virtual_id: str, connection_id: str) -> bool:
    """Resources and prompts: any grant on the virtual MCP or on the connection (the call service's rule)."""
    return reachable(principal, CallTarget(connection_id, virtual_id))


def visible_tools(asked: Asked) -> list[dict[str, Any]]:
    principal, view, virtual_id = asked.principal, asked.view, asked.definition.id
    if principal.allows(virtual_id, "*"):
        return list(view.tools)
    return [
        tool for tool in view.tools if tool_allowed(principal, virtual_id, tool["name"], view.tool_routes[tool["name"]])
    ]


async def answer(asked: Asked, forward: Forward) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON-RPC answer to one request and headers to add to the HTTP response."""
    envelope = asked.envelope
    method = envelope.method or ""
    headers: dict[str, str] = {}
    try:
        if method == "initialize":
            result, headers = _initialize(asked)
        elif method == "server/discover":
            result = _discover(asked)
        elif method in ("ping", "logging/setLevel"):
            result = {}
        elif method in _LISTS:
            result = _list(asked, method)
        elif method == "tools/call":
            result = await _call_tool(asked, forward)
        else:
            result = await _routed(asked, forward, method)
    except RpcError as error:
        return rpc_error(envelope.id, error.code, error.message), {}
    if is_stateless(asked.protocol_version) and "error" not in result:
        defaults: dict[str, Any] = {"resultType": "complete"}
        if method in _LISTS or method in ("server/discover", "resources/read"):
            defaults |= {"ttlMs": 0, "cacheScope": "private"}
        result = {**defaults, **result}
    if "error" in result:  # an upstream's JSON-RPC error, passed on
        return {"jsonrpc": "2.0", "id": envelope.id, "error": result["error"]}, headers
    return {"jsonrpc": "2.0", "id": envelope.id, "result": result}, headers


def _server_info(definition: VirtualMcp) -> dict[str, Any]:
    return {"name": definition.title, "version": __version__}


def _initialize(asked: Asked) -> tuple[dict[str, Any], dict[str, str]]:
    version = handshake_version(as_dict(asked.envelope.params).get("protocolVersion"))
    result: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": _CAPABILITIES,
        "serverInfo": _server_info(asked.definition),
    }
    if asked.view.instructions:
        result["instructions"] = asked.view.instructions
    # The session id carries no state: any meshgate process serves the next request.
    return result, {"mcp-session-id": "mg-" + secrets.token_urlsafe(16), "mcp-protocol-version": version}


def _discover(asked: Asked) -> dict[str, Any]:
    result: dict[str, Any] = {
        "supportedVersions": list(SUPPORTED_VERSIONS),
        "capabilities": _CAPABILITIES,
        "_meta": {SERVER_INFO_META: _server_info(asked.definition)},
    }
    if asked.view.instructions:
        result["instructions"] = asked.view.instructions
    return result


def _list(asked: Asked, method: str) -> dict[str, Any]:
    view, principal, virtual_id = asked.view, asked.principal, asked.definition.id
    if method == "tools/list":
        if asked.sandbox is not None:
            return {"tools": _code_tools()}
        return {"tools": list(SEARCH_TOOLS) if asked.search_mode else visible_tools(asked)}
    if method == "prompts/list":
        prompts = [
            p for p in view.prompts if reaches(principal, virtual_id, view.prompt_routes[p["name"]].connection_id)
        ]
        return {"prompts": prompts}
    if method == "resources/list":
        resources = [r for r in view.resources if reaches(principal, virtual_id, view.resource_owners[str(r["uri"])])]
        return {"resources": resources}
    templates = [
        template
        for template, (_pattern, owner) in zip(view.templates, view.template_owners, strict=True)
        if reaches(principal, virtual_id, owner)
    ]
    return {"resourceTemplates": templates}


async def _call_tool(asked: Asked, forward: Forward) -> dict[str, Any]:
    params = as_dict(asked.envelope.params)
    name = params.get("name")
    if not isinstance(name, str):
        raise RpcError(INVALID_PARAMS, "tools/call needs params.name")
    arguments = as_dict(params.get("arguments"))
    if asked.sandbox is not None:
        return await _code_mode(asked, asked.sandbox, forward, name, arguments)
    if asked.search_mode:
        if name == SEARCH_TOOL:
            return _search(asked, arguments)
        if name == DESCRIBE_TOOL:
            return _describe(asked, arguments)
        if name != CALL_TOOL:
            raise RpcError(
                INVALID_PARAMS, f"unknown tool {name[:100]!r}: use {SEARCH_TOOL}, {DESCRIBE_TOOL} or {CALL_TOOL}"
            )
        inner = arguments.get("name")
        if not isinstance(inner, str):
            return _tool_error("call_tool needs arguments.name: a tool name from search_tools")
        name, arguments = inner, as_dict(arguments.get("arguments"))
    route = asked.view.tool_routes.get(name)
    if route is None:
        if asked.search_mode:
            return _tool_error(f"unknown tool {name[:100]!r}: find tools with {SEARCH_TOOL}")
        raise RpcError(INVALID_PARAMS, f"unknown tool {name[:100]!r}")
    asked.target = Target(route.connection_id, route.name)
    upstream_params = {**params, "name": route.name, "arguments": arguments}
    call_target = CallTarget(route.connection_id, asked.definition.id, name)
    return _result_of(await forward(call_target, "tools/call", upstream_params))


async def _routed(asked: Asked, forward: Forward, method: str) -> dict[str, Any]:
    if method not in ("prompts/get", "resources/read", "completion/complete"):
        raise RpcError(METHOD_NOT_FOUND, f"method {method[:100]!r} is not served by virtual MCPs")
    params = as_dict(asked.envelope.params)
    view = asked.view
    if method == "resources/read":
        uri = params.get("uri")
        owner = view.resource_owner(uri) if isinstance(uri, str) else None
        if owner is None or not isinstance(uri, str):
            raise RpcError(INVALID_PARAMS, f"unknown resource {str(uri)[:200]!r}")
        asked.target = Target(owner, uri)
        upstream_params = params
    else:
        reference = as_dict(params.get("ref")) if method == "completion/complete" else {"name": params.get("name")}
        name = reference.get("name")
        if method == "completion/complete" and reference.get("type") == "ref/resource":
            uri = reference.get("uri")
            owner = view.resource_owner(uri) if isinstance(uri, str) else None
            if owner is None:
                raise RpcError(INVALID_PARAMS, f"unknown resource template {str(uri)[:200]!r}")
            asked.target = Target(owner, str(uri))
            upstream_params = params
        else:
            route = view.prompt_routes.get(name) if isinstance(name, str) else None
            if route is None:
                raise RpcError(INVALID_PARAMS, f"unknown prompt {str(name)[:100]!r}")
            asked.target = Target(route.connection_id, route.name)
            upstream_params = (
                {**params, "ref": {**reference, "name": route.name}}
                if method == "completion/complete"
                else {**params, "name": route.name}
            )
    call_target = CallTarget(asked.target.connection_id, asked.definition.id)
    return _result_of(await forward(call_target, method, upstream_params))


def _result_of(response: dict[str, Any]) -> dict[str, Any]:
    if "error" in response:
        return {"error": response["error"]}
    return as_dict(response.get("result"))


def _tool_error(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": True}


def _search(asked: Asked, arguments: dict[str, Any]) -> dict[str, Any]:
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return _tool_error("search_tools needs arguments.query: words describing the task")
    limit = arguments.get("limit", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_RESULTS:
        return _tool_error(f"search_tools: limit must be an integer from 1 to {MAX_RESULTS}")
    tools = visible_tools(asked)
    titles = [asked.view.titles[asked.view.tool_routes[tool["name"]].connection_id] for tool in tools]
    found = rank(query, tools, titles, limit)
    return _json_result({"tools": found, "totalTools": len(tools)})


def _code_tools() -> list[dict[str, Any]]:
    search, describe = SEARCH_TOOLS[0], {**SEARCH_TOOLS[1], "description": codemode.DESCRIBE_DESCRIPTION}
    return [search, describe, codemode.RUN_CODE_TOOL]


async def _code_mode(
    asked: Asked, sandbox: SandboxService, forward: Forward, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    if name == SEARCH_TOOL:
        return _search(asked, arguments)
    if name == DESCRIBE_TOOL:
        return _describe(asked, arguments, typescript=True)
    if name != codemode.RUN_CODE:
        message = f"unknown tool {name[:100]!r}: use {SEARCH_TOOL}, {DESCRIBE_TOOL} or {codemode.RUN_CODE}"
        raise RpcError(INVALID_PARAMS, message)
    code = arguments.get("code")
    if not isinstance(code, str) or not code.strip():
        return _tool_error("run_code needs arguments.code: JavaScript, the body of an async function")

    async def call(exposed: str, inner: dict[str, Any]) -> dict[str, Any]:
        # Exactly what a tools/call of `exposed` from outside does (decision, refusal, audit), as this caller.
        route = asked.view.tool_routes.get(exposed)
        if route is None:
            return {"error": f"unknown tool {exposed[:100]!r}: find tools with {SEARCH_TOOL}", "code": "not_found"}
        call_target = CallTarget(route.connection_id, asked.definition.id, exposed)
        upstream = {"name": route.name, "arguments": inner}
        result = _result_of(await forward(call_target, "tools/call", upstream))
        if "error" in result:
            error = as_dict(result["error"])
            return {
                "error": f"the upstream answered {exposed} with an error: {error.get('message')}",
                "code": "upstream_rpc_error",
            }
        return codemode.tool_value(result)

    names = [tool["name"] for tool in visible_tools(asked)]
    return codemode.run_result(await sandbox.run(code, names, call))


def _describe(asked: Asked, arguments: dict[str, Any], *, typescript: bool = False) -> dict[str, Any]:
    names = as_list(arguments.get("names"))
    if not names or len(names) > MAX_RESULTS or not all(isinstance(name, str) for name in names):
        return _tool_error(f"describe_tools needs arguments.names: 1 to {MAX_RESULTS} tool names from search_tools")
    visible = {tool["name"]: tool for tool in visible_tools(asked)}
    found = [visible[name] for name in names if name in visible]
    if typescript:
        found = [codemode.described(tool) for tool in found]
    unknown = [name for name in names if name not in visible]
    return _json_result({"tools": found, "unknown": unknown})


def _json_result(payload: dict[str, Any]) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": orjson.dumps(payload).decode()}], "structuredContent": payload}
