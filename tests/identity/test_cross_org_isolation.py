"""Organization A's key cannot read, change or even detect organization B's objects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conftest import new_member, new_owner
from support.gateway import Gateway
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio


async def _snapshot(gateway: Gateway, key: str) -> dict[str, Any]:
    async with connect(gateway.mcp_url, key) as client:
        return {
            tool: await call(client, tool)
            for tool in (
                "ORGANIZATION_GET",
                "ORGANIZATION_SETTINGS_GET",
                "ORGANIZATION_MEMBER_LIST",
                "ROLE_LIST",
                "API_KEY_LIST",
            )
        }


def _strip_last_used(snapshot: dict[str, Any]) -> dict[str, Any]:
    for key in snapshot["API_KEY_LIST"]["items"]:
        key.pop("lastUsedAt")
    return snapshot


async def test_every_id_taking_tool_treats_other_org_ids_as_missing(gateway: Gateway) -> None:
    a = await new_owner(gateway, org="Org A")
    b = await new_owner(gateway, org="Org B")
    async with connect(gateway.mcp_url, b.api_key) as client:
        role = await call(client, "ROLE_CREATE", {"name": "b-role", "permissions": {"self": ["ROLE_LIST"]}})
        key = await call(client, "API_KEY_CREATE", {"name": "b-key"})
        member = (await call(client, "ORGANIZATION_MEMBER_LIST"))["items"][0]
    before = _strip_last_used(await _snapshot(gateway, b.api_key))

    ghost = str(uuid.uuid4())
    # (tool, arguments with B's id, the field that carries the id)
    probes: list[tuple[str, dict[str, Any], str]] = [
        ("ORGANIZATION_GET", {"id": b.organization_id}, "id"),
        ("ORGANIZATION_UPDATE", {"id": b.organization_id, "name": "pwned"}, "id"),
        ("ORGANIZATION_DELETE", {"id": b.organization_id}, "id"),
        (
            "ORGANIZATION_MEMBER_ADD",
            {"organizationId": b.organization_id, "email": "x@example.com", "role": "admin"},
            "organizationId",
        ),
        ("ORGANIZATION_MEMBER_REMOVE", {"memberId": member["id"]}, "memberId"),
        ("ORGANIZATION_MEMBER_UPDATE_ROLE", {"memberId": member["id"], "role": "member"}, "memberId"),
        ("ROLE_UPDATE", {"roleId": role["id"], "permissions": {"*": ["*"]}}, "roleId"),
        ("ROLE_DELETE", {"roleId": role["id"]}, "roleId"),
        ("API_KEY_UPDATE", {"keyId": key["id"], "name": "stolen"}, "keyId"),
        ("API_KEY_DELETE", {"keyId": key["id"]}, "keyId"),
    ]
    async with connect(gateway.mcp_url, a.api_key) as client:
        for tool, arguments, field in probes:
            real_id = arguments[field]
            against_b = await client.call_tool(tool, arguments)
            against_ghost = await client.call_tool(tool, {**arguments, field: ghost})
            assert against_b.is_error, f"{tool} acted on organization B"
            text_b = against_b.content[0].text.replace(real_id, "<id>")  # type: ignore[union-attr]
            text_ghost = against_ghost.content[0].text.replace(ghost, "<id>")  # type: ignore[union-attr]
            assert text_b == text_ghost, f"{tool} answers B's id differently from a missing id"
            assert "not_found" in text_b

        # Lists and reads show A's objects only.
        assert [o["id"] for o in (await call(client, "ORGANIZATION_LIST"))["items"]] == [a.organization_id]
        listed = str(await call(client, "ORGANIZATION_MEMBER_LIST")) + str(await call(client, "ROLE_LIST"))
        listed += str(await call(client, "API_KEY_LIST"))
        for foreign in (b.organization_id, b.user_id, role["id"], key["id"], member["id"]):
            assert foreign not in listed

    assert _strip_last_used(await _snapshot(gateway, b.api_key)) == before


async def test_a_user_in_two_orgs_sees_only_the_keys_org(gateway: Gateway) -> None:
    a = await new_owner(gateway, org="Home")
    b = await new_owner(gateway, org="Elsewhere")
    await new_member(gateway, a.organization_id, "admin", user_id=b.user_id)
    async with connect(gateway.mcp_url, b.api_key) as client:
        listed = await call(client, "ORGANIZATION_LIST")
    assert [o["id"] for o in listed["items"]] == [b.organization_id]
