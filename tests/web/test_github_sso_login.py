"""The GitHub preset in Chromium: an owner picks GitHub on the single sign-on page, then a fresh browser signs
in through the login page and the stand-in for GitHub's authorize page (tests/support/github_stand_in.py, its
own process) and lands on the dashboard."""

from __future__ import annotations

import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, expect

from support.browser import log_in, run_async
from support.databases import fresh_database
from support.gateway import Gateway, free_port, manage, spawn_server, start_gateway
from support.oauth import new_person
from support.secrets import remember_secret

CLIENT_ID = "Iv1.browsertest"


@dataclass
class GitHubGateway:
    gateway: Gateway
    secret: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def github_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHubGateway]:
    tmp = tmp_path_factory.mktemp("gw-github")
    port, secret = free_port(), remember_secret(secrets.token_hex(20))
    url = f"http://127.0.0.1:{port}"
    with fresh_database("sqlite", tmp) as database:
        gateway = start_gateway(database, tmp, MESHGATE_SSO_GITHUB_URL=url, MESHGATE_SSO_GITHUB_API_URL=f"{url}/api/v3")
        args = ["--port", str(port), "--client-id", CLIENT_ID, f"--client-secret={secret}"]
        process = spawn_server(
            "support.github_stand_in", port, [*args, "--redirect-uri", f"{gateway.url}/sso/callback"]
        )
        try:
            yield GitHubGateway(gateway, secret, process)
        finally:
            process.kill()
            process.wait(timeout=10)
            code = gateway.stop()
            assert code == 0, f"gateway exited with {code}:\n{gateway.logs()}"


def test_an_owner_picks_github_on_the_page_and_a_fresh_browser_signs_in_with_it(
    browser: Browser, github_gateway: GitHubGateway
) -> None:
    gateway = github_gateway.gateway
    owner = run_async(new_person, gateway, "GitHub Browser Org")
    slug = manage(gateway, owner.api_key, "ORGANIZATION_GET")["slug"]
    page = browser.new_context().new_page()
    log_in(page, gateway, owner.email, owner.password)
    page.goto(f"{gateway.url}/app/{slug}/sso")
    page.get_by_label("Provider", exact=True).select_option("github")
    page.get_by_label("Client id").fill(CLIENT_ID)
    page.get_by_label("Client secret").fill(github_gateway.secret)
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_test_id("sso-provider")).to_have_text("github")
    expect(page.get_by_test_id("sso-issuer")).to_have_text("https://github.com")
    expect(page.get_by_test_id("sso-secret")).to_have_text("A secret is set")
    domain = f"gh-{uuid.uuid4().hex[:8]}.example"
    page.get_by_label("Email domains").fill(domain)
    page.get_by_role("button", name="Save domains").click()
    expect(page.get_by_label("Email domains")).to_have_value(domain)

    email = f"octo-{uuid.uuid4().hex[:8]}@{domain}"
    fresh = browser.new_context().new_page()
    fresh.goto(f"{gateway.url}/login")
    fresh.get_by_label("Organization (its slug)").fill(slug)
    fresh.get_by_role("button", name="Sign in with your organization").click()
    expect(fresh.get_by_role("heading", name="Authorize meshgate (GitHub stand-in)")).to_be_visible()
    fresh.get_by_label("Login").fill("octocat")
    fresh.get_by_label("Email").fill(email)
    fresh.get_by_role("button", name="Authorize").click()
    expect(fresh.get_by_role("heading", name="Connections", exact=True)).to_be_visible()
    members = manage(gateway, owner.api_key, "ORGANIZATION_MEMBER_LIST")["items"]
    assert {m["email"]: m["role"] for m in members}[email] == "member"
