"""Single sign-on in Chromium: the login page's organization form, the provider's sign-in page (a real provider
process, tests/support/oidc_provider.py) and back to the dashboard; a wrong answer of the provider ends on a
page that says what was wrong, signed in to nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from support.browser import run_async
from support.gateway import Gateway, manage
from support.oauth import Person, new_person
from support.sso import CLIENT_ID, IdentityProvider, identity_provider


@pytest.fixture(scope="module")
def provider(web_gateway: Gateway) -> Iterator[IdentityProvider]:
    with identity_provider(f"{web_gateway.url}/sso/callback") as running:
        yield running


def _sso_org(gateway: Gateway, provider: IdentityProvider) -> tuple[Person, str, str]:
    """An organization signing in with `provider`, its slug, and a domain of its own that joins it."""
    owner = run_async(new_person, gateway, "Browser SSO Org")
    slug = manage(gateway, owner.api_key, "ORGANIZATION_GET")["slug"]
    settings = {"provider": "oidc", "issuer": provider.issuer, "clientId": CLIENT_ID}
    manage(gateway, owner.api_key, "ORGANIZATION_SSO_SET", **settings, clientSecret=provider.client_secret)
    domain = f"sso-{uuid.uuid4().hex[:8]}.example"
    manage(gateway, owner.api_key, "ORGANIZATION_DOMAIN_SET", domains=[domain])
    return owner, slug, domain


def _to_provider(page: Page, gateway: Gateway, slug: str, email: str) -> None:
    page.goto(f"{gateway.url}/login")
    page.get_by_label("Organization (its slug)").fill(slug)
    page.get_by_role("button", name="Sign in with your organization").click()
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    page.get_by_label("Email").fill(email)


def test_a_person_signs_in_with_their_organizations_provider_and_lands_on_the_dashboard(
    browser: Browser, web_gateway: Gateway, provider: IdentityProvider
) -> None:
    _owner, slug, domain = _sso_org(web_gateway, provider)
    email = f"p-{uuid.uuid4().hex[:10]}@{domain}"
    page = browser.new_context().new_page()
    _to_provider(page, web_gateway, slug, email)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Connections", exact=True)).to_be_visible()
    page.goto(f"{web_gateway.url}/app/account")
    expect(page.get_by_text(email).first).to_be_visible()


def test_a_token_for_another_sign_in_ends_on_a_page_that_says_so(
    browser: Browser, web_gateway: Gateway, provider: IdentityProvider
) -> None:
    _owner, slug, domain = _sso_org(web_gateway, provider)
    page = browser.new_context().new_page()
    _to_provider(page, web_gateway, slug, f"p-{uuid.uuid4().hex[:10]}@{domain}")
    page.get_by_label("Flaw").select_option("nonce")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Single sign-on")).to_be_visible()
    expect(page.get_by_text("nonce does not match")).to_be_visible()
    page.goto(f"{web_gateway.url}/app")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
