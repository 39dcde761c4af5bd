"""The consent page names what is being authorized and offers only the organization that owns it; the grant
is checked again when the form comes back (issue 22, point 12)."""

from __future__ import annotations

import uuid

import pytest

from conftest import add_connection, new_member
from support.gateway import Gateway, Upstream
from support.mcp_client import call, call_error, connect
from support.oauth import Browser, HandClient, Person, forms_of, new_person, pkce_pair

pytestmark = pytest.mark.anyio


async def _in_two_organizations(gateway: Gateway, role: str = "admin") -> tuple[Person, Person]:
    """`person` owns "Home Org" and has `role` in "Team Org", which `team` owns."""
    person = await new_person(gateway, "Home Org")
    team = await new_person(gateway, "Team Org")
    await new_member(gateway, team.organization_id, role, user_id=person.user_id)
    return person, team


async def test_consent_names_the_connection_and_offers_only_its_organization(
    gateway: Gateway, upstream: Upstream
) -> None:
    person, team = await _in_two_organizations(gateway)
    conn = await add_connection(gateway, team.api_key, upstream, title="Team wiki")
    client = await HandClient.register(gateway)
    browser = Browser(person, decision="deny")
    _verifier, challenge = pkce_pair()
    await browser.authorize(client.authorize_url(challenge, resource=f"{gateway.url}/mcp/{conn['id']}"))
    page = browser.pages[0]
    assert '<strong class="target">Team wiki</strong> of Team Org' in page
    assert conn["id"] not in page  # the name, not the UUID address
    form = forms_of(page)
    assert form.fields["organization_id"] == team.organization_id
    assert "organization_id" not in form.options  # no choice: the connection's organization only
    assert "Home Org" not in page
    code, verifier = await client.code(person, resource=f"{gateway.url}/mcp/{conn['id']}")
    assert (await client.exchange(code, verifier)).status_code == 200


async def test_consent_names_a_virtual_mcp(gateway: Gateway, upstream: Upstream) -> None:
    person, team = await _in_two_organizations(gateway)
    conn = await add_connection(gateway, team.api_key, upstream)
    async with connect(gateway.mcp_url, team.api_key) as admin:
        virtual = await call(
            admin,
            "COLLECTION_VIRTUAL_MCP_CREATE",
            {"data": {"title": "Team tools", "connections": [{"connection_id": conn["id"]}]}},
        )
    browser = Browser(person, decision="deny")
    _verifier, challenge = pkce_pair()
    client = await HandClient.register(gateway)
    await browser.authorize(client.authorize_url(challenge, resource=f"{gateway.url}/mcp/virtual/{virtual['id']}"))
    assert '<strong class="target">Team tools</strong> of Team Org' in browser.pages[0]
    assert forms_of(browser.pages[0]).fields["organization_id"] == team.organization_id


async def test_management_consent_offers_each_of_the_persons_organizations(gateway: Gateway) -> None:
    person, team = await _in_two_organizations(gateway)
    client = await HandClient.register(gateway)
    browser = Browser(person, decision="deny")
    _verifier, challenge = pkce_pair()
    await browser.authorize(client.authorize_url(challenge, resource=gateway.mcp_url))
    assert '<strong class="target">meshgate management</strong>' in browser.pages[0]
    offered = forms_of(browser.pages[0]).options["organization_id"]
    assert offered == [person.organization_id, team.organization_id]


async def test_a_forged_organization_in_the_consent_form_is_refused(gateway: Gateway, upstream: Upstream) -> None:
    person, team = await _in_two_organizations(gateway)
    conn = await add_connection(gateway, team.api_key, upstream, title="Team wiki")
    client = await HandClient.register(gateway)
    _verifier, challenge = pkce_pair()
    url = client.authorize_url(challenge, resource=f"{gateway.url}/mcp/{conn['id']}")
    forged = await Browser(person, organization_id=person.organization_id).authorize(url)
    assert forged.status_code == 403 and "location" not in forged.headers
    assert "Team wiki can only be authorized in its organization, Team Org" in forged.text
    nowhere = await Browser(person, organization_id=str(uuid.uuid4())).authorize(url)
    assert nowhere.status_code == 403 and "location" not in nowhere.headers
    outsider = await new_person(gateway, "Outsider Org")
    management = await Browser(outsider, organization_id=team.organization_id).authorize(
        client.authorize_url(challenge, resource=gateway.mcp_url)
    )
    assert management.status_code == 403 and "location" not in management.headers
    async with connect(gateway.mcp_url, person.api_key) as home:
        assert (await call(home, "OAUTH_GRANT_LIST"))["items"] == []  # nothing was granted anywhere


