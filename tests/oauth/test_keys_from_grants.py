"""An OAuth grant cannot become a permanent API key: `API_KEY_CREATE` needs a scope that names it, and a key
made that way expires no later than the grant could be renewed to and is deleted when the grant is revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from support.gateway import Gateway, rpc
from support.mcp_client import call, call_error, connect, tool_names
from support.oauth import HandClient, new_person
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio
REFRESH_SECONDS = 30 * 24 * 3600  # the default MESHGATE_OAUTH_REFRESH_TOKEN_SECONDS of the test gateway
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.finding(26)
@pytest.mark.parametrize("scope", [None, "self:*", "*:*"])
async def test_a_token_whose_scope_does_not_name_api_key_create_cannot_create_keys(
    gateway: Gateway, scope: str | None
) -> None:
    person = await new_person(gateway)  # an owner: the role alone would allow it
    client = await HandClient.register(gateway)
    tokens = await client.tokens(person, resource=gateway.mcp_url, scope=scope)
    async with connect(gateway.mcp_url, tokens["access_token"]) as session:
        names = await tool_names(session)
        assert "API_KEY_LIST" in names and "API_KEY_CREATE" not in names  # tools/list says what tools/call does
        assert "API_KEY_CREATE" in await call_error(session, "API_KEY_CREATE", {"name": "escape"})
    async with connect(gateway.mcp_url, person.api_key) as session:  # an API key of the same owner still may
        assert "API_KEY_CREATE" in await tool_names(session)


@pytest.mark.finding(26)
async def test_a_key_created_through_a_grant_expires_with_it_and_dies_when_it_is_revoked(gateway: Gateway) -> None:
    person = await new_person(gateway)
    client = await HandClient.register(gateway)
    tokens = await client.tokens(person, resource=gateway.mcp_url, scope="self:API_KEY_CREATE self:ORGANIZATION_LIST")
    before = datetime.now(UTC)
    async with connect(gateway.mcp_url, tokens["access_token"]) as session:
        unbounded = await call(session, "API_KEY_CREATE", {"name": "no expiry asked"})
        asked_long = await call(session, "API_KEY_CREATE", {"name": "ten years", "expiresIn": 10 * 365 * 24 * 3600})
        asked_short = await call(session, "API_KEY_CREATE", {"name": "an hour", "expiresIn": 3600})
    horizon = before + timedelta(seconds=REFRESH_SECONDS)
    for key in (unbounded, asked_long):
        assert key["expiresAt"] is not None
        assert horizon - timedelta(minutes=5) <= _moment(key["expiresAt"]) <= horizon + timedelta(minutes=5)
    assert _moment(asked_short["expiresAt"]) <= before + timedelta(seconds=3600 + 300)  # a shorter ask is kept
    key = remember_secret(unbounded["key"])
    async with connect(gateway.mcp_url, key) as session:
        await call(session, "ORGANIZATION_LIST", {})
        grandchild = await call(session, "API_KEY_CREATE", {"name": "made by the key"})  # the token's map allows it
    assert grandchild["expiresAt"] == unbounded["expiresAt"]  # a key of the grant makes keys of the grant

    assert (await client.revoke(tokens["refresh_token"])).status_code == 200
    async with connect(gateway.mcp_url, person.api_key) as session:
        listed = await call(session, "API_KEY_LIST", {})
    remaining = {item["name"] for item in listed["items"]}
    assert remaining.isdisjoint({"no expiry asked", "ten years", "an hour", "made by the key"})
    refused = rpc(gateway.mcp_url, INITIALIZE, key=key)
    assert refused.status_code == 401 and "not valid" in refused.text
