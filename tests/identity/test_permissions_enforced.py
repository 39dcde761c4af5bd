"""Roles, key maps and revocation, as a client sees them through /mcp."""

from __future__ import annotations

import anyio
import httpx
import pytest

from conftest import key_for_user, new_member, new_owner
from support.gateway import Gateway, rpc
from support.mcp_client import call, call_error, connect, tool_names

pytestmark = pytest.mark.anyio

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}

# What the built-in member role holds by default: its organization, the connection list, its own OAuth apps
# and its own browser sessions.
MEMBER_TOOLS = {
    "ORGANIZATION_GET",
    "ORGANIZATION_LIST",
    "COLLECTION_CONNECTIONS_LIST",
    "OAUTH_GRANT_LIST",
    "OAUTH_GRANT_REVOKE",
    "USER_SESSION_LIST",
    "USER_SESSION_REVOKE",
}


async def _add_member(gateway: Gateway, _owner_key: str, org_id: str, role: str) -> tuple[str, str, str]:
    """Add a new user with `role`; returns (member id, user id, that user's API key)."""
    joined = await new_member(gateway, org_id, role)
    return joined.member_id, joined.user_id, joined.api_key


async def test_member_with_narrow_custom_role_neither_sees_nor_calls_other_tools(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "ROLE_CREATE", {"name": "viewer", "permissions": {"self": ["ORGANIZATION_GET"]}})
    _member_id, _user_id, key = await _add_member(gateway, owner.api_key, owner.organization_id, "viewer")

    async with connect(gateway.mcp_url, key) as member:
        assert await tool_names(member) == {"ORGANIZATION_GET"}
        assert (await call(member, "ORGANIZATION_GET"))["id"] == owner.organization_id
        reason = await call_error(member, "ROLE_CREATE", {"name": "x", "permissions": {"*": ["*"]}})
        assert "self:ROLE_CREATE" in reason
        reason = await call_error(member, "API_KEY_LIST")
        assert "self:API_KEY_LIST" in reason


async def test_builtin_member_role_holds_only_the_org_settings_grant(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    _member_id, _user_id, key = await _add_member(gateway, owner.api_key, owner.organization_id, "member")
    async with connect(gateway.mcp_url, key) as member:
        assert await tool_names(member) == MEMBER_TOOLS
        assert "self:ORGANIZATION_MEMBER_ADD" in await call_error(
            member, "ORGANIZATION_MEMBER_ADD", {"email": "x@example.com", "role": "admin"}
        )
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "ORGANIZATION_SETTINGS_UPDATE", {"member_permissions": {"self": ["ROLE_LIST"]}})
    async with connect(gateway.mcp_url, key) as member:
        assert await tool_names(member) == {"ROLE_LIST"}


async def test_role_change_and_member_removal_apply_on_the_next_request(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        role = await call(client, "ROLE_CREATE", {"name": "auditor", "permissions": {"self": ["ROLE_LIST"]}})
    member_id, _user_id, key = await _add_member(gateway, owner.api_key, owner.organization_id, "auditor")

    async with connect(gateway.mcp_url, key) as member:
        assert await tool_names(member) == {"ROLE_LIST"}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "ROLE_UPDATE", {"roleId": role["id"], "permissions": {"self": ["API_KEY_LIST"]}})
    async with connect(gateway.mcp_url, key) as member:
        assert await tool_names(member) == {"API_KEY_LIST"}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "ORGANIZATION_MEMBER_UPDATE_ROLE", {"memberId": member_id, "role": "member"})
    async with connect(gateway.mcp_url, key) as member:
        assert await tool_names(member) == MEMBER_TOOLS
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "ORGANIZATION_MEMBER_REMOVE", {"memberId": member_id})
    assert rpc(gateway.mcp_url, LIST, key=key).status_code == 401