async def test_an_unknown_or_foreign_endpoint_is_refused_with_a_page(gateway: Gateway, upstream: Upstream) -> None:
    person = await new_person(gateway, "Home Org")
    stranger = await new_person(gateway, "Stranger Org")
    foreign = await add_connection(gateway, stranger.api_key, upstream, title="Stranger secret")
    client = await HandClient.register(gateway)
    _verifier, challenge = pkce_pair()
    for path in (f"/mcp/{uuid.uuid4()}", f"/mcp/virtual/{uuid.uuid4()}", f"/mcp/{foreign['id']}"):
        browser = Browser(person)
        answer = await browser.authorize(client.authorize_url(challenge, resource=gateway.url + path))
        assert answer.status_code == 404, answer.text
        assert "location" not in answer.headers and not browser.pages  # an error page, no consent offer
        assert "Cannot authorize" in answer.text and "in your organizations" in answer.text
        assert "Stranger secret" not in answer.text


async def test_a_member_whose_role_reaches_nothing_there_is_refused(gateway: Gateway, upstream: Upstream) -> None:
    person, team = await _in_two_organizations(gateway, role="member")  # members reach no connection by default
    conn = await add_connection(gateway, team.api_key, upstream, title="Team wiki")
    async with connect(gateway.mcp_url, team.api_key) as admin:
        virtual = await call(
            admin,
            "COLLECTION_VIRTUAL_MCP_CREATE",
            {"data": {"title": "Team tools", "connections": [{"connection_id": conn["id"]}]}},
        )
    client = await HandClient.register(gateway)
    _verifier, challenge = pkce_pair()
    for path, what in ((f"/mcp/{conn['id']}", "connection"), (f"/mcp/virtual/{virtual['id']}", "virtual MCP")):
        browser = Browser(person)
        answer = await browser.authorize(client.authorize_url(challenge, resource=gateway.url + path))
        assert answer.status_code == 403 and "location" not in answer.headers and not browser.pages
        assert f"your role in Team Org gives you no access to this {what}" in answer.text
        assert "Team wiki" not in answer.text and "Team tools" not in answer.text


async def test_grant_tools_list_and_revoke_only_the_callers_own_apps(gateway: Gateway) -> None:
    person, team = await _in_two_organizations(gateway)
    client = await HandClient.register(gateway)
    verifier, challenge = pkce_pair()
    browser = Browser(person, organization_id=person.organization_id)
    result = await browser.code_for(client.authorize_url(challenge, resource=gateway.mcp_url))
    assert (await client.exchange(result.code, verifier)).status_code == 200
    async with connect(gateway.mcp_url, team.api_key) as owner:
        assert (await call(owner, "OAUTH_GRANT_LIST"))["items"] == []  # an owner does not see others' consents
        assert "not_found" in await call_error(owner, "OAUTH_GRANT_REVOKE", {"clientId": client.client_id})
    async with connect(gateway.mcp_url, person.api_key) as home:
        [app] = (await call(home, "OAUTH_GRANT_LIST"))["items"]
        assert (app["clientId"], app["name"], app["resources"]) == (
            client.client_id,
            "hand client",
            ["meshgate management"],
        )
        assert app["redirectHosts"] == ["127.0.0.1"] and app["verified"] is False
        assert (await call(home, "OAUTH_GRANT_REVOKE", {"clientId": client.client_id}))["revokedGrants"] == 1
        assert (await call(home, "OAUTH_GRANT_LIST"))["items"] == []
