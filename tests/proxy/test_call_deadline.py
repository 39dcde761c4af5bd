"""A call ends at its connection's call timeout however chatty the upstream is (security review finding 11):
an upstream streaming a notification every millisecond and never answering, behind a 3 s call timeout, on
the proxy, REST and virtual MCP paths. Bounds are "never stalls" checks; each test asserts the timeout error."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from conftest import new_owner
from support.chatty_upstream import start_chatty
from support.gateway import Gateway, Owner, Upstream
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio
CALL_TIMEOUT_MS = 3000
NEVER_STALLS_S = 10  # a generous outer bound; the asserted bound is below
ENDS_WITHIN_S = 4.5


@pytest.fixture(scope="module")
def chatty() -> Iterator[Upstream]:
    upstream = start_chatty()
    yield upstream
    upstream.kill()


async def _chatty_connection(gateway: Gateway, owner: Owner, chatty: Upstream) -> str:
    data = {
        "title": "Chatty",
        "connection_type": "HTTP",
        "connection_url": chatty.url,
        "connection_token": chatty.token,
        "call_timeout_ms": CALL_TIMEOUT_MS,
    }
    async with connect(gateway.mcp_url, owner.api_key) as client:
        made = await call(client, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
    assert made["status"] == "active", made
    return str(made["id"])


@pytest.mark.finding(11)
async def test_a_proxied_call_to_a_chatty_upstream_ends_with_a_timeout_at_its_call_timeout(
    gateway: Gateway, chatty: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn_id = await _chatty_connection(gateway, owner, chatty)
    async with connect(f"{gateway.url}/mcp/{conn_id}", owner.api_key) as client:
        started = time.monotonic()
        with anyio.fail_after(NEVER_STALLS_S), pytest.raises(MCPError, match="upstream answer broke off") as ended:
            await client.call_tool("endless", {})
        assert time.monotonic() - started < ENDS_WITHIN_S
    assert ended.value.error.code == -32001  # the proxy's error for an answer cut at the call deadline


@pytest.mark.finding(11)
async def test_a_rest_call_to_a_chatty_upstream_ends_with_a_timeout_at_its_call_timeout(
    gateway: Gateway, chatty: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn_id = await _chatty_connection(gateway, owner, chatty)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=NEVER_STALLS_S) as http:
        response = await http.post(
            f"{gateway.url}/mcp/{conn_id}/call-tool/endless",
            json={},
            headers={"authorization": f"Bearer {owner.api_key}"},
        )
    assert time.monotonic() - started < ENDS_WITHIN_S
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert "did not answer within its call timeout (3 s)" in error["message"]


@pytest.mark.finding(11)
async def test_a_virtual_mcp_call_to_a_chatty_upstream_ends_with_a_timeout_at_its_call_timeout(
    gateway: Gateway, chatty: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn_id = await _chatty_connection(gateway, owner, chatty)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        data = {"title": "Chatty only", "connections": [{"connection_id": conn_id}]}
        virtual_id = (await call(client, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data}))["id"]
    async with connect(f"{gateway.url}/mcp/virtual/{virtual_id}", owner.api_key) as client:
        assert "chatty_endless" in {tool.name for tool in (await client.list_tools()).tools}
        started = time.monotonic()
        with anyio.fail_after(NEVER_STALLS_S):
            result = await client.call_tool("chatty_endless", {})
        assert time.monotonic() - started < ENDS_WITHIN_S
    assert result.is_error
    assert "did not answer within its call timeout (3 s)" in result.content[0].text  # type: ignore[union-attr]
