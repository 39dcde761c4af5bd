"""Refusals in the dashboard are pages that help: an unknown path under /app is a page with a way back, not
a bare JSON 404, for visitors signed in or not; deleting a connection that virtual MCPs use names and links
them."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conftest import add_connection
from support.browser import log_in, run_async
from support.gateway import Gateway, Upstream
from support.mcp_client import call, connect
from support.oauth import new_person


def test_an_unknown_dashboard_path_is_a_page_with_a_way_back(browser: Browser, web_gateway: Gateway) -> None:
    owner = run_async(new_person, web_gateway, "Lost Inc")
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    log_in(page, web_gateway, owner.email, owner.password)

    answer = page.goto(f"{web_gateway.url}/app/no-such-org/<b>nothing</b>")
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_text("There is no dashboard page at /app/no-such-org/<b>nothing</b>.")).to_be_visible()
    expect(page.locator("b")).to_have_count(0)  # the path is shown as text, never as markup
    page.get_by_role("link", name="Go to the dashboard").click()
    expect(page.get_by_role("heading", name="Connections", exact=True)).to_be_visible()
    context.close()

    stranger = browser.new_page()
    answer = stranger.goto(f"{web_gateway.url}/app/static/nothing.js")
    assert answer is not None and answer.status == 404
    expect(stranger.get_by_role("heading", name="Page not found")).to_be_visible()
    stranger.close()


async def _virtual(gateway: Gateway, key: str, title: str, connection_id: str) -> dict[str, object]:
    data = {"title": title, "connections": [{"connection_id": connection_id}]}
    async with connect(gateway.mcp_url, key) as client:
        return await call(client, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data})


def test_deleting_a_connection_in_use_names_and_links_its_virtual_mcps(
    browser: Browser, web_gateway: Gateway, upstream: Upstream
) -> None:
    owner = run_async(new_person, web_gateway, "Used Inc")
    connection = run_async(add_connection, web_gateway, owner.api_key, upstream, title="Shared tools")
    first = run_async(_virtual, web_gateway, owner.api_key, "Everything", str(connection["id"]))
    run_async(_virtual, web_gateway, owner.api_key, "Support desk", str(connection["id"]))
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, web_gateway, owner.email, owner.password)
    page.get_by_role("link", name="Shared tools").first.click()
    page.get_by_role("button", name="Delete connection").click()

    expect(page.get_by_role("heading", name="Connection in use")).to_be_visible()
    expect(page.get_by_role("link", name="Support desk")).to_be_visible()
    page.get_by_role("link", name="Everything").click()
    assert page.url.endswith(f"/virtual/{first['id']}")
    expect(page.get_by_role("heading", name="Everything")).to_be_visible()
    context.close()
