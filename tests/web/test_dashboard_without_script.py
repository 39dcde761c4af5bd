"""Every form works with JavaScript turned off: the script only adds copy buttons and confirmations."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from support.browser import run_async
from support.gateway import Gateway
from support.oauth import new_person


def test_keys_are_created_and_revoked_with_javascript_off(browser: Browser, web_gateway: Gateway) -> None:
    owner = run_async(new_person, web_gateway, "No Script Org")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.goto(f"{web_gateway.url}/app")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(owner.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="API keys").click()
    page.get_by_label("Name", exact=True).fill("scriptless")
    page.get_by_role("button", name="Create key").click()
    assert page.get_by_role("textbox", name="Key value").input_value().startswith("mg_")
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="API keys").click()
    page.get_by_role("button", name="Revoke scriptless").click()
    expect(page.get_by_role("status")).to_contain_text("API key revoked")
    expect(page.get_by_role("row").filter(has_text="scriptless")).to_have_count(0)
    context.close()


def test_virtual_mcps_are_created_and_deleted_with_javascript_off(browser: Browser, web_gateway: Gateway) -> None:
    owner = run_async(new_person, web_gateway, "No Script Virtual Org")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.goto(f"{web_gateway.url}/app")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(owner.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Virtual MCPs").click()
    page.get_by_role("link", name="New virtual MCP").click()
    page.get_by_label("Name", exact=True).fill("Scriptless desk")
    page.get_by_role("button", name="Create virtual MCP").click()
    expect(page.get_by_role("status")).to_have_text("Virtual MCP created.")
    expect(page.get_by_role("heading", name="Scriptless desk")).to_be_visible()
    page.get_by_role("button", name="Delete virtual MCP").click()
    expect(page.get_by_role("status")).to_have_text("Virtual MCP deleted.")
    expect(page.get_by_role("row").filter(has_text="Scriptless desk")).to_have_count(0)
    context.close()
