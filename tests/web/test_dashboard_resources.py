"""A connection page lists the server's resources, resource templates and prompts; a person reads a resource
(by URI or from a template's form) and gets a prompt, through the call pipeline and as themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import add_connection, wait_for_logs
from support.browser import UNLABELLED, add_member, log_in, run_async
from support.gateway import Gateway, Upstream, manage, start_upstream
from support.oauth import Person, new_person
from support.secrets import remember_secret
from support.upstream import MARKUP, PIXEL_PNG


@pytest.fixture(scope="module")
def library() -> Iterator[Upstream]:
    """An SDK-built upstream with resources (two per page), templates and prompts (`--library`)."""
    server = start_upstream(token=remember_secret("library-upstream-token-1"), library=True)
    yield server
    server.kill()


def _owner_on_connection(browser: Browser, gateway: Gateway, upstream: Upstream, org: str) -> tuple[Page, Person, str]:
    owner = run_async(new_person, gateway, org)
    connection = run_async(add_connection, gateway, owner.api_key, upstream, title="Library")
    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    log_in(page, gateway, owner.email, owner.password)
    page.get_by_role("link", name="Library").first.click()
    expect(page.get_by_role("heading", name="Library")).to_be_visible()
    return page, owner, str(connection["id"])


def test_a_connection_page_lists_resources_templates_and_prompts(
    browser: Browser, web_gateway: Gateway, library: Upstream
) -> None:
    page, _owner, _connection_id = _owner_on_connection(browser, web_gateway, library, "Listing Org")

    expect(page.get_by_role("heading", name="Resources", exact=True)).to_be_visible()
    resources = page.locator("table").nth(1)
    for uri in ("memo://one", "memo://markup", "memo://pixel.png", "memo://notes.bin"):  # both pages of the list
        expect(resources.get_by_role("cell", name=uri, exact=True)).to_be_visible()
    expect(resources.get_by_role("row", name="pixel memo://pixel.png image/png A 1x1 image")).to_be_visible()
    expect(resources.get_by_role("cell", name="Text with <b>tags</b>")).to_be_visible()  # text, not markup

    expect(page.get_by_role("heading", name="Resource templates")).to_be_visible()
    expect(page.get_by_role("cell", name="shelf://{shelf}/{book}")).to_be_visible()
    expect(page.get_by_role("heading", name="Prompts")).to_be_visible()
    expect(page.get_by_role("row", name="greet name (required)")).to_be_visible()
    expect(page.get_by_role("row", name="poster A caption and a picture caption")).to_be_visible()
    page.context.close()


def test_reading_a_text_resource_shows_its_text_escaped_and_is_audited(
    browser: Browser, web_gateway: Gateway, library: Upstream
) -> None:
    page, owner, connection_id = _owner_on_connection(browser, web_gateway, library, "Reading Org")
    page.get_by_role("link", name="Read markup").click()

    contents = page.get_by_role("region", name="Contents of memo://markup")
    expect(contents.locator("pre")).to_have_text(MARKUP)
    expect(contents.locator("b")).to_have_count(0)
    assert page.title() != "pwned"
    assert "/resource?uri=memo%3A%2F%2Fmarkup" in page.url  # a GET: the read can be bookmarked

    logs = run_async(wait_for_logs, web_gateway, owner.api_key, 1, connectionId=connection_id, toolName="memo://markup")
    assert [(log["method"], log["caller"]["userId"], log["userAgent"]) for log in logs] == [
        ("resources/read", owner.user_id, "meshgate dashboard")
    ]

    page.go_back()
    page.get_by_role("link", name="Read pixel").click()
    image = page.get_by_role("region", name="Contents of memo://pixel.png").get_by_role("img")
    expect(image).to_have_attribute("src", "data:image/png;base64," + PIXEL_PNG)
    assert page.evaluate("() => document.querySelector('figure img').naturalWidth") == 1  # the browser shows it

    page.go_back()
    page.get_by_role("link", name="Read notes").click()
    download = page.get_by_role("link", name="Download notes.bin")
    expect(download).to_have_attribute("href", "data:application/octet-stream;base64,AAEC")
    expect(page.get_by_text("application/octet-stream, 3 bytes")).to_be_visible()
    page.context.close()


def test_a_template_form_reads_the_expanded_uri(browser: Browser, web_gateway: Gateway, library: Upstream) -> None:
    page, _owner, _connection_id = _owner_on_connection(browser, web_gateway, library, "Template Org")
    page.get_by_role("link", name="Fill in book").click()
    expect(page.get_by_role("heading", name="Resource template shelf://{shelf}/{book}")).to_be_visible()

    page.get_by_label("shelf").fill("Sci Fi")
    page.get_by_label("book").fill("Dune & more/2")
    page.get_by_role("button", name="Read resource").click()

    uri = "shelf://Sci%20Fi/Dune%20%26%20more%2F2"  # each value percent-encoded (RFC 6570 simple expansion)
    expect(page.get_by_role("region", name=f"Contents of {uri}").locator("pre")).to_have_text(f"memo {uri}")
    assert page.evaluate(UNLABELLED) == []
    page.context.close()


def test_a_prompt_form_gets_the_messages_with_the_argument(
    browser: Browser, web_gateway: Gateway, library: Upstream
) -> None:
    page, _owner, _connection_id = _owner_on_connection(browser, web_gateway, library, "Prompt Org")
    page.get_by_role("link", name="Get prompt greet").click()
    expect(page.get_by_label("name (required)")).to_have_attribute("required", "")
    page.get_by_label("name (required)").fill("Ada <i>Lovelace</i>")
    page.get_by_role("button", name="Get greet").click()
    messages = page.get_by_role("region", name="Messages")
    expect(messages.get_by_role("heading", name="user")).to_be_visible()
    expect(messages.locator("pre")).to_have_text("Hello, Ada <i>Lovelace</i>!")

    page.get_by_role("link", name="Library").click()
    page.get_by_role("link", name="Get prompt poster").click()
    page.get_by_label("caption").fill("At the shore")
    page.get_by_role("button", name="Get poster").click()
    messages = page.get_by_role("region", name="Messages")
    expect(messages.locator("pre")).to_have_text("Caption: At the shore")
    expect(messages.get_by_role("heading", name="assistant")).to_be_visible()
    expect(messages.get_by_role("img")).to_have_attribute("src", "data:image/png;base64," + PIXEL_PNG)
    assert page.evaluate(UNLABELLED) == []
    page.context.close()


def test_a_member_without_a_grant_on_the_connection_reads_nothing(
    browser: Browser, web_gateway: Gateway, library: Upstream
) -> None:
    owner = run_async(new_person, web_gateway, "Grant Org")
    connection = run_async(add_connection, web_gateway, owner.api_key, library, title="Library")
    # Members may open connection pages, but hold no tool of this connection.
    looks = {"self": ["ORGANIZATION_GET", "COLLECTION_CONNECTIONS_LIST", "COLLECTION_CONNECTIONS_GET"]}
    manage(web_gateway, owner.api_key, "ORGANIZATION_SETTINGS_UPDATE", member_permissions=looks)
    member = run_async(add_member, web_gateway, owner.organization_id)
    page = browser.new_context().new_page()
    log_in(page, web_gateway, member.email, member.password)
    base = page.url.rsplit("/", 1)[0] + f"/connections/{connection['id']}"

    page.goto(base)
    expect(page.get_by_text("Resources and prompts could not be listed")).to_contain_text("no permission")
    expect(page.get_by_role("heading", name="Resources", exact=True)).to_have_count(0)

    answer = page.goto(base + "/resource?uri=memo%3A%2F%2Fmarkup")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert "not bold" not in page.content()
    answer = page.goto(base + "/prompts/greet")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.context.close()


def test_a_connection_page_shows_its_tools_and_a_note_when_the_server_is_down(
    browser: Browser, web_gateway: Gateway
) -> None:
    gone = start_upstream(token=remember_secret("library-upstream-token-2"), library=True)
    try:
        page, _owner, _connection_id = _owner_on_connection(browser, web_gateway, gone, "Down Org")
        expect(page.get_by_role("heading", name="Prompts")).to_be_visible()
    finally:
        gone.kill()
    page.reload()
    expect(page.get_by_role("cell", name="echo", exact=True)).to_be_visible()
    # The person's upstream session still knows what the server offers: each list says why it is missing.
    expect(page.get_by_role("alert").filter(has_text="Prompts could not be listed")).to_contain_text("unreachable")
    expect(page.get_by_role("row", name="greet name (required)")).to_have_count(0)
    page.context.close()
