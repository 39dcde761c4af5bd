"""The virtual MCP form with twelve connections in a real browser: unticked connections are one line, the
search filters connections and tools by part of their name, the keyboard reaches the search and the
toggles, and the names the form shows are the names an MCP client (the official SDK) lists and calls on the
saved virtual MCP, a name that already carries its connection's slug keeping it once. Without JavaScript
the connections stay collapsed and "Update the names" brings the form back with fresh names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from conftest import add_connection
from support.browser import log_in, run_async, shot
from support.gateway import Gateway, Upstream, start_upstream
from support.mcp_client import connect
from support.oauth import Person, new_person
from support.secrets import remember_secret

TITLES = ["Secret", "Headers", *(f"Team {n:02d}" for n in range(1, 11))]


@pytest.fixture(scope="module")
def wide_upstream() -> Iterator[Upstream]:
    """An upstream with 116 tools: twelve connections to it make a form of over 4,000 fields."""
    server = start_upstream(token=remember_secret("wide-upstream-token-3131"), tools=100)
    yield server
    server.kill()


async def _add_connections(gateway: Gateway, key: str, upstream: Upstream, titles: list[str] = TITLES) -> None:
    for title in titles:
        await add_connection(gateway, key, upstream, title=title)


async def _listed(url: str, key: str) -> list[str]:
    async with connect(url, key) as client:
        return [tool.name for tool in (await client.list_tools()).tools]


async def _listed_and_called(url: str, key: str, echo_name: str) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    async with connect(url, key) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        echoed = await client.call_tool(echo_name, {"text": "routed to echo"})
        summed = await client.call_tool("sum", {"a": 2, "b": 3})
    assert not echoed.is_error and not summed.is_error
    return names, echoed.structured_content or {}, summed.structured_content or {}


def _connection(page: Page, title: str) -> Locator:
    return page.locator("fieldset.connection-choice").filter(has=page.get_by_label(f"Include {title}", exact=True))


def _preview(page: Page) -> list[str]:
    """The names under "Names clients will see", once the page has its answer for the latest change."""
    expect(page.locator("[data-preview]")).not_to_have_attribute("aria-busy", "true")
    return page.get_by_role("region", name="Names clients will see").get_by_role("listitem").all_inner_texts()


def test_a_form_over_twelve_connections_collapses_searches_and_previews_the_names_clients_list(
    browser: Browser, web_gateway: Gateway, upstream: Upstream
) -> None:
    person: Person = run_async(new_person, web_gateway, "Many Connections Org")
    run_async(_add_connections, web_gateway, person.api_key, upstream)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, web_gateway, person.email, person.password)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Virtual MCPs").click()
    page.get_by_role("link", name="New virtual MCP").click()
    expect(page.locator("fieldset.connection-choice")).to_have_count(12)

    # Unticked connections are one line each: none of their tools can be seen or reached.
    expect(page.get_by_role("checkbox", name="from ")).to_have_count(0)
    for title in TITLES:
        expect(page.get_by_label(f"Include {title}", exact=True)).to_be_visible()
    first = page.locator("fieldset.connection-choice").first
    assert first.bounding_box()["height"] < 60  # type: ignore[index]

    # The keyboard reaches the search box and the toggles in page order; Space ticks a connection open.
    page.get_by_label("Instructions for clients (optional)").focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Search tools")).to_be_focused()
    page.keyboard.press("Tab")
    expect(first.get_by_role("checkbox").first).to_be_focused()
    page.keyboard.press("Space")
    expect(first.get_by_role("checkbox").first).to_be_checked()
    expect(first.get_by_role("radio", name="Only the tools checked below")).to_be_visible()
    page.keyboard.press("Space")
    expect(first.get_by_role("radio", name="Only the tools checked below")).to_be_hidden()

    page.get_by_label("Name", exact=True).fill("Many connections")
    page.get_by_label("Include Secret", exact=True).check()
    page.get_by_label("Include Headers", exact=True).check()
    secret, headers = _connection(page, "Secret"), _connection(page, "Headers")
    expect(secret.get_by_role("checkbox", name="echo from Secret", exact=True)).to_be_visible()
    expect(_connection(page, "Team 01").get_by_role("checkbox", name="echo from Team 01", exact=True)).to_be_hidden()
    headers.get_by_role("radio", name="Only the tools checked below").check()
    for box in headers.get_by_role("checkbox", name="from Headers").all():
        box.uncheck()
    for tool in ("headers", "headers_text", "add", "echo"):
        headers.get_by_role("checkbox", name=f"{tool} from Headers", exact=True).check()
    page.get_by_label("Name for add from Headers").fill("sum")

    # The names come from the server's own naming: a slug the tool already carries is kept once, and
    # `echo` on Secret (→ secret_echo) meets Secret's own `secret_echo`: both get a hash, as any clash.
    names = _preview(page)
    expect(page.get_by_label("Name for headers_text from Headers")).to_have_attribute("placeholder", "headers_text")
    expect(page.get_by_label("Name for headers from Headers")).to_have_attribute("placeholder", "headers")
    echo_name = page.get_by_label("Name for echo from Secret").get_attribute("placeholder") or ""
    secret_echo = page.get_by_label("Name for secret_echo from Secret").get_attribute("placeholder") or ""
    assert echo_name.startswith("secret_echo_") and secret_echo.startswith("secret_echo_")
    assert echo_name != secret_echo
    assert {"headers", "headers_text", "sum", "headers_echo", echo_name, secret_echo} <= set(names)
    assert not any(name.startswith(("secret_secret", "headers_headers")) for name in names)
    expect(page.locator("#names-count")).to_contain_text(f"{len(names)} tools")

    # The search filters connections and tools by part of a name, in the page.
    search = page.get_by_label("Search tools")
    search.fill("RS_TEXT")  # part of headers_text, in another case
    expect(page.locator("fieldset.connection-choice:visible")).to_have_count(12)  # every one has headers_text
    expect(headers.locator("tr[data-tool]:visible")).to_have_count(1)
    expect(headers.get_by_role("checkbox", name="headers_text from Headers", exact=True)).to_be_visible()
    expect(secret.get_by_role("checkbox", name="echo from Secret", exact=True)).to_be_hidden()
    expect(_connection(page, "Team 04")).to_contain_text("1 matching")
    search.fill("team 0")
    expect(page.locator("fieldset.connection-choice:visible")).to_have_count(9)
    expect(page.locator("#tool-search-count")).to_have_text("9 connections and 0 tools match.")
    search.fill("no such tool")
    expect(page.locator("fieldset.connection-choice:visible")).to_have_count(0)
    form_url = page.url
    search.press("Enter")  # Enter in the search box does not submit the form
    expect(page.get_by_role("heading", name="New virtual MCP")).to_be_visible()
    assert page.url == form_url
    expect(page.get_by_label("Name", exact=True)).to_have_value("Many connections")
    search.fill("echo")
    expect(secret.locator("tr[data-tool]:visible")).to_have_count(2)  # echo and secret_echo
    shot(page, "13e-virtual-mcp-search")
    search.fill("")
    expect(page.locator("fieldset.connection-choice:visible")).to_have_count(12)

    page.get_by_role("button", name="Create virtual MCP").click()
    expect(page.get_by_role("status")).to_have_text("Virtual MCP created.")
    url = page.locator("#endpoint-url").inner_text()
    listed, echoed, summed = run_async(_listed_and_called, url, person.api_key, echo_name)
    assert listed == names
    assert echoed["text"] == "routed to echo"
    assert summed["sum"] == 5

    # Editing shows the saved names again, computed the same way.
    page.get_by_role("link", name="Edit").click()
    assert _preview(page) == names
    context.close()


def test_twelve_connections_of_116_tools_save_with_two_ticked(
    browser: Browser, web_gateway: Gateway, wide_upstream: Upstream
) -> None:
    person: Person = run_async(new_person, web_gateway, "Wide Connections Org")
    titles = [f"Wide {n:02d}" for n in range(1, 13)]
    run_async(_add_connections, web_gateway, person.api_key, wide_upstream, titles)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, web_gateway, person.email, person.password)
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Virtual MCPs").click()
    page.get_by_role("link", name="New virtual MCP").click()
    expect(page.locator("tr[data-tool]")).to_have_count(12 * 116)
    page.get_by_label("Name", exact=True).fill("Two of twelve")
    page.get_by_label("Include Wide 03", exact=True).check()
    page.get_by_label("Include Wide 11", exact=True).check()
    names = _preview(page)
    assert len(names) == 2 * 116
    # The unticked connections' 3,480 fields stay out of the form, which keeps it under the limit of 4,000.
    page.get_by_role("button", name="Create virtual MCP").click()
    expect(page.get_by_role("status")).to_have_text("Virtual MCP created.")
    url = page.locator("#endpoint-url").inner_text()
    assert run_async(_listed, url, person.api_key) == names
    context.close()


def test_without_javascript_connections_stay_collapsed_and_the_names_are_updated_by_a_button(
    browser: Browser, web_gateway: Gateway, upstream: Upstream
) -> None:
    person: Person = run_async(new_person, web_gateway, "Many Connections No Script")
    run_async(add_connection, web_gateway, person.api_key, upstream, title="Headers")
    run_async(add_connection, web_gateway, person.api_key, upstream, title="Team")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.goto(f"{web_gateway.url}/app")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Virtual MCPs").click()
    page.get_by_role("link", name="New virtual MCP").click()
    expect(page.get_by_label("Search tools")).to_be_hidden()  # it needs the script
    expect(page.get_by_role("checkbox", name="echo from Headers", exact=True)).to_be_hidden()
    page.get_by_label("Include Headers", exact=True).check()
    expect(page.get_by_role("checkbox", name="echo from Headers", exact=True)).to_be_visible()  # CSS alone
    expect(page.get_by_role("region", name="Names clients will see").get_by_role("listitem")).to_have_count(0)
    page.get_by_label("Name", exact=True).fill("No script")
    page.get_by_role("button", name="Update the names").click()
    expect(page.get_by_label("Include Headers", exact=True)).to_be_checked()
    expect(page.get_by_label("Name", exact=True)).to_have_value("No script")
    shown = page.get_by_role("region", name="Names clients will see").get_by_role("listitem").all_inner_texts()
    assert {"headers", "headers_text", "headers_echo"} <= set(shown)
    page.get_by_role("button", name="Create virtual MCP").click()
    expect(page.get_by_role("status")).to_have_text("Virtual MCP created.")
    context.close()
