"""Per-tool permissions and organization isolation on the proxy path and the REST path."""

from __future__ import annotations

import uuid

import httpx
import pytest

from conftest import add_connection, new_member, new_owner, wait_for_logs
from support.gateway import Gateway, Upstream, rpc
from support.mcp_client import MODES, call, connect

pytestmark = pytest.mark.anyio


async def _member_key(gateway: Gateway, owner_key: str, org_id: str, permissions: dict[str, list[str]]) -> str:
    name = f"r{uuid.uuid4().hex[:8]}"
    async with connect(gateway.mcp_url, owner_key) as client:
        await call(client, "ROLE_CREATE", {"name": name, "permissions": permissions})
    return (await new_member(gateway, org_id, name)).api_key


@pytest.mark.parametrize("mode", MODES)
async def test_tools_list_shows_exactly_what_tools_call_allows(gateway: Gateway, upstream: Upstream, mode: str) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    key = await _member_key(gateway, owner.api_key, owner.organization_id, {conn["id"]: ["echo", "fail"]})
    async with connect(f"{gateway.url}/mcp/{conn['id']}", key, mode) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"echo", "fail"}
        assert (await client.call_tool("echo", {"text": "ok"})).is_error is False
        refused = await client.call_tool("add", {"a": 1, "b": 2})
    assert refused.is_error
    assert f"{conn['id']}:add" in refused.content[0].text  # type: ignore[union-attr]
    (refusal,) = await wait_for_logs(gateway, owner.api_key, 1, toolName="add", connectionId=conn["id"])
    assert refusal["isError"] is True
    assert "permission_denied" in refusal["errorMessage"]


async def test_a_credential_without_any_grant_on_the_connection_is_refused(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    key = await _member_key(gateway, owner.api_key, owner.organization_id, {"self": ["ROLE_LIST"]})
    response = rpc(f"{gateway.url}/mcp/{conn['id']}", {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, key=key)
    assert response.status_code == 403
    assert response.json()["id"] == 3
    assert "no permission on connection" in response.json()["error"]["message"]


async def test_rest_call_tool_obeys_the_same_rules(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    key = await _member_key(gateway, owner.api_key, owner.organization_id, {conn["id"]: ["add"]})
    base = f"{gateway.url}/mcp/{conn['id']}/call-tool"
    headers = {"authorization": f"Bearer {key}", "x-request-id": "rest-req-1"}
    ok = httpx.post(f"{base}/add", json={"a": 4, "b": 5}, headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["structuredContent"] == {"sum": 9.0}
    assert ok.headers["x-request-id"] == "rest-req-1"
    refused = httpx.post(f"{base}/echo", json={"text": "no"}, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert (
        httpx.post(f"{base}/add", content=b"[1]", headers={**headers, "content-type": "application/json"}).status_code
        == 400
    )
    assert httpx.post(f"{base}/add", json={"a": 1}, headers={"authorization": "Bearer nope"}).status_code == 401


async def test_other_organizations_connections_answer_like_missing_ones(gateway: Gateway, upstream: Upstream) -> None:
    a = await new_owner(gateway, org="A")
    b = await new_owner(gateway, org="B")
    conn = await add_connection(gateway, a.api_key, upstream)
    ghost = str(uuid.uuid4())
    list_body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    real = rpc(f"{gateway.url}/mcp/{conn['id']}", list_body, key=b.api_key)
    missing = rpc(f"{gateway.url}/mcp/{ghost}", list_body, key=b.api_key)
    assert real.status_code == missing.status_code == 404
    assert real.json()["error"]["message"].replace(conn["id"], "<id>") == missing.json()["error"]["message"].replace(
        ghost, "<id>"
    )
    rest = httpx.post(
        f"{gateway.url}/mcp/{conn['id']}/call-tool/echo", json={}, headers={"authorization": f"Bearer {b.api_key}"}
    )
    assert rest.status_code == 404

    async with connect(gateway.mcp_url, a.api_key) as client:
        await call(client, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
    probes = [
        ("COLLECTION_CONNECTIONS_GET", {"id": conn["id"]}),
        ("COLLECTION_CONNECTIONS_UPDATE", {"id": conn["id"], "data": {"title": "stolen"}}),
        ("COLLECTION_CONNECTIONS_DELETE", {"id": conn["id"]}),
        ("CONNECTION_TEST", {"id": conn["id"]}),
        ("CONNECTION_CONFIGURE", {"id": conn["id"], "state": {"x": 1}}),
    ]
    async with connect(gateway.mcp_url, b.api_key) as client:
        for tool, arguments in probes:
            against_a = await client.call_tool(tool, arguments)
            against_ghost = await client.call_tool(tool, {**arguments, "id": ghost})
            assert against_a.is_error and against_ghost.is_error
            text_a = against_a.content[0].text.replace(conn["id"], "<id>")  # type: ignore[union-attr]
            assert text_a == against_ghost.content[0].text.replace(ghost, "<id>")  # type: ignore[union-attr]
        listed = await call(client, "COLLECTION_CONNECTIONS_LIST", {})
        assert conn["id"] not in str(listed)
        logs = await call(client, "MONITORING_LOGS_LIST", {"connectionId": conn["id"]})
        assert logs["items"] == []
    async with connect(gateway.mcp_url, a.api_key) as client:
        unchanged = await call(client, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
    assert unchanged["title"] == conn["title"]
    assert unchanged["configuration_state"] == {"set": False}


async def test_deleted_connection_is_not_found_on_the_next_call(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, upstream)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    assert rpc(f"{gateway.url}/mcp/{conn['id']}", body, key=owner.api_key).status_code == 200
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "COLLECTION_CONNECTIONS_DELETE", {"id": conn["id"]})
    assert rpc(f"{gateway.url}/mcp/{conn['id']}", body, key=owner.api_key).status_code == 404
