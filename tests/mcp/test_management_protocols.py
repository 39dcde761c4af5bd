"""The management server answers MCP clients of every protocol generation."""

from __future__ import annotations

import json

import pytest

from conftest import new_owner
from meshgate.app import build_registry
from support.gateway import Gateway, rpc
from support.mcp_client import MODES, call, connect, connect_pinned, tool_names

pytestmark = pytest.mark.anyio
ALL_TOOLS = {spec.name for spec in build_registry()}


@pytest.mark.parametrize("mode", MODES)
async def test_bootstrap_key_lists_and_calls_management_tools(gateway: Gateway, mode: str) -> None:
    owner = await new_owner(gateway, org="Generations")
    async with connect(gateway.mcp_url, owner.api_key, mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        assert await tool_names(client) == ALL_TOOLS
        listed = await call(client, "ORGANIZATION_LIST")
    assert [org["id"] for org in listed["items"]] == [owner.organization_id]
    assert listed["items"][0]["name"] == "Generations"


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18"])
async def test_older_handshake_versions_are_served(gateway: Gateway, version: str) -> None:
    owner = await new_owner(gateway)
    async with connect_pinned(gateway.mcp_url, owner.api_key, version) as session:
        assert session.protocol_version == version
        assert await tool_names(session) == ALL_TOOLS
        got = await call(session, "ORGANIZATION_GET")
    assert got["id"] == owner.organization_id


async def test_every_tool_input_field_has_a_description(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        tools = (await client.list_tools()).tools
    for tool in tools:
        assert tool.description, tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"


async def test_tool_result_is_json_text_and_structured_content(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        result = await client.call_tool("ORGANIZATION_GET", {})

    assert result.is_error is False
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]


async def test_2026_request_carries_method_headers_and_no_session(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "ORGANIZATION_GET",
            "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "ORGANIZATION_GET"}
    response = rpc(gateway.mcp_url, body, key=owner.api_key, headers=headers)
    assert response.status_code == 200, response.text
    assert "mcp-session-id" not in response.headers
    result = response.json()["result"]
    assert result["structuredContent"]["id"] == owner.organization_id
    assert result["resultType"] == "complete"


async def test_handshake_era_hands_out_no_session_so_any_replica_answers(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    response = rpc(gateway.mcp_url, init, key=owner.api_key)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["protocolVersion"] == "2025-11-25"
    assert "mcp-session-id" not in response.headers
