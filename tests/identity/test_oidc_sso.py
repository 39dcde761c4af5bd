"""Single sign-on with OpenID Connect over HTTP, against a real provider process started by the test
(tests/support/oidc_provider.py): a person whose confirmed address is at a joining domain signs in and becomes a
member; every wrong answer of the provider is refused with a clear page, and nothing is created."""

from __future__ import annotations

import html
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from meshgate.bootstrap import bootstrap_owner
from meshgate.identity.sessions import COOKIE as SESSION_COOKIE
from support.mcp_client import call, call_error, connect
from support.oauth import PASSWORD, new_person
from support.secrets import remember_secret
from support.served import TestClock
from support.sign_in import ask_for_link, browser, log_in, mail_gateway, mailed_link
from support.sso import SsoSetup, at_provider, sso_gateway, to_provider, user_named, walk

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sso(tmp_db: str, tmp_path: Path) -> AsyncIterator[SsoSetup]:
    async with sso_gateway(tmp_db, tmp_path) as setup:
        yield setup


def _address(domain: str = "sso.example") -> str:
    return f"p-{uuid.uuid4().hex[:10]}@{domain}"


async def _members(setup: SsoSetup) -> dict[str, str]:
    async with connect(setup.gateway.mcp_url, setup.owner.api_key) as client:
        return {m["email"]: m["role"] for m in (await call(client, "ORGANIZATION_MEMBER_LIST"))["items"]}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"], indirect=True)
