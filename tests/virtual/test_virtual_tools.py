"""The COLLECTION_VIRTUAL_MCP_* tools on every backend: create, list, get, update, delete, clear refusals,
connections in use that cannot be deleted, and nothing across organizations."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import add_connection, new_owner
from support.gateway import Gateway, Upstream
from support.mcp_client import call, call_error, connect

pytestmark = pytest.mark.anyio


async def _tool(gateway: Gateway, key: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with connect(gateway.mcp_url, key) as client:
        return await call(client, name, arguments)


async def _error(gateway: Gateway, key: str, name: str, arguments: dict[str, Any]) -> str:
    async with connect(gateway.mcp_url, key) as client:
        return await call_error(client, name, arguments)


async def test_virtual_mcp_lifecycle(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    first = await add_connection(gateway, owner.api_key, upstream, title="First")
    second = await add_connection(gateway, owner.api_key, upstream, title="Second")
    created = await _tool(
        gateway,
        owner.api_key,
        "COLLECTION_VIRTUAL_MCP_CREATE",
        {
            "data": {
                "title": "Everything",
                "instructions": "Use these tools carefully.",
                "connections": [
                    {"connection_id": first["id"], "selected_tools": ["echo", "add"]},
                    {
                        "connection_id": second["id"],
                        "tool_overrides": {"echo": {"name": "say", "description": "Say something"}},
                    },
                ],
            }
        },
    )
    assert created["title"] == "Everything"
    assert created["url"].endswith(f"/mcp/virtual/{created['id']}")
    assert [c["connection_id"] for c in created["connections"]] == [first["id"], second["id"]]
    assert created["connections"][0]["selected_tools"] == ["add", "echo"]
    assert created["connections"][1]["tool_overrides"] == {"echo": {"name": "say", "description": "Say something"}}
    assert created["connections"][1]["connection_title"] == "Second"

    listed = await _tool(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_LIST", {})
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert listed["totalCount"] == 1

    updated = await _tool(
        gateway,
        owner.api_key,
        "COLLECTION_VIRTUAL_MCP_UPDATE",
        {"id": created["id"], "data": {"description": "all of it", "connections": [{"connection_id": second["id"]}]}},
    )
    assert updated["description"] == "all of it"
    assert updated["title"] == "Everything"
    assert [c["connection_id"] for c in updated["connections"]] == [second["id"]]
    fetched = await _tool(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_GET", {"id": created["id"]})
    assert fetched == updated

    deleted = await _tool(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_DELETE", {"id": created["id"]})
    assert deleted["deleted"] is True
    message = await _error(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_GET", {"id": created["id"]})
    assert message == f"not_found: virtual MCP {created['id']} not found"


async def test_a_connection_in_use_cannot_be_deleted_and_the_refusal_names_the_users(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    connection = await add_connection(gateway, owner.api_key, upstream, title="Shared")
    data = {"title": "Front door", "connections": [{"connection_id": connection["id"]}]}
    virtual = await _tool(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data})
    message = await _error(gateway, owner.api_key, "COLLECTION_CONNECTIONS_DELETE", {"id": connection["id"]})
    assert message.startswith("conflict: connection Shared is used by virtual MCPs Front door")
    assert virtual["id"] in message
    await _tool(
        gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_UPDATE", {"id": virtual["id"], "data": {"connections": []}}
    )
    deleted = await _tool(gateway, owner.api_key, "COLLECTION_CONNECTIONS_DELETE", {"id": connection["id"]})
    assert deleted["deleted"] is True


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "invalid_input: data.title is required"),
        ({"title": "x", "connections": [{"connection_id": "nope"}]}, "not_found: connection nope not found"),
        ({"title": "x", "colour": "red"}, "unknown field 'data.colour'"),
        (
            {"title": "x", "connections": [{"connection_id": "a", "tool_overrides": {"t": {"name": "has space"}}}]},
            "data.connections.0.tool_overrides.t.name",
        ),
    ],
)
async def test_bad_definitions_are_refused_with_a_reason(gateway: Gateway, data: dict[str, Any], expected: str) -> None:
    owner = await new_owner(gateway)
    message = await _error(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data})
    assert expected in message


async def test_the_same_connection_twice_or_two_tools_renamed_alike_are_refused(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    connection = await add_connection(gateway, owner.api_key, upstream)
    twice = {"title": "x", "connections": [{"connection_id": connection["id"]}, {"connection_id": connection["id"]}]}
    message = await _error(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": twice})
    assert f"connection {connection['id']} is listed twice" in message
    renames = {"echo": {"name": "same"}, "add": {"name": "same"}}
    clash = {"title": "x", "connections": [{"connection_id": connection["id"], "tool_overrides": renames}]}
    message = await _error(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": clash})
    assert "two tools are renamed to 'same'" in message


async def test_other_organizations_see_neither_virtual_mcps_nor_their_connections(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    stranger = await new_owner(gateway, "Other")
    connection = await add_connection(gateway, owner.api_key, upstream)
    data = {"title": "Mine", "connections": [{"connection_id": connection["id"]}]}
    virtual = await _tool(gateway, owner.api_key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data})
    assert (await _tool(gateway, stranger.api_key, "COLLECTION_VIRTUAL_MCP_LIST", {}))["items"] == []
    for name in ("COLLECTION_VIRTUAL_MCP_GET", "COLLECTION_VIRTUAL_MCP_DELETE"):
        message = await _error(gateway, stranger.api_key, name, {"id": virtual["id"]})
        assert message == f"not_found: virtual MCP {virtual['id']} not found"
    borrowed = {"title": "Theirs", "connections": [{"connection_id": connection["id"]}]}
    message = await _error(gateway, stranger.api_key, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": borrowed})
    assert message == f"not_found: connection {connection['id']} not found"
