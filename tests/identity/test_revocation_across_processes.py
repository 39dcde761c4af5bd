"""A change made through one gateway process takes effect on the next request to another (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import add_connection, new_member, new_owner
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, free_port, rpc, start_gateway
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[tuple[Gateway, Gateway]]:
    with fresh_database("postgresql", tmp_path) as url:
        first = start_gateway(url, tmp_path, "first")
        second = Gateway(env=first.env, port=0)
        try:
            second.port = free_port()
            second.start(tmp_path / "second.log")
            yield first, second
        finally:
            assert second.stop() == 0
            assert first.stop() == 0


async def test_key_deleted_through_one_process_is_refused_by_another(two_gateways: tuple[Gateway, Gateway]) -> None:
    first, second = two_gateways
    owner = await new_owner(first)
    async with connect(first.mcp_url, owner.api_key) as client:
        created = await call(client, "API_KEY_CREATE", {"name": "shared"})
    for _ in range(3):  # warm the second process's cache
        assert rpc(second.mcp_url, LIST, key=created["key"]).status_code == 200
    async with connect(first.mcp_url, owner.api_key) as client:
        await call(client, "API_KEY_DELETE", {"keyId": created["id"]})
    assert rpc(second.mcp_url, LIST, key=created["key"]).status_code == 401


async def test_role_change_through_one_process_narrows_the_other(two_gateways: tuple[Gateway, Gateway]) -> None:
    first, second = two_gateways
    owner = await new_owner(first)
    async with connect(first.mcp_url, owner.api_key) as client:
        role = await call(
            client, "ROLE_CREATE", {"name": "ops", "permissions": {"self": ["ROLE_LIST", "API_KEY_LIST"]}}
        )
    member = await new_member(first, owner.organization_id, "ops")
    key = member.api_key
    listed = rpc(second.mcp_url, LIST, key=key).json()["result"]["tools"]
    assert {t["name"] for t in listed} == {"ROLE_LIST", "API_KEY_LIST"}
    async with connect(first.mcp_url, owner.api_key) as client:
        await call(client, "ROLE_UPDATE", {"roleId": role["id"], "permissions": {"self": ["ROLE_LIST"]}})
    listed = rpc(second.mcp_url, LIST, key=key).json()["result"]["tools"]
    assert {t["name"] for t in listed} == {"ROLE_LIST"}
    async with connect(first.mcp_url, owner.api_key) as client:
        await call(client, "ORGANIZATION_MEMBER_REMOVE", {"memberId": member.member_id})
    assert rpc(second.mcp_url, LIST, key=key).status_code == 401


async def test_connection_change_through_one_process_reaches_the_other(
    two_gateways: tuple[Gateway, Gateway], upstream: Upstream
) -> None:
    first, second = two_gateways
    owner = await new_owner(first)
    conn = await add_connection(first, owner.api_key, upstream, connection_headers={"X-Version": "one"})
    async with connect(f"{second.url}/mcp/{conn['id']}", owner.api_key) as client:  # cached in the second process
        seen = (await client.call_tool("headers", {})).structured_content
        assert seen is not None and seen["requests"][-1]["x-version"] == "one"
    async with connect(first.mcp_url, owner.api_key) as client:
        await call(
            client,
            "COLLECTION_CONNECTIONS_UPDATE",
            {"id": conn["id"], "data": {"connection_headers": {"X-Version": "two"}}},
        )
    async with connect(f"{second.url}/mcp/{conn['id']}", owner.api_key) as client:
        seen = (await client.call_tool("headers", {})).structured_content
        assert seen is not None and seen["requests"][-1]["x-version"] == "two"
    async with connect(first.mcp_url, owner.api_key) as client:
        await call(client, "COLLECTION_CONNECTIONS_DELETE", {"id": conn["id"]})
    assert rpc(f"{second.url}/mcp/{conn['id']}", LIST, key=owner.api_key).status_code == 404
