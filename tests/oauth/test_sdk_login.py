"""The MCP SDK's own OAuth client logs in to meshgate (discovery → registration → PKCE → token) and calls
`/mcp` and `/mcp/{id}`; refresh rotates; tokens are bound to their organization, scope and resource."""

from __future__ import annotations

import httpx
import pytest

from conftest import add_connection
from support.gateway import Gateway, Upstream
from support.mcp_client import call
from support.oauth import Browser, MemoryStorage, connect_oauth, new_person, sdk_provider

pytestmark = pytest.mark.anyio


async def test_sdk_client_registers_logs_in_and_calls_the_management_endpoint(gateway: Gateway) -> None:
    person = await new_person(gateway)
    browser = Browser(person)
    storage = MemoryStorage()
    provider = sdk_provider(gateway.mcp_url, browser, storage=storage)
    async with connect_oauth(gateway.mcp_url, provider) as client:
        orgs = await call(client, "ORGANIZATION_LIST", {})
    assert [org["id"] for org in orgs["items"]] == [person.organization_id]
    assert storage.client_info is not None and storage.client_info.client_id.startswith("mgc_")  # DCR happened
    assert storage.tokens is not None and storage.tokens.refresh_token
    assert len(browser.pages) == 1 and "meshgate tests" in browser.pages[0]  # consent named the client


async def test_a_token_for_one_connection_calls_its_tools_in_both_generations(
    gateway: Gateway, upstream: Upstream
) -> None:
    person = await new_person(gateway)
    conn = await add_connection(gateway, person.api_key, upstream)
    url = f"{gateway.url}/mcp/{conn['id']}"
    for mode in ("legacy", "2026-07-28"):
        provider = sdk_provider(url, Browser(person))
        async with connect_oauth(url, provider, mode) as client:
            result = await client.call_tool("echo", {"text": f"hi {mode}"})
        assert not result.is_error
        assert f"hi {mode}" in str(result.content[0])


async def test_the_person_picks_the_organization_when_they_belong_to_several(gateway: Gateway) -> None:
    person = await new_person(gateway, org="First")
    async with httpx.AsyncClient() as http:
        created = await http.post(
            gateway.mcp_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "ORGANIZATION_CREATE", "arguments": {"name": "Second"}},
            },
            headers={
                "Authorization": f"Bearer {person.api_key}",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25",
            },
        )
    second = created.json()["result"]["structuredContent"]["id"]
    browser = Browser(person, organization_id=second)
    async with connect_oauth(gateway.mcp_url, sdk_provider(gateway.mcp_url, browser)) as client:
        orgs = await call(client, "ORGANIZATION_LIST", {})
    assert [org["id"] for org in orgs["items"]] == [second]
    assert "First" in browser.pages[0] and "Second" in browser.pages[0]
