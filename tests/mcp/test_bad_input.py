"""Bad input gets a precise error and leaves the database unchanged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import new_owner
from support.gateway import Gateway, rpc
from support.mcp_client import call, call_error, connect

pytestmark = pytest.mark.anyio


async def _state(gateway: Gateway, key: str) -> Any:
    async with connect(gateway.mcp_url, key) as client:
        return [
            await call(client, "ORGANIZATION_GET"),
            await call(client, "ROLE_LIST"),
            await call(client, "ORGANIZATION_MEMBER_LIST"),
            [k["id"] for k in (await call(client, "API_KEY_LIST"))["items"]],
        ]


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("ROLE_CREATE", {"name": 5, "permissions": {}}, "name: Input should be a valid string"),
        (
            "ROLE_CREATE",
            {"name": "ok", "permissions": {"self": "ROLE_LIST"}},
            "permissions.self: Input should be a valid list",
        ),
        ("ROLE_CREATE", {"name": "ok", "permissions": {}, "colour": "red"}, "unknown field 'colour'"),
        ("ROLE_CREATE", {"permissions": {}}, "name is required"),
        ("ROLE_CREATE", {"name": "Bad Name", "permissions": {}}, "role name 'Bad Name' is not allowed"),
        ("ROLE_CREATE", {"name": "admin", "permissions": {}}, "'admin' is a built-in role"),
        ("ORGANIZATION_UPDATE", {"id": "x", "name": "n" * 101}, "name: String should have at most 100 characters"),
        ("ORGANIZATION_CREATE", {"name": "   "}, "name must not be empty"),
        ("API_KEY_CREATE", {"name": "k", "expiresIn": "600"}, "expiresIn: Input should be a valid integer"),
        ("ORGANIZATION_MEMBER_ADD", {"email": "not-an-email", "role": "member"}, "is not an email address"),
        ("ORGANIZATION_MEMBER_ADD", {"email": "a@example.com", "role": "wizard"}, "role 'wizard' does not exist"),
        ("ORGANIZATION_MEMBER_ADD", {"role": "member"}, "give exactly one of userId or email"),
        (
            "ORGANIZATION_SETTINGS_UPDATE",
            {"member_permissions": ["ROLE_LIST"]},
            "member_permissions: Input should be a valid dictionary",
        ),
    ],
)
async def test_invalid_tool_arguments_get_a_precise_one_line_error(
    gateway: Gateway, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    owner = await new_owner(gateway)
    before = await _state(gateway, owner.api_key)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        reason = await call_error(client, tool, arguments)
    assert expected in reason
    assert reason.startswith("invalid_input: ")
    assert await _state(gateway, owner.api_key) == before


async def test_malformed_json_is_a_parse_error(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    response = rpc(gateway.mcp_url, b'{"jsonrpc": "2.0", "id": 1, "method": ', key=owner.api_key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


async def test_jsonrpc_batch_is_refused_and_not_executed(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    before = await _state(gateway, owner.api_key)
    batch = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "ROLE_CREATE", "arguments": {"name": "r1", "permissions": {}}},
        },
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    response = rpc(gateway.mcp_url, batch, key=owner.api_key)
    assert response.status_code == 400
    assert "batches are not supported" in response.json()["error"]["message"]
    assert await _state(gateway, owner.api_key) == before


async def test_wrong_content_type_is_415(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    response = rpc(
        gateway.mcp_url,
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        key=owner.api_key,
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]["message"]


async def test_body_over_the_limit_is_413_declared_or_chunked(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    before = await _state(gateway, owner.api_key)
    big_name = "x" * (4 * 1024 * 1024 + 10)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "ORGANIZATION_CREATE", "arguments": {"name": big_name}},
    }
    response = rpc(gateway.mcp_url, body, key=owner.api_key)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]["message"]

    def chunks() -> Any:
        yield b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"x":"'
        for _ in range(5):
            yield b"y" * (1024 * 1024)
        yield b'"}}'

    headers = {
        "authorization": f"Bearer {owner.api_key}",
        "content-type": "application/json",
        "accept": "application/json",
    }
    streamed = httpx.post(gateway.mcp_url, content=chunks(), headers=headers, timeout=30)
    assert streamed.status_code == 413
    assert await _state(gateway, owner.api_key) == before


async def test_unknown_tool_is_an_error_result(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        reason = await call_error(client, "NO_SUCH_TOOL")
    assert "NO_SUCH_TOOL" in reason
