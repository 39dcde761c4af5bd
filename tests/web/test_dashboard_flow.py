"""The dashboard in a real browser: log in, connect an upstream, test it, call a tool, find the call in
the audit log, create and revoke an API key, and a member who cannot see admin pages.

Screenshots of every main page go to docs/screenshots/ (committed; the README points there)."""

from __future__ import annotations

import time

import httpx
from playwright.sync_api import Browser, expect

from support.audit import seed_history
from support.browser import SCREENSHOTS, Login, add_member, log_in, run_async, shot
from support.gateway import Gateway, Upstream, manage
from support.oauth import Person, new_person
from support.secrets import remember_secret


def mcp_status(gateway: Gateway, key: str) -> int:
    """HTTP status of a management call made with `key` (200 works, 401 refused)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "ORGANIZATION_LIST", "arguments": {}}}
    headers = {"authorization": f"Bearer {key}", "accept": "application/json, text/event-stream"}
    return httpx.post(gateway.mcp_url, json=body, headers=headers, timeout=30).status_code


def test_admin_runs_the_gateway_from_the_browser(browser: Browser, web_gateway: Gateway, upstream: Upstream) -> None:
    person: Person = run_async(new_person, web_gateway, "Acme Robotics")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{web_gateway.url}/app")
    shot(page, "01-login")
    log_in(page, web_gateway, person.email, person.password)
    shot(page, "02-connections-empty")
    page.keyboard.press("Tab")  # keyboard users can jump past the navigation
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    # Create a connection to the test upstream.
    page.get_by_role("link", name="New HTTP connection").click()
    page.get_by_label("Name", exact=True).fill("Demo tools")
    page.get_by_label("Description").fill("The SDK-built test server")
    page.get_by_label("Server URL", exact=True).fill(upstream.url)
    page.get_by_label("Bearer token").fill(upstream.token)
    shot(page, "03-connection-new")
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_role("status")).to_have_text("Connection created.")
    expect(page.get_by_role("cell", name="echo", exact=True)).to_be_visible()
    assert upstream.token not in page.content()

    # Test it.
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_text("Healthy: answered a ping in")).to_be_visible()
    shot(page, "04-connection-detail")

    # Call a tool from the "try it" form.
    page.get_by_role("link", name="Try echo").click()
    page.get_by_label("text", exact=True).fill("hello from the browser")
    page.get_by_role("button", name="Call echo").click()
    result = page.get_by_role("region", name="Result ok")
    expect(result.locator("pre").first).to_have_text("hello from the browser")
    shot(page, "05-try-it")

    # Numbers from number inputs, and a tool that fails shows as an error.
    page.get_by_role("link", name="Demo tools").click()
    page.get_by_role("link", name="Try add").click()
    page.get_by_label("a number", exact=True).fill("2")
    page.get_by_label("b number", exact=True).fill("3.5")
    page.get_by_role("button", name="Call add").click()
    expect(page.get_by_role("region", name="Result ok").locator("pre").first).to_have_text("5.5")
    page.get_by_role("link", name="Demo tools").click()
    page.get_by_role("link", name="Try fail").click()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_role("region", name="Result error").locator("pre").first).to_have_text("it failed on purpose")
    connection_id = page.url.split("/connections/")[1].split("/")[0]

    # Find the call in the audit log (written in batches by a background task: wait with a deadline).
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Audit log").click()
    row = page.get_by_role("row").filter(has_text="echo")
    deadline = time.monotonic() + 15
    while page.get_by_role("row").filter(has_text="Demo tools").count() < 3:
        assert time.monotonic() < deadline, "the dashboard call never reached the audit log"
        page.reload()
    expect(row.first).to_contain_text("Demo tools")
    expect(row.first).to_contain_text(person.email)
    row.first.get_by_role("link").click()
    expect(page.get_by_text("hello from the browser").first).to_be_visible()
    expect(page.get_by_text("meshgate dashboard")).to_be_visible()
    shot(page, "07-audit-record")
    run_async(seed_history, web_gateway, person.organization_id, connection_id, person.user_id)
    page.go_back()
    page.reload()
    expect(page.get_by_role("img", name="Calls and errors")).to_be_visible()
    expect(page.get_by_role("img", name="Latency (ms)")).to_be_visible()
    shot(page, "06-audit-log")
    page.locator("#charts").screenshot(path=str(SCREENSHOTS / "06b-audit-charts.png"))
    page.get_by_label("Status").select_option("error")
    page.get_by_label("Tool").fill("fail")
    page.get_by_role("button", name="Filter").click()
    failed_rows = page.get_by_role("row").filter(has_text="fail")
    expect(failed_rows.first).to_contain_text("failed")
    expect(page.get_by_role("row").filter(has_text="echo")).to_have_count(0)

    # Create an API key: shown once, works, then revoked and refused.
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("Laptop client")
    page.get_by_label("Expires after").select_option(label="30 days")
    page.get_by_role("button", name="Create key").click()
    value = remember_secret(page.get_by_label("Key value").input_value())
    assert value.startswith("mg_")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()
    shot(page, "08-api-key-created")
    assert mcp_status(web_gateway, value) == 200
    # Reloading shows the keys without the value, and makes no second key (the form redirected).
    page.reload()
    expect(page.get_by_role("row").filter(has_text="Laptop client")).to_have_count(1)
    expect(page.get_by_label("Key value")).to_have_count(0)
    assert value not in page.content()
    names = [key["name"] for key in manage(web_gateway, person.api_key, "API_KEY_LIST")["items"]]
    assert names.count("Laptop client") == 1, names
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="API keys").click()
    assert value not in page.content()
    page.get_by_role("button", name="Revoke Laptop client").click()
    expect(page.get_by_role("status")).to_contain_text("API key revoked")
    assert mcp_status(web_gateway, value) == 401

    # The other main pages, for the screenshots (and that they render for an owner).
    for link, heading, name in (
        ("Members", "Members", "09-members"),
        ("Roles", "Roles", "10-roles"),
        ("Connect a client", "Connect a client", "11-connect-a-client"),
        ("Settings", "Settings", "12-settings"),
    ):
        page.get_by_role("navigation", name="Dashboard").get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        shot(page, name)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Connections").click()
    shot(page, "02-connections")

    narrow = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
    small = narrow.new_page()
    small.goto(page.url)
    expect(small.get_by_role("heading", name="Connections", exact=True)).to_be_visible()
    shot(small, "14-narrow-screen")
    narrow.close()
    context.close()


def test_member_without_permission_does_not_see_admin_pages(browser: Browser, web_gateway: Gateway) -> None:
    person: Person = run_async(new_person, web_gateway, "Member Corp")
    member: Login = run_async(add_member, web_gateway, person.organization_id)
    context = browser.new_context(viewport={"width": 1280, "height": 760})
    page = context.new_page()
    log_in(page, web_gateway, member.email, member.password)
    nav = page.get_by_role("navigation", name="Dashboard")
    expect(nav.get_by_role("link", name="Connections")).to_be_visible()
    expect(nav.get_by_role("link", name="Authorized apps")).to_be_visible()  # their own OAuth apps
    for admin_page in ("Audit log", "API keys", "Members", "Roles", "Settings"):
        expect(nav.get_by_role("link", name=admin_page)).to_have_count(0)
    expect(page.get_by_role("link", name="New HTTP connection")).to_have_count(0)
    shot(page, "15-member-view")
    root = page.url.rsplit("/", 1)[0]
    for path in ("members", "keys", "audit", "roles", "settings"):
        response = page.goto(f"{root}/{path}")
        assert response is not None
        assert response.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    context.close()
