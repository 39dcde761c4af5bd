"""An OAuth-protected upstream connected from the dashboard: the button leads through the server's login
(the test server approves at once) and back, after which the connection answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from support.browser import SCREENSHOTS, run_async
from support.gateway import Gateway, free_port, spawn_server
from support.oauth import new_person


@pytest.fixture(scope="module")
def oauth_upstream_url() -> Iterator[str]:
    port = free_port()
    process = spawn_server("support.oauth_upstream", port, ["--port", str(port), "--token-seconds", "300"])
    yield f"http://127.0.0.1:{port}/mcp"
    process.kill()
    process.wait(timeout=10)


def test_the_oauth_button_authorizes_an_upstream(
    browser: Browser, web_gateway: Gateway, oauth_upstream_url: str
) -> None:
    owner = run_async(new_person, web_gateway, "OAuth Team")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{web_gateway.url}/app")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(owner.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New HTTP connection").click()
    page.get_by_label("Name", exact=True).fill("Protected server")
    page.get_by_label("Server URL", exact=True).fill(oauth_upstream_url)
    page.get_by_label("The server asks for an OAuth login").check()
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_text("OAuth authorization needed")).to_be_visible()
    detail = page.url.split("?")[0]
    page.get_by_role("button", name="Connect with OAuth").click()
    expect(page.get_by_role("heading", name="Connected")).to_be_visible()
    page.goto(detail)
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Healthy: answered a ping in")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "04b-oauth-connection.png"), full_page=True)
    # Saving a new name keeps the OAuth setup and the tokens it got: the connection still answers.
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("The server asks for an OAuth login")).to_be_checked()
    page.get_by_label("Name", exact=True).fill("Protected server, renamed")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Connection saved.")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Healthy: answered a ping in")).to_be_visible()
    context.close()
