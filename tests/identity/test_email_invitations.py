"""Invitations by email over HTTP and MCP, against a gateway whose mail goes to a real SMTP server: the
link reaches the invited address only, a new person sets a password with a proved address, an existing
one logs in and accepts; invitations are listed, resent, withdrawn and expire on the gateway's clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from support.gateway import Gateway
from support.mail import SmtpSink, text_of
from support.mcp_client import call, call_error, connect
from support.oauth import PASSWORD, Person, new_person
from support.served import TestClock
from support.sign_in import browser, log_in, mail_gateway, mail_to, mailed_link, submit

pytestmark = pytest.mark.anyio

GONE = "this invitation link is not valid"


@pytest.fixture
async def served(tmp_db: str, tmp_path: Path) -> AsyncIterator[tuple[Gateway, SmtpSink, TestClock]]:
    clock = TestClock()
    async with mail_gateway(tmp_db, tmp_path, clock) as (gateway, sink):
        yield gateway, sink, clock


def _address() -> str:
    return f"invitee-{uuid.uuid4().hex[:8]}@example.com"


async def _invite(gateway: Gateway, owner: Person, email: str, role: str = "member") -> dict[str, Any]:
    async with connect(gateway.mcp_url, owner.api_key) as client:
        return await call(client, "ORGANIZATION_MEMBER_ADD", {"email": email, "role": role})


async def _members(gateway: Gateway, owner: Person) -> list[str]:
    async with connect(gateway.mcp_url, owner.api_key) as client:
        return [m["email"] for m in (await call(client, "ORGANIZATION_MEMBER_LIST"))["items"]]


async def _pending(gateway: Gateway, owner: Person) -> list[dict[str, Any]]:
    async with connect(gateway.mcp_url, owner.api_key) as client:
        return list((await call(client, "INVITATION_LIST"))["items"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
async def test_a_mailed_invitation_lets_a_new_person_join_with_a_proved_address(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, sink, _clock = served
    owner = await new_person(gateway, "Mail Invite Org")
    address = _address()
    invited = await _invite(gateway, owner, address, "admin")
    assert invited["status"] == "invited" and invited["delivery"] == "email"
    assert "url" not in invited  # the link is in the mail only
    mail = await mail_to(sink, address)
    assert "Mail Invite Org" in mail["Subject"] and owner.email in text_of(mail)
    link = await mailed_link(gateway, sink, address)
    assert link.startswith("/invite/mgi_")
    assert [i["email"] for i in await _pending(gateway, owner)] == [address]

    async with browser(gateway) as http:
        joined = await submit(http, link, password=PASSWORD)
        assert joined.status_code == 303, joined.text
        account = await http.get("/app/account")
        assert "<strong>confirmed</strong>" in account.text  # the mailed link proved the address
        assert (await http.get(link)).status_code == 404
    assert address in await _members(gateway, owner)
    assert await _pending(gateway, owner) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_existing_account_logs_in_and_accepts_and_the_answer_does_not_tell_it_exists(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, sink, _clock = served
    owner = await new_person(gateway, "Existing Invite Org")
    existing = await new_person(gateway, "Their Own Org")
    for_existing = await _invite(gateway, owner, existing.email)
    for_nobody = await _invite(gateway, owner, _address())
    varying = {"id", "email", "createdAt", "expiresAt", "emailedAt"}
    assert {k: v for k, v in for_existing.items() if k not in varying} == {
        k: v for k, v in for_nobody.items() if k not in varying
    }
    link = await mailed_link(gateway, sink, existing.email)
    async with browser(gateway) as http:
        page = await http.get(link)
        assert "Log in first" in page.text
        refused = await submit(http, link, password="someone else's guess")
        assert refused.status_code == 409
        assert "an account with this email exists already" in refused.text
        assert existing.email not in await _members(gateway, owner)

        assert (await log_in(http, existing.email, PASSWORD, link)).status_code == 303
        accepted = await submit(http, link)
        assert accepted.status_code == 303
        assert "notice=joined" in accepted.headers["location"]
    assert existing.email in await _members(gateway, owner)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_account_that_has_not_proved_its_address_cannot_claim_a_mailed_invitation(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, sink, _clock = served
    owner = await new_person(gateway, "Unproved Org")
    other = await new_person(gateway, "Open Link Org")
    address = _address()
    async with connect(gateway.mcp_url, other.api_key) as client:
        open_link = (await call(client, "INVITATION_CREATE", {"role": "member"}))["url"]
    async with browser(gateway) as http:
        assert (await submit(http, open_link, email=address, password=PASSWORD)).status_code == 303
        await _invite(gateway, owner, address)
        link = await mailed_link(gateway, sink, address)
        refused = await submit(http, link)
        assert refused.status_code == 403
        assert "has not yet proved" in refused.text
    assert address not in await _members(gateway, owner)
    assert [i["email"] for i in await _pending(gateway, owner)] == [address]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_invitations_are_resent_withdrawn_and_expire(served: tuple[Gateway, SmtpSink, TestClock]) -> None:
    gateway, sink, clock = served
    owner = await new_person(gateway, "Resend Org")
    address = _address()
    invited = await _invite(gateway, owner, address)
    first = await mailed_link(gateway, sink, address)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        too_soon = await call_error(client, "INVITATION_RESEND", {"invitationId": invited["id"]})
        assert "mailed moments ago" in too_soon
        clock.advance(61)
        resent = await call(client, "INVITATION_RESEND", {"invitationId": invited["id"]})
        assert resent["resent"] is True and resent["expiresAt"] == invited["expiresAt"]
    second = await mailed_link(gateway, sink, address, 2)
    assert second != first
    async with browser(gateway) as http:
        old = await http.get(first)
        assert old.status_code == 404 and GONE in old.text
        assert (await http.get(second)).status_code == 200
        async with connect(gateway.mcp_url, owner.api_key) as client:
            await call(client, "INVITATION_DELETE", {"invitationId": invited["id"]})
        withdrawn = await http.get(second)
        assert withdrawn.status_code == 404 and GONE in withdrawn.text

        later = _address()
        await _invite(gateway, owner, later)
        lasting = await mailed_link(gateway, sink, later)
        clock.advance(7 * 24 * 3600)
        assert await _pending(gateway, owner) == []
        expired = await http.get(lasting)
        assert expired.status_code == 404 and GONE in expired.text
    assert later not in await _members(gateway, owner)


async def _slug(gateway: Gateway, person: Person) -> str:
    async with connect(gateway.mcp_url, person.api_key) as client:
        return str((await call(client, "ORGANIZATION_GET"))["slug"])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_members_page_mails_and_resends_invitations_post_redirect_get(
    served: tuple[Gateway, SmtpSink, TestClock],
) -> None:
    gateway, sink, clock = served
    owner = await new_person(gateway, "Members Page Org")
    members = f"/app/{await _slug(gateway, owner)}/members"
    address = _address()
    async with browser(gateway) as http:
        assert (await log_in(http, owner.email, PASSWORD)).status_code == 303
        sent = await submit(http, members, email=address, role="member")
        assert sent.status_code == 303
        assert sent.headers["location"].endswith(f"{members}?notice=invitation-sent")
        page = await http.get(sent.headers["location"])
        assert "Invitation sent" in page.text and address in page.text and "mailed" in page.text
        assert "/invite/mgi_" not in page.text
        first = await mailed_link(gateway, sink, address)
        [pending] = await _pending(gateway, owner)

        clock.advance(61)
        resend = f"/app/{await _slug(gateway, owner)}/invitations/{pending['id']}/resend"
        resent = await submit(http, members, resend)
        assert resent.status_code == 303
        assert resent.headers["location"].endswith("?notice=invitation-resent")
        second = await mailed_link(gateway, sink, address, 2)
        assert second != first
        too_soon = await submit(http, members, resend)
        assert too_soon.status_code == 409
        assert "mailed moments ago" in too_soon.text


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_account_page_wears_the_dashboard_navigation(served: tuple[Gateway, SmtpSink, TestClock]) -> None:
    gateway, _sink, _clock = served
    person = await new_person(gateway, "Account Layout Org")
    slug = await _slug(gateway, person)
    async with browser(gateway) as http:
        assert (await log_in(http, person.email, PASSWORD)).status_code == 303
        page = await http.get(f"/app/account?org={slug}")
        assert page.status_code == 200
        assert f'href="/app/{slug}/connections"' in page.text  # the side navigation
        assert 'aria-label="Dashboard"' in page.text
        assert "Account Layout Org" in page.text
        assert "Your account" in page.text