async def test_key_created_with_narrower_map_is_narrowed(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        created = await call(client, "API_KEY_CREATE", {"name": "ci", "permissions": {"self": ["ROLE_LIST"]}})
    assert created["key"].startswith("mg_")
    async with connect(gateway.mcp_url, created["key"]) as narrow:
        assert await tool_names(narrow) == {"ROLE_LIST"}
        assert "self:ORGANIZATION_DELETE" in await call_error(
            narrow, "ORGANIZATION_DELETE", {"id": owner.organization_id}
        )


async def test_narrow_key_cannot_mint_a_broader_key(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        narrow = await call(
            client, "API_KEY_CREATE", {"name": "minter", "permissions": {"self": ["API_KEY_CREATE", "ROLE_LIST"]}}
        )
    async with connect(gateway.mcp_url, narrow["key"]) as minter:
        reason = await call_error(minter, "API_KEY_CREATE", {"name": "wide", "permissions": {"*": ["*"]}})
        assert "permission_denied" in reason
        child = await call(minter, "API_KEY_CREATE", {"name": "child"})
    assert child["permissions"] == {"self": ["API_KEY_CREATE", "ROLE_LIST"]}
    async with connect(gateway.mcp_url, child["key"]) as client:
        assert await tool_names(client) == {"API_KEY_CREATE", "ROLE_LIST"}


async def test_key_map_is_intersected_with_the_owners_current_role(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    member_id, user_id, _ = await _add_member(gateway, owner.api_key, owner.organization_id, "admin")
    wide_key = await key_for_user(gateway, owner.organization_id, user_id, permissions={"*": ["*"]})
    async with connect(gateway.mcp_url, wide_key) as admin:
        assert "ROLE_CREATE" in await tool_names(admin)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "ORGANIZATION_MEMBER_UPDATE_ROLE", {"memberId": member_id, "role": "member"})
    async with connect(gateway.mcp_url, wide_key) as demoted:
        assert await tool_names(demoted) == MEMBER_TOOLS


async def test_deleted_key_is_refused_on_its_next_request(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        created = await call(client, "API_KEY_CREATE", {"name": "temp"})
    assert rpc(gateway.mcp_url, LIST, key=created["key"]).status_code == 200  # now cached
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(client, "API_KEY_DELETE", {"keyId": created["id"]})
    refused = rpc(gateway.mcp_url, LIST, key=created["key"])
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


async def test_member_cannot_give_a_role_above_their_own(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        await call(
            client,
            "ROLE_CREATE",
            {
                "name": "hr",
                "permissions": {"self": ["ORGANIZATION_MEMBER_ADD", "ORGANIZATION_MEMBER_UPDATE_ROLE", "ROLE_CREATE"]},
            },
        )
    member_id, _user, key = await _add_member(gateway, owner.api_key, owner.organization_id, "hr")
    async with connect(gateway.mcp_url, key) as hr:
        for role in ("admin", "owner"):
            reason = await call_error(hr, "ORGANIZATION_MEMBER_UPDATE_ROLE", {"memberId": member_id, "role": role})
            assert "permission_denied" in reason
        assert "permission_denied" in await call_error(hr, "ROLE_CREATE", {"name": "god", "permissions": {"*": ["*"]}})
        assert "permission_denied" in await call_error(
            hr, "ORGANIZATION_MEMBER_ADD", {"email": "boss@example.com", "role": "admin"}
        )


async def test_last_owner_cannot_be_removed_or_demoted(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        members = await call(client, "ORGANIZATION_MEMBER_LIST")
        (me,) = members["items"]
        assert "last owner" in await call_error(client, "ORGANIZATION_MEMBER_REMOVE", {"memberId": me["id"]})
        assert "last owner" in await call_error(
            client, "ORGANIZATION_MEMBER_UPDATE_ROLE", {"memberId": me["id"], "role": "admin"}
        )


async def test_api_key_list_never_shows_values_and_records_last_use(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        keys = await call(client, "API_KEY_LIST")
    (key,) = keys["items"]
    assert "key" not in key
    assert owner.api_key[: len(key["prefix"])] == key["prefix"]
    assert owner.api_key not in str(keys)
    # Last-used times are flushed in the background (every 0.2 s in the test gateway).

    with anyio.fail_after(10):
        while True:
            async with connect(gateway.mcp_url, owner.api_key) as client:
                (key,) = (await call(client, "API_KEY_LIST"))["items"]
            if key["lastUsedAt"] is not None:
                break
            await anyio.sleep(0.1)


async def test_key_expiry_shorter_than_five_minutes_is_refused(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        reason = await call_error(client, "API_KEY_CREATE", {"name": "short", "expiresIn": 60})
        assert "expiresIn" in reason and "300" in reason
        created = await call(client, "API_KEY_CREATE", {"name": "ok", "expiresIn": 300})
    assert created["expiresAt"] is not None


def test_unknown_and_missing_credentials_get_401_with_resource_metadata(gateway: Gateway) -> None:
    for key in (None, "mg_" + "x" * 43):
        response = rpc(gateway.mcp_url, LIST, key=key)
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith(
            f'Bearer resource_metadata="{gateway.url}/.well-known/oauth-protected-resource/mcp"'
        )
    response = httpx.post(gateway.mcp_url, json=LIST, headers={"authorization": "Basic Zm9vOmJhcg=="})
    assert response.status_code == 401
