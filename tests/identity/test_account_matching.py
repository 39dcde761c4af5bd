"""An email address is matched to an account only after its owner proved it; adding a person is an invitation.

The attack (security review finding 3): an admin of one organization makes an open invitation link, signs
up through it as victim@…, and waits for another organization to add that address."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx
import pytest

from conftest import new_owner
from support.gateway import Gateway
from support.mcp_client import call, connect
from support.oauth import forms_of, logged_in, new_person
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio

ATTACKER_PASSWORD = "attacker-pw-123"


async def _invite(gateway: Gateway, key: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with connect(gateway.mcp_url, key) as client:
        return await call(client, tool, arguments)


async def _members(gateway: Gateway, key: str) -> set[str]:
    async with connect(gateway.mcp_url, key) as client:
        return {m["email"] for m in (await call(client, "ORGANIZATION_MEMBER_LIST"))["items"]}


async def _open_link(http: httpx.AsyncClient, url: str, **fields: str) -> httpx.Response:
    """Open an invitation link and submit its form (as a browser would)."""
    page = await http.get(url)
    assert page.status_code == 200, page.text
    return await http.post(url, data={**forms_of(page.text).fields, **fields})


def _victim() -> str:
    return f"carol-{uuid.uuid4().hex[:8]}@corp.example.com"


@pytest.mark.finding(3)
async def test_an_account_made_through_an_open_link_cannot_take_an_invitation_for_its_address(
    gateway: Gateway,
) -> None:
    bob = await new_owner(gateway, org="Org B")
    alice = await new_owner(gateway, org="Org A")
    victim = _victim()
    open_link = await _invite(gateway, bob.api_key, "INVITATION_CREATE", {"role": "member"})
    async with httpx.AsyncClient(timeout=30) as attacker:
        joined = await _open_link(attacker, open_link["url"], email=victim, password=ATTACKER_PASSWORD)
        assert joined.status_code == 303  # the link holder joins Org B: that is what an open link is for

    invited = await _invite(gateway, alice.api_key, "ORGANIZATION_MEMBER_ADD", {"email": victim, "role": "admin"})
    assert invited["status"] == "invited"
    assert victim not in await _members(gateway, alice.api_key)

    # Even holding Org A's link, the account whose address nobody proved cannot take it.
    async with logged_in(gateway, victim, ATTACKER_PASSWORD) as attacker:
        refused = await _open_link(attacker, invited["url"])
    assert refused.status_code == 403
    assert "has not yet proved that the address is its own" in refused.text
    assert victim not in await _members(gateway, alice.api_key)


@pytest.mark.finding(3)
async def test_a_new_account_from_an_email_bound_link_joins_only_that_organization(gateway: Gateway) -> None:
    mallory = await new_owner(gateway, org="Mallory")
    alice = await new_owner(gateway, org="Alice")
    victim = _victim()
    bound = await _invite(gateway, mallory.api_key, "INVITATION_CREATE", {"role": "member", "email": victim})
    async with httpx.AsyncClient(timeout=30) as attacker:
        # The form's email field is ignored: a bound link creates an account for its own address only.
        joined = await _open_link(attacker, bound["url"], email="other@example.com", password=ATTACKER_PASSWORD)
    assert joined.status_code == 303
    assert victim in await _members(gateway, mallory.api_key)

    second = await _invite(gateway, alice.api_key, "INVITATION_CREATE", {"role": "admin", "email": victim})
    async with logged_in(gateway, victim, ATTACKER_PASSWORD) as attacker:
        assert (await _open_link(attacker, second["url"])).status_code == 403
    assert victim not in await _members(gateway, alice.api_key)


@pytest.mark.finding(3)
async def test_an_account_with_a_proved_address_accepts_an_invitation_for_it(gateway: Gateway) -> None:
    alice = await new_owner(gateway, org="Alice")
    person = await new_person(gateway, "Elsewhere")  # made by `meshgate bootstrap`: the operator named it
    invited = await _invite(
        gateway, alice.api_key, "ORGANIZATION_MEMBER_ADD", {"email": person.email.upper(), "role": "member"}
    )
    async with logged_in(gateway, person.email, person.password) as http:
        accepted = await _open_link(http, invited["url"])
    assert accepted.status_code == 303 and "notice=joined" in accepted.headers["location"]
    assert person.email in await _members(gateway, alice.api_key)


@pytest.mark.finding(19)
async def test_member_add_answers_the_same_whether_or_not_the_email_has_an_account(gateway: Gateway) -> None:
    alice = await new_owner(gateway, org="Alice")
    existing = await new_person(gateway, "Has an account")
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = [
        await _invite(gateway, alice.api_key, "ORGANIZATION_MEMBER_ADD", {"email": email, "role": "admin"})
        for email in (existing.email, nobody)
    ]
    shapes = [
        {key: value for key, value in answer.items() if key not in ("id", "email", "url", "createdAt", "expiresAt")}
        for answer in answers
    ]
    assert (
        shapes[0]
        == shapes[1]
        == {
            "organizationId": alice.organization_id,
            "role": "admin",
            "userId": None,
            "createdBy": alice.user_id,
            "status": "invited",
            "delivery": "link",  # this gateway sends no mail: the answer carries the link
            "emailedAt": None,
        }
    )
    assert existing.user_id not in str(answers[0])
    assert existing.email not in await _members(gateway, alice.api_key)  # nobody joins before accepting


@pytest.mark.finding(19)
async def test_member_add_by_user_id_is_an_invitation_only_that_user_accepts(gateway: Gateway) -> None:
    alice = await new_owner(gateway, org="Alice")
    bob = await new_person(gateway, "Bob's")
    other = await new_person(gateway, "Other")
    invited = await _invite(
        gateway, alice.api_key, "ORGANIZATION_MEMBER_ADD", {"userId": bob.user_id, "role": "member"}
    )
    assert invited["userId"] == bob.user_id and invited["email"] is None and "name" not in invited
    assert bob.email not in await _members(gateway, alice.api_key)
    async with logged_in(gateway, other.email, other.password) as http:
        refused = await _open_link(http, invited["url"])
    assert refused.status_code == 403 and "for another account" in refused.text
    async with logged_in(gateway, bob.email, bob.password) as http:
        assert (await _open_link(http, invited["url"])).status_code == 303
    assert bob.email in await _members(gateway, alice.api_key)


@pytest.mark.finding(24)
async def test_invitation_tokens_are_masked_in_the_access_log(gateway: Gateway) -> None:
    owner = await new_owner(gateway, org="Logged")
    invited = await _invite(gateway, owner.api_key, "INVITATION_CREATE", {"role": "member"})
    token = remember_secret(invited["url"].rsplit("/", 1)[1])
    code = remember_secret(f"code-{uuid.uuid4().hex}")
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(invited["url"])).status_code == 200
        await http.get(f"{gateway.url}/oauth/callback?code={code}&state=some-state")
    with anyio.fail_after(10):  # the access line is written after the answer
        while True:
            if "GET /oauth/callback?code=[redacted]&state=[redacted] HTTP/1.1" in gateway.logs():
                break
            await anyio.sleep(0.05)
    assert "GET /invite/[redacted] HTTP/1.1" in gateway.logs()
    assert token not in gateway.logs() and code not in gateway.logs()
