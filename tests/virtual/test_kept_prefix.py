"""A tool name that already starts with its connection's slug keeps it once, through a real gateway, the real
upstream and the official SDK on every backend: the names listed, the calls routed by them to the right
upstream tool, and the clashes the rule creates handled as any other (hashes; a rename wins)."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from conftest import add_connection, new_owner
from support.gateway import Gateway, Upstream
from support.mcp_client import MODES, call, connect

pytestmark = pytest.mark.anyio


async def _virtual(gateway: Gateway, key: str, connections: list[dict[str, Any]]) -> str:
    async with connect(gateway.mcp_url, key) as client:
        created = await call(
            client, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": {"title": "Kept", "connections": connections}}
        )
    return f"{gateway.url}/mcp/virtual/{created['id']}"


def _by_description(tools: list[types.Tool], description: str) -> str:
    return next(tool.name for tool in tools if tool.description == description)


@pytest.mark.parametrize("mode", MODES)
async def test_names_that_carry_the_slug_keep_it_once_and_route_to_their_own_tool(
    gateway: Gateway, upstream: Upstream, mode: str
) -> None:
    owner = await new_owner(gateway)
    secret = await add_connection(gateway, owner.api_key, upstream, title="Secret")
    headers = await add_connection(gateway, owner.api_key, upstream, title="Headers")
    url = await _virtual(
        gateway,
        owner.api_key,
        [
            {"connection_id": secret["id"], "selected_tools": ["echo", "secret_echo", "add"]},
            {"connection_id": headers["id"], "selected_tools": ["headers", "headers_text", "echo"]},
        ],
    )
    async with connect(url, owner.api_key, mode) as client:
        tools = list((await client.list_tools()).tools)
        names = [tool.name for tool in tools]
        # `headers` is the slug itself and `headers_text` carries it: both are kept as they are.
        assert {"headers", "headers_text", "headers_echo", "secret_add"} <= set(names)
        assert not any(name.startswith(("headers_headers", "secret_secret")) for name in names)
        # Secret's `echo` (→ secret_echo) meets its own `secret_echo`: neither takes the plain name.
        echo = next(t.name for t in tools if t.description == "Echo text back" and t.name.startswith("secret_"))
        secret_echo = _by_description(tools, "Echo arguments (for redaction tests)")
        assert len(names) == len(set(names)) == 6
        assert "secret_echo" not in names
        assert echo.startswith("secret_echo_") and secret_echo.startswith("secret_echo_") and echo != secret_echo
        assert (await call(client, echo, {"text": "to echo"}))["text"] == "to echo"
        assert (await call(client, secret_echo, {"x": 1}))["echo"] == {"x": 1}
        assert (await call(client, "headers_echo", {"text": "to the other echo"}))["text"] == "to the other echo"
        answer = await client.call_tool("headers_text", {})
        assert not answer.is_error and ": " in answer.content[0].text  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="unknown tool 'headers_headers_text'"):
            await client.call_tool("headers_headers_text", {})


async def test_a_rename_to_a_kept_name_wins_and_the_upstream_tool_of_that_name_steps_aside(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    headers = await add_connection(gateway, owner.api_key, upstream, title="Headers")
    url = await _virtual(
        gateway,
        owner.api_key,
        [
            {
                "connection_id": headers["id"],
                "selected_tools": ["echo", "headers_text"],
                "tool_overrides": {"echo": {"name": "headers_text"}},
            }
        ],
    )
    async with connect(url, owner.api_key) as client:
        tools = list((await client.list_tools()).tools)
        assert _by_description(tools, "Echo text back") == "headers_text"
        stepped_aside = next(tool.name for tool in tools if tool.name != "headers_text")
        assert stepped_aside.startswith("headers_text_")
        assert (await call(client, "headers_text", {"text": "renamed"}))["text"] == "renamed"
        answer = await client.call_tool(stepped_aside, {})
        assert not answer.is_error and ": " in answer.content[0].text  # type: ignore[union-attr]
