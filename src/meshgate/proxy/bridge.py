"""Answering MCP clients for an upstream that is reached over meshgate's own session (legacy SSE).

meshgate plays the server side of the client's handshake itself (its session ids carry no state,
so any replica accepts them) and forwards every request over its multiplexed upstream session,
giving the answer the caller's id back. Clients of either generation are served: `initialize` for
handshake-era clients, `server/discover` and `resultType` for `2026-07-28` ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.client import ServerRequestHandler
from meshgate.jsonvalues import as_dict
from meshgate.proxy.messages import Envelope

HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
STATELESS_VERSION = "2026-07-28"
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"
ENVELOPE_PREFIX = "io.modelcontextprotocol/"
CACHEABLE = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read", "server/discover"}
)


def is_stateless(protocol_version: str | None) -> bool:
    return protocol_version is not None and protocol_version >= "2026"


async def bridged_answer(  # noqa: PLR0917
    client: UpstreamClient,
    envelope: Envelope,
    protocol_version: str | None,
    extra_headers: Mapping[str, str],
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    on_server_request: ServerRequestHandler | None = None,
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The JSON-RPC answer to one client message (None for a notification) and headers to add."""
    method = envelope.method or ""
    if envelope.id is None:
        return None, {}  # notifications end here: meshgate initialized the upstream session itself
    if method == "initialize":
        upstream = await client.upstream_info()
        asked = str(as_dict(envelope.params).get("protocolVersion", ""))
        version = asked if asked in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[0]
        result = {
            "protocolVersion": version,
            "capabilities": upstream.get("capabilities", {}),
            "serverInfo": upstream.get("serverInfo", {"name": client.config.title, "version": "unknown"}),
        }
        if upstream.get("instructions"):
            result["instructions"] = upstream["instructions"]
        session = "mg-" + secrets.token_urlsafe(16)
        return _reply(envelope.id, result), {"mcp-session-id": session, "mcp-protocol-version": version}
    if method == "server/discover":
        upstream = await client.upstream_info()
        result = {
            "supportedVersions": [STATELESS_VERSION, *HANDSHAKE_VERSIONS],
            "capabilities": upstream.get("capabilities", {}),
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {SERVER_INFO_META: upstream.get("serverInfo", {"name": client.config.title, "version": ""})},
        }
        if upstream.get("instructions"):
            result["instructions"] = upstream["instructions"]
        return _reply(envelope.id, result), {}
    params = handshake_params(envelope.params) if envelope.params is not None else None
    response = await client.request(
        method,
        params,
        extra_headers=extra_headers,
        on_progress=on_progress,
        on_server_request=on_server_request,
        answer_input_required=not is_stateless(protocol_version),
    )
    answer = {**response, "id": envelope.id}
    if is_stateless(protocol_version) and isinstance(answer.get("result"), dict):
        defaults: dict[str, Any] = {"resultType": "complete"}
        if method in CACHEABLE:
            defaults |= {"ttlMs": 0, "cacheScope": "private"}  # required on the 2026-07-28 wire; "do not cache"
        answer["result"] = {**defaults, **answer["result"]}
    return answer, {}


def handshake_params(params: Any) -> dict[str, Any]:
    """Params without the 2026-07-28 envelope (`io.modelcontextprotocol/*` in `_meta`), which a
    handshake-era session refuses; progress tokens and other `_meta` entries stay."""
    result = dict(as_dict(params))
    meta = as_dict(result.get("_meta"))
    if meta:
        kept = {key: value for key, value in meta.items() if not key.startswith(ENVELOPE_PREFIX)}
        if kept:
            result["_meta"] = kept
        else:
            result.pop("_meta")
    return result


def _reply(message_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": result}