async def test_a_confirmed_address_at_a_joining_domain_signs_in_and_becomes_a_member(sso: SsoSetup) -> None:
    email = _address()
    async with browser(sso.gateway) as http:
        started = await to_provider(http, sso.slug)
        assert started.status_code == 303
        authorization = started.headers["location"]
        assert authorization.startswith(f"{sso.provider.issuer}/authorize?")
        assert "code_challenge_method=S256" in authorization and "nonce=" in authorization
        assert "state=" in authorization
        callback = await at_provider(http, authorization, email)
        answer = await http.get(callback)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"].endswith("/app")
        assert SESSION_COOKIE in answer.headers.get("set-cookie", "")
        account = await http.get("/app/account")
        assert account.status_code == 200 and email in account.text
    assert (await _members(sso))[email] == "member"
    user = await user_named(sso.gateway, email)
    assert user is not None and user.email_verified

    async with browser(sso.gateway) as again:  # the second time the identity is known: no second membership
        second = await walk(again, sso, email)
        assert second.answer.status_code == 303
        assert (await again.get("/app/account")).status_code == 200
    assert list(await _members(sso)).count(email) == 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("flaw", "reason"),
    [
        ("audience", "issued for another client (aud does not match)"),
        ("nonce", "belongs to another sign-in (nonce does not match)"),
        ("issuer", "comes from another issuer"),
        ("signature", "signature does not verify with the issuer's keys"),
        ("expired", "the id_token has expired"),
    ],
)
async def test_a_wrong_id_token_is_refused_with_a_clear_page_and_creates_nothing(
    sso: SsoSetup, flaw: str, reason: str
) -> None:
    email = _address()
    async with browser(sso.gateway) as http:
        refused = (await walk(http, sso, email, flaw=flaw)).answer
        assert refused.status_code == 403, refused.text
        assert "Single sign-on" in refused.text and reason in html.unescape(refused.text)
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert (await http.get("/app/account")).status_code != 200
    assert await user_named(sso.gateway, email) is None
    assert email not in await _members(sso)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_unconfirmed_address_is_refused_and_creates_nothing(sso: SsoSetup) -> None:
    email = _address()
    async with browser(sso.gateway) as http:
        refused = (await walk(http, sso, email, verified=False)).answer
        assert refused.status_code == 403
        assert f"has not confirmed the address {email}" in refused.text
    assert await user_named(sso.gateway, email) is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_state_works_once_and_only_in_the_browser_that_started(sso: SsoSetup) -> None:
    email = _address()
    async with browser(sso.gateway) as http, browser(sso.gateway) as stranger:
        first = await walk(http, sso, email)
        assert first.answer.status_code == 303
        reused = await http.get(first.callback_url)
        assert reused.status_code == 404
        assert "unknown, was finished already or has expired" in reused.text

        started = await to_provider(http, sso.slug)
        callback = await at_provider(http, started.headers["location"], _address())
        elsewhere = await stranger.get(callback)
        assert elsewhere.status_code == 403
        assert "started in another browser" in elsewhere.text
        assert (await stranger.get("/app/account")).status_code != 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_gateways_clock_decides_when_an_id_token_has_expired(sso: SsoSetup) -> None:
    email = _address()
    async with browser(sso.gateway) as http:
        started = await to_provider(http, sso.slug)
        callback = await at_provider(http, started.headers["location"], email)
        sso.clock.advance(400)  # the provider's token lives 300 s (+60 s leeway); the sign-in itself 600 s
        refused = await http.get(callback)
        assert refused.status_code == 403
        assert "the id_token has expired" in refused.text
    assert await user_named(sso.gateway, email) is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_address_outside_the_domains_that_is_no_member_is_refused(sso: SsoSetup) -> None:
    email = _address("elsewhere.example")
    async with browser(sso.gateway) as http:
        refused = (await walk(http, sso, email)).answer
        assert refused.status_code == 403
        assert "do not join it by themselves" in refused.text
    assert await user_named(sso.gateway, email) is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sso_required_turns_password_login_off_and_members_sign_in_with_sso(sso: SsoSetup) -> None:
    async with browser(sso.gateway) as http:
        assert (await log_in(http, sso.owner.email, sso.owner.password)).status_code == 303
    async with connect(sso.gateway.mcp_url, sso.owner.api_key) as client:
        assert (await call(client, "ORGANIZATION_SSO_SET", {"ssoRequired": True}))["ssoRequired"] is True
    async with browser(sso.gateway) as http:
        refused = await log_in(http, sso.owner.email, sso.owner.password)
        assert refused.status_code == 403
        assert "requires single sign-on, so password login is turned off" in refused.text
        wrong = await log_in(http, sso.owner.email, "not the password at all")
        assert wrong.status_code == 401  # a wrong password learns nothing about SSO
        # the owner is a member already: their confirmed address signs in through the organization's provider
        signed_in = (await walk(http, sso, sso.owner.email)).answer
        assert signed_in.status_code == 303, signed_in.text
        assert (await http.get("/app/account")).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_only_owners_set_domains_and_sso_and_new_members_never_become_owners(sso: SsoSetup) -> None:
    from conftest import new_member  # noqa: PLC0415  (conftest's helpers are imported where used)

    admin = await new_member(sso.gateway, sso.owner.organization_id, "admin")
    async with connect(sso.gateway.mcp_url, admin.api_key) as client:
        assert (await call(client, "ORGANIZATION_DOMAIN_GET"))["domains"] == ["sso.example"]
        assert "only an owner can" in await call_error(client, "ORGANIZATION_DOMAIN_SET", {"domains": ["x.example"]})
        assert "only an owner can" in await call_error(client, "ORGANIZATION_DOMAIN_CLEAR")
        assert "only an owner can" in await call_error(client, "ORGANIZATION_SSO_SET", {"ssoRequired": True})
        got = await call(client, "ORGANIZATION_SSO_GET")
        assert got["clientSecretSet"] is True and sso.provider.client_secret not in str(got)
        assert got["redirectUri"] == f"{sso.gateway.url}/sso/callback"
    async with connect(sso.gateway.mcp_url, sso.owner.api_key) as client:
        assert "defaultRole cannot be owner" in await call_error(
            client, "ORGANIZATION_SSO_SET", {"defaultRole": "owner"}
        )
        assert "not a domain name" in await call_error(client, "ORGANIZATION_DOMAIN_SET", {"domains": ["no spaces.x"]})
        assert (await call(client, "ORGANIZATION_SSO_SET", {"defaultRole": "admin"}))["defaultRole"] == "admin"
    email = _address()
    async with browser(sso.gateway) as http:
        assert (await walk(http, sso, email)).answer.status_code == 303
    assert (await _members(sso))[email] == "admin"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_issuer_off_loopback_must_use_https(sso: SsoSetup) -> None:
    """(The address guard the issuer's requests go through is `meshgate.oauth.fetch`, tested with it; tests reach
    nothing but 127.0.0.1, so no refused address is tried here.)"""
    async with connect(sso.gateway.mcp_url, sso.owner.api_key) as client:
        plain = await call_error(client, "ORGANIZATION_SSO_SET", {"issuer": "http://login.example.com"})
        assert "must use https" in plain


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_account_of_other_organizations_is_linked_only_by_its_signed_in_owner(sso: SsoSetup) -> None:
    email = _address()
    other = await bootstrap_owner(sso.gateway.env["DATABASE_URL"], email=email, password=PASSWORD, org_name="Other")
    remember_secret(other.api_key)
    async with browser(sso.gateway) as http:
        refused = (await walk(http, sso, email)).answer
        assert refused.status_code == 403
        assert "belongs to other organizations too: log in to it first" in refused.text
        assert email not in await _members(sso)

        assert (await log_in(http, email, PASSWORD)).status_code == 303
        linked = (await walk(http, sso, email)).answer
        assert linked.status_code == 303, linked.text
    assert (await _members(sso))[email] == "member"
    async with browser(sso.gateway) as later:  # linked now: the provider alone signs the person in
        assert (await walk(later, sso, email)).answer.status_code == 303


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_google_preset_is_openid_connect_with_googles_issuer(sso: SsoSetup) -> None:
    async with connect(sso.gateway.mcp_url, sso.owner.api_key) as client:
        google = await call(
            client, "ORGANIZATION_SSO_SET", {"provider": "google", "clientId": "x.apps.googleusercontent.com"}
        )
        assert (google["provider"], google["issuer"]) == ("google", "https://accounts.google.com")
        assert "openid email" in google["scopes"]
        assert (await call(client, "ORGANIZATION_SSO_CLEAR"))["cleared"] is True
        assert "no single sign-on configured" in await call_error(client, "ORGANIZATION_SSO_GET")
    async with browser(sso.gateway) as http:
        assert (await to_provider(http, sso.slug)).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sso_required_turns_sign_in_links_off_for_members(tmp_db: str, tmp_path: Path) -> None:
    async with mail_gateway(tmp_db, tmp_path, TestClock()) as (gateway, sink):
        person = await new_person(gateway, "Link Org")
        async with connect(gateway.mcp_url, person.api_key) as client:
            settings = {"provider": "google", "clientId": "x.apps.googleusercontent.com", "ssoRequired": True}
            await call(client, "ORGANIZATION_SSO_SET", settings)
        async with browser(gateway) as http:
            assert (await ask_for_link(http, person.email)).status_code == 303
            opened = await http.get(await mailed_link(gateway, sink, person.email))
            assert opened.status_code == 403
            assert "requires single sign-on, so signing in with a link is turned off" in opened.text
            assert SESSION_COOKIE not in opened.headers.get("set-cookie", "")
            assert (await http.get("/app/account")).status_code != 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_refusal_or_an_answer_from_another_issuer_is_shown_and_signs_nobody_in(sso: SsoSetup) -> None:
    async with browser(sso.gateway) as http:
        started = await to_provider(http, sso.slug)
        state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
        denied = await http.get("/sso/callback", params={"state": state, "error": "access_denied"})
        assert denied.status_code == 403
        assert "the identity provider refused the sign-in (access_denied)" in denied.text

        started = await to_provider(http, sso.slug)
        callback = await at_provider(http, started.headers["location"], _address())
        forged = callback.replace(quote(sso.provider.issuer, safe=""), quote("https://evil.example", safe=""))
        assert forged != callback
        other = await http.get(forged)
        assert other.status_code == 403
        assert "came from another issuer" in other.text
        assert (await http.get("/app/account")).status_code != 200


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_starting_sign_ins_is_throttled_per_client_address(sso: SsoSetup) -> None:
    async with browser(sso.gateway) as http:
        answers = [(await to_provider(http, sso.slug)).status_code for _ in range(20)]
        assert answers == [303] * 20  # the burst
        throttled = await to_provider(http, sso.slug)
        for _ in range(20):  # the budget refills at one start per 2 s: a refusal comes long before 20 more
            if throttled.status_code != 303:
                break
            throttled = await to_provider(http, sso.slug)
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert "too many sign-ins were started" in throttled.text
