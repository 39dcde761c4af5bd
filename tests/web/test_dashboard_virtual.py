"""Virtual MCPs in a real browser: create one over the test upstream with an allowlist, a rename and a new
description, see the preview list the tools as clients will, call the renamed tool through the endpoint
with the official MCP SDK, show a refused edit next to its form, then delete it."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, Page, expect

from conftest import add_connection
from support.browser import SCREENSHOTS, log_in, run_async, shot
from support.gateway import Gateway, Upstream
from support.mcp_client import connect, tool_names
from support.oauth import Person, new_person


async def _through_endpoint(url: str, key: str) -> tuple[set[str], dict[str, Any]]:
    async with connect(url, key) as client:
        names = await tool_names(client)
        result = await client.call_tool("say", {"text": "through the virtual MCP"})
    assert not result.is_error
    return names, result.structured_content or {}


def _choose_tools(page: Page) -> None:
    page.get_by_label("Include Demo tools").check()
    page.get_by_label("Only the tools checked below").check()
    for box in page.get_by_role("checkbox", name="from Demo tools").all():
        box.uncheck()
    page.get_by_role("checkbox", name="echo from Demo tools", exact=True).check()
    page.get_by_role("checkbox", name="add from Demo tools", exact=True).check()
    expect(page.get_by_label("Name for echo from Demo tools")).to_have_attribute("placeholder", "demo_tools_echo")
    page.get_by_label("Name for echo from Demo tools").fill("say")
    page.get_by_label("Description for add from Demo tools").fill("Sum two numbers")


def test_admin_builds_a_virtual_mcp_and_a_client_calls_its_renamed_tool(
    browser: Browser, web_gateway: Gateway, upstream: Upstream
) -> None:
    person: Person = run_async(new_person, web_gateway, "Orbit Labs")
    run_async(add_connection, web_gateway, person.api_key, upstream, title="Demo tools")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, web_gateway, person.email, person.password)
    nav = page.get_by_role("navigation", name="Dashboard")

    nav.get_by_role("link", name="Virtual MCPs").click()
    page.get_by_role("link", name="New virtual MCP").click()
    page.get_by_label("Name", exact=True).fill("Support desk")
    page.get_by_label("Description (optional)").fill("What the support assistant may use")
    _choose_tools(page)
    expect(page.locator("[data-preview]")).not_to_have_attribute("aria-busy", "true")
    shown = page.get_by_role("region", name="Names clients will see").get_by_role("listitem")
    expect(shown).to_have_text(["say", "demo_tools_add"])
    shot(page, "13b-virtual-mcp-form")
    page.get_by_role("button", name="Create virtual MCP").click()

    expect(page.get_by_role("status")).to_have_text("Virtual MCP created.")
    preview = page.get_by_role("region", name="Tools as clients see them")
    expect(preview.get_by_role("row")).to_have_count(3)  # the header and two tools
    expect(preview.get_by_role("row").filter(has_text="say")).to_contain_text("Echo text back")
    expect(preview.get_by_role("row").filter(has_text="demo_tools_add")).to_contain_text("Sum two numbers")
    shot(page, "13c-virtual-mcp-preview")
    url = page.locator("#endpoint-url").inner_text()
    assert url.endswith("/mcp/virtual/" + page.url.rsplit("/", 1)[1].split("?")[0])

    names, answer = run_async(_through_endpoint, url, person.api_key)
    assert names == {"say", "demo_tools_add"}
    assert answer["text"] == "through the virtual MCP"

    # A name clients could not use is refused by the tool, shown next to the form, and the typing kept.
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Name for echo from Demo tools")).to_have_value("say")
    page.get_by_label("Name for add from Demo tools").fill("not a name!")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("tool_overrides.add.name")
    expect(page.get_by_label("Name for add from Demo tools")).to_have_value("not a name!")
    page.get_by_role("link", name="Cancel").click()
    narrow = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
    small = narrow.new_page()
    small.goto(page.url.replace("?notice=virtual-created", "") + "/edit")
    expect(small.get_by_label("Name for echo from Demo tools")).to_have_value("say")
    shot(small, "13d-virtual-mcp-narrow")
    narrow.close()

    nav.get_by_role("link", name="Virtual MCPs").click()
    row = page.get_by_role("row").filter(has_text="Support desk")
    expect(row).to_contain_text(url)
    expect(row.get_by_role("button", name="Copy the endpoint of Support desk")).to_be_visible()
    shot(page, "13-virtual-mcps")

    row.get_by_role("link", name="Support desk").click()
    page.get_by_role("button", name="Delete virtual MCP").click()
    expect(page.get_by_role("status")).to_have_text("Virtual MCP deleted.")
    expect(page.get_by_text("No virtual MCPs yet.")).to_be_visible()
    assert SCREENSHOTS.joinpath("13-virtual-mcps.png").exists()
    context.close()
