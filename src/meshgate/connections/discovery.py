"""Contacting an upstream to learn its server info, instructions and tools.

Which session asks, and what it declares: discovery when a connection is saved (or authorized) uses a
client of its own that declares no capabilities, since no caller could answer a request on it; so a
server that gates tools on client capabilities records only its other tools (callers see all of them in
`tools/list` through meshgate). CONNECTION_TEST pings on the shared session callers use, which declares
what they can answer: the test is of that session, a ping carries no caller, and whatever the upstream
asks while only the ping is in flight is refused at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from meshgate.connections.addresses import AddressPolicy
from meshgate.connections.models import Discovery, UpstreamConfig, split_tools
from meshgate.connections.upstream.client import UpstreamClient
from meshgate.connections.upstream.stdio import StdioSupervisor
from meshgate.errors import UpstreamInvalidResponse
from meshgate.jsonvalues import as_dict, as_list

MAX_TOOL_PAGES = 50

log = logging.getLogger(__name__)


async def discover(client: UpstreamClient) -> Discovery:
    """Initialize (or reuse meshgate's session) and list every tool, following pagination."""
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        response = await client.request("tools/list", {"cursor": cursor} if cursor else None)
        if "error" in response:
            raise UpstreamInvalidResponse(f"tools/list failed: {response['error'].get('message', '')}")
        result = as_dict(response.get("result"))
        tools.extend(as_dict(t) for t in as_list(result.get("tools")) if isinstance(t, dict))
        next_cursor = result.get("nextCursor")
        cursor = next_cursor if isinstance(next_cursor, str) else None
        if not cursor:
            break
    init = client.initialize_result or {}
    _, hidden = split_tools(tools)
    if hidden:
        log.warning(
            "connection %s: %d upstream tool(s) hidden, their names are not printable ASCII: %s",
            client.config.title[:80],
            len(hidden),
            ", ".join(hidden[:20]),
        )
    return Discovery(
        server_info=init.get("serverInfo"),
        instructions=init.get("instructions"),
        tools=tools,
        protocol_version=init.get("protocolVersion"),
    )


async def discover_once(
    config: UpstreamConfig, addresses: AddressPolicy | None, stdio: StdioSupervisor | None
) -> Discovery:
    """`discover` with a throw-away client that declares no capabilities (it closes afterwards)."""
    client = UpstreamClient(config, addresses, stdio, capabilities={})
    try:
        return await discover(client)
    finally:
        await client.close()


async def ping(client: UpstreamClient) -> float:
    """Round-trip time of an MCP ping in milliseconds (raises on failure)."""
    started = time.perf_counter()
    response = await client.request("ping")
    if "error" in response:
        raise UpstreamInvalidResponse(f"ping failed: {response['error'].get('message', '')}")
    return round((time.perf_counter() - started) * 1000, 2)
