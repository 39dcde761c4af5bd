"""Answering MCP clients for an upstream that is reached over meshgate's own session.

meshgate plays the server side of the client's handshake itself (its session ids carry no state, so
any replica accepts them); every other request goes through `CallService.request` and gets the
caller's id back. Clients of either generation are served: `initialize` for handshake-era clients,
`server/discover` and `resultType` for stateless-era ones.
"""

from __future__ import annotations

import secrets
from typing import Any

from meshgate.connections.upstream import UpstreamClient
from meshgate.jsonrpc import Envelope, result_message
from meshgate.jsonvalues import as_dict
from meshgate.protocol import SERVER_INFO_META, SUPPORTED_VERSIONS, handshake_version, is_stateless

CACHEABLE = frozenset(
    {"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read", "server/discover"}
)


async def local_answer(
    client: UpstreamClient, envelope: Envelope, caller: str
) -> tuple[dict[str, Any], dict[str, str]] | None:
    """meshgate's own answer to `initialize` or `server/discover` (and headers to add), from what `caller`'s
    upstream session was told; None for anything else."""
    if envelope.method == "initialize":
        upstream = await client.upstream_info(caller)
        version = handshake_version(as_dict(envelope.params).get("protocolVersion"))
        result = {
            "protocolVersion": version,
            "capabilities": upstream.get("capabilities", {}),
            "serverInfo": upstream.get("serverInfo", {"name": client.config.title, "version": "unknown"}),
        }
        if upstream.get("instructions"):
            result["instructions"] = upstream["instructions"]
        session = "mg-" + secrets.token_urlsafe(16)
        return result_message(envelope.id, result), {"mcp-session-id": session, "mcp-protocol-version": version}
    if envelope.method == "server/discover":
        upstream = await client.upstream_info(caller)
        result = {
            "supportedVersions": list(SUPPORTED_VERSIONS),
            "capabilities": upstream.get("capabilities", {}),
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {SERVER_INFO_META: upstream.get("serverInfo", {"name": client.config.title, "version": ""})},
        }
        if upstream.get("instructions"):
            result["instructions"] = upstream["instructions"]
        return result_message(envelope.id, result), {}
    return None


def stamped(message: dict[str, Any], envelope: Envelope, protocol_version: str | None) -> dict[str, Any]:
    """An upstream's answer with the caller's id, and for a stateless-era caller the fields its era requires."""
    answer = {**message, "id": envelope.id}
    if is_stateless(protocol_version) and isinstance(answer.get("result"), dict):
        defaults: dict[str, Any] = {"resultType": "complete"}
        if envelope.method in CACHEABLE:
            defaults |= {"ttlMs": 0, "cacheScope": "private"}  # required on the 2026-07-28 wire; "do not cache"
        answer["result"] = {**defaults, **answer["result"]}
    return answer
