"""The organization's single sign-on page in Chromium: an owner sets SSO up against a real provider process
(tests/support/oidc_provider.py) and a fresh browser then signs in with it; someone without owner rights
neither sees nor submits it; bad input is answered on the page and saves nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from support.browser import add_member, log_in, run_async
from support.gateway import Gateway, manage, rpc
from support.oauth import Person, new_person
from support.sso import CLIENT_ID, IdentityProvider, identity_provider


@pytest.fixture(scope="module")
def provider(web_gateway: Gateway) -> Iterator[IdentityProvider]:
    with identity_provider(f"{web_gateway.url}/sso/callback") as running:
        yield running


def _owner_on_sso_page(browser: Browser, gateway: Gateway, org: str) -> tuple[Person, str, Page]:
    owner = run_async(new_person, gateway, org)
    slug = manage(gateway, owner.api_key, "ORGANIZATION_GET")["slug"]
    page = browser.new_context().new_page()
    log_in(page, gateway, owner.email, owner.password)
    page.goto(f"{gateway.url}/app/{slug}/settings")
    page.get_by_role("link", name="Single sign-on settings").click()
    expect(page.get_by_role("heading", name="Single sign-on", exact=True)).to_be_visible()
    return owner, slug, page


def test_an_owner_sets_up_sso_on_the_page_and_a_fresh_browser_signs_in_with_it(
    browser: Browser, web_gateway: Gateway, provider: IdentityProvider
) -> None:
    owner, slug, page = _owner_on_sso_page(browser, web_gateway, "Page SSO Org")
    expect(page.get_by_test_id("sso-none")).to_be_visible()
    expect(page.get_by_label("Callback URL to register at the provider")).to_have_value(
        f"{web_gateway.url}/sso/callback"
    )
    page.get_by_label("Issuer URL").fill(provider.issuer)
    page.get_by_label("Client id").fill(CLIENT_ID)
    page.get_by_label("Client secret").fill(provider.client_secret)
    page.get_by_label("Role of people who join by their domain").select_option("admin")
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_test_id("sso-issuer")).to_have_text(provider.issuer)
    expect(page.get_by_test_id("sso-client-id")).to_have_text(CLIENT_ID)
    expect(page.get_by_test_id("sso-secret")).to_have_text("A secret is set")
    expect(page.get_by_test_id("sso-role")).to_have_text("admin")
    assert provider.client_secret not in page.content()
    roles = page.get_by_label("Role of people who join by their domain").locator("option").all_inner_texts()
    assert "member" in roles and "admin" in roles and "owner" not in roles

    domain = f"page-{uuid.uuid4().hex[:8]}.example"
    page.get_by_label("Email domains").fill(domain)
    page.get_by_role("button", name="Save domains").click()
    expect(page.get_by_label("Email domains")).to_have_value(domain)

    email = f"p-{uuid.uuid4().hex[:10]}@{domain}"
    fresh = browser.new_context().new_page()
    fresh.goto(f"{web_gateway.url}/login")
    fresh.get_by_label("Organization (its slug)").fill(slug)
    fresh.get_by_role("button", name="Sign in with your organization").click()
    expect(fresh.get_by_role("heading", name="Test identity provider")).to_be_visible()
    fresh.get_by_label("Email").fill(email)
    fresh.get_by_role("button", name="Sign in").click()
    expect(fresh.get_by_role("heading", name="Connections", exact=True)).to_be_visible()
    members = manage(web_gateway, owner.api_key, "ORGANIZATION_MEMBER_LIST")["items"]
    assert {m["email"]: m["role"] for m in members}[email] == "admin"


def test_someone_without_owner_rights_neither_sees_nor_submits_the_sso_page(
    browser: Browser, web_gateway: Gateway, provider: IdentityProvider
) -> None:
    owner = run_async(new_person, web_gateway, "Guarded SSO Org")
    slug = manage(web_gateway, owner.api_key, "ORGANIZATION_GET")["slug"]
    admin = run_async(add_member, web_gateway, owner.organization_id, "admin")
    page = browser.new_context().new_page()
    log_in(page, web_gateway, admin.email, admin.password)
    page.goto(f"{web_gateway.url}/app/{slug}/settings")
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Single sign-on settings")).to_have_count(0)
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert csrf

    answer = page.goto(f"{web_gateway.url}/app/{slug}/sso")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("only an owner of the organization can see and change its single sign-on")).to_be_visible()

    form: dict[str, str | float | bool] = {
        "csrf_token": csrf,
        "provider": "oidc",
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
    }
    posted = page.request.post(f"{web_gateway.url}/app/{slug}/sso", form=form, max_redirects=0)
    assert posted.status == 403
    domains = page.request.post(
        f"{web_gateway.url}/app/{slug}/sso/domains", form={"csrf_token": csrf, "domains": "x.example"}, max_redirects=0
    )
    assert domains.status == 403
    assert manage(web_gateway, owner.api_key, "ORGANIZATION_DOMAIN_GET")["domains"] == []
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "ORGANIZATION_SSO_GET", "arguments": {}},
    }
    unset = rpc(web_gateway.mcp_url, body, key=owner.api_key).json()["result"]
    assert unset.get("isError") and "no single sign-on configured" in str(unset)


def test_bad_input_is_answered_on_the_page_and_saves_nothing(
    browser: Browser, web_gateway: Gateway, provider: IdentityProvider
) -> None:
    _owner, _slug, page = _owner_on_sso_page(browser, web_gateway, "Careful SSO Org")
    page.get_by_label("Issuer URL").fill("http://login.example.com")
    page.get_by_label("Client id").fill(CLIENT_ID)
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_role("alert")).to_contain_text("https")
    expect(page.get_by_label("Issuer URL")).to_have_value("http://login.example.com")  # what was typed stays
    expect(page.get_by_test_id("sso-none")).to_be_visible()

    page.get_by_label("Issuer URL").fill(provider.issuer)
    page.get_by_label("Client id").fill("")
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_role("alert")).to_contain_text("clientId is required")
    page.reload()
    expect(page.get_by_test_id("sso-none")).to_be_visible()

    page.get_by_label("Provider", exact=True).select_option("google")
    page.get_by_label("Issuer URL").fill("")
    page.get_by_label("Client id").fill("google-client.apps.googleusercontent.com")
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_test_id("sso-issuer")).to_have_text("https://accounts.google.com")
    expect(page.get_by_test_id("sso-secret")).to_have_text("No secret is set")
    expect(page.get_by_test_id("sso-required")).to_have_text("No")
    page.get_by_label("SSO required").check()
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_test_id("sso-required")).to_contain_text("Yes")
    expect(page.get_by_test_id("sso-issuer")).to_have_text("https://accounts.google.com")
    page.get_by_role("button", name="Turn off single sign-on").click()
    expect(page.get_by_test_id("sso-none")).to_be_visible()
