"""Nobody builds a virtual MCP out of tools they may not call themselves (security review, finding 1): a grant
on a virtual MCP hands on what it exposes, so creating or changing one needs the grants it would hand on."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import add_connection, key_for_user, new_owner
from support.gateway import Gateway, Upstream
from support.mcp_client import call, call_error, connect

pytestmark = pytest.mark.anyio
MANAGE = ["COLLECTION_VIRTUAL_MCP_CREATE", "COLLECTION_VIRTUAL_MCP_UPDATE"]


async def _tool(gateway: Gateway, key: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with connect(gateway.mcp_url, key) as client:
        return await call(client, name, arguments)


async def _error(gateway: Gateway, key: str, name: str, arguments: dict[str, Any]) -> str:
    async with connect(gateway.mcp_url, key) as client:
        return await call_error(client, name, arguments)


@pytest.mark.finding(1)
async def test_a_narrow_key_cannot_expose_or_rename_tools_it_may_not_call(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    guarded = (await add_connection(gateway, owner.api_key, upstream, title="Guarded"))["id"]
    key = await key_for_user(gateway, owner.organization_id, owner.user_id, {"self": MANAGE, "*": ["echo"]})
    renamed = {"connection_id": guarded, "selected_tools": ["add"], "tool_overrides": {"add": {"name": "echo"}}}
    refused = await _error(
        gateway, key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": {"title": "x", "connections": [renamed]}}
    )
    assert f"{guarded}:add" in refused and "permission_denied" in refused
    everything = {"connection_id": guarded}
    refused = await _error(
        gateway, key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": {"title": "x", "connections": [everything]}}
    )
    assert f"{guarded}:*" in refused
    allowed = {"connection_id": guarded, "selected_tools": ["echo"]}
    created = await _tool(
        gateway, key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": {"title": "ok", "connections": [allowed]}}
    )
    update = {
        "id": created["id"],
        "data": {"connections": [{"connection_id": guarded, "selected_tools": ["echo", "add"]}]},
    }
    assert f"{guarded}:add" in await _error(gateway, key, "COLLECTION_VIRTUAL_MCP_UPDATE", update)
    # The owner, who holds every tool, builds what it likes; the definition is unchanged by the refusal.
    assert (
        len((await _tool(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_GET", {"id": created["id"]}))["connections"])
        == 1
    )
    await _tool(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_UPDATE", update)
