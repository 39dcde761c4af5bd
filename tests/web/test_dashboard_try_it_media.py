""" "Try it" shows what a tool answered as what it is: an image (PNG, never SVG), an audio player, a link (only
to a web address) and an embedded resource; a tool without arguments gets a single "Run" button; the page
says up front that it cannot answer a server that asks back (sampling, elicitation, roots)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import add_connection
from support.browser import log_in, run_async, shot
from support.gateway import Gateway, Upstream, start_upstream
from support.media_tools import EMBEDDED_TEXT, PIXEL_PNG, SCRIPT_LINK, SILENT_WAV, WEB_LINK
from support.oauth import new_person
from support.secrets import remember_secret


@pytest.fixture(scope="module")
def library() -> Iterator[Upstream]:
    """An SDK-built upstream whose `--library` tools answer images, audio, links and embedded resources."""
    server = start_upstream(token=remember_secret("media-upstream-token-1"), library=True)
    yield server
    server.kill()


ORGS = itertools.count(1)


@pytest.fixture
def page(browser: Browser, web_gateway: Gateway, library: Upstream) -> Iterator[Page]:
    owner = run_async(new_person, web_gateway, f"Media Org {next(ORGS)}")
    run_async(add_connection, web_gateway, owner.api_key, library, title="Media")
    opened = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    log_in(opened, web_gateway, owner.email, owner.password)
    opened.get_by_role("link", name="Media").first.click()
    expect(opened.get_by_role("heading", name="Media")).to_be_visible()
    yield opened
    opened.context.close()


def _run(page: Page, tool: str) -> None:
    page.get_by_role("link", name=f"Try {tool}", exact=True).click()
    form = page.locator("form.card")
    expect(form.locator("input:not([type=hidden]), textarea, select")).to_have_count(0)  # no empty form
    expect(form.get_by_role("button")).to_have_text(["Run"])
    expect(form.get_by_text("This tool takes no arguments.")).to_be_visible()
    page.get_by_role("button", name="Run", exact=True).click()


def test_an_image_result_is_an_img_and_an_svg_is_only_described(page: Page) -> None:
    _run(page, "picture")
    result = page.get_by_role("region", name="Result ok")
    images = result.locator("img")
    expect(images).to_have_count(1)
    expect(images).to_have_attribute("src", "data:image/png;base64," + PIXEL_PNG)
    assert page.evaluate("() => document.querySelector('figure img').naturalWidth") == 1  # the browser shows it
    expect(result.get_by_text("an image of type image/svg+xml, 71 bytes (not shown).")).to_be_visible()
    assert page.locator("svg script, img[src*='svg']").count() == 0
    shot(page, "05b-try-it-image")  # checks every control has a name, too


def test_an_audio_result_is_a_player(page: Page) -> None:
    _run(page, "sound")
    audio = page.get_by_role("region", name="Result ok").locator("audio")
    expect(audio).to_have_count(1)
    expect(audio).to_have_attribute("src", "data:audio/wav;base64," + SILENT_WAV)
    expect(audio).to_have_attribute("controls", "")


def test_a_resource_link_is_a_link_only_to_a_web_address(page: Page) -> None:
    _run(page, "links")
    result = page.get_by_role("region", name="Result ok")
    expect(result.get_by_role("link", name="report")).to_have_attribute("href", WEB_LINK)
    expect(result.get_by_text("The full report", exact=True)).to_be_visible()
    expect(result.get_by_role("link", name="sneaky")).to_have_count(0)
    expect(result.get_by_text(SCRIPT_LINK, exact=True)).to_be_visible()  # shown as text
    assert result.locator("a[href^='javascript']").count() == 0


def test_an_embedded_resource_shows_its_uri_and_text_escaped_and_a_blob_as_a_download(page: Page) -> None:
    page.get_by_role("link", name="Try embedded", exact=True).click()
    expect(page.get_by_role("button", name="Run", exact=True)).to_have_count(0)  # it has an argument
    page.get_by_label("note", exact=True).fill("<b>typed</b>")
    page.get_by_role("button", name="Call embedded").click()
    result = page.get_by_role("region", name="Result ok")
    expect(result.get_by_text("memo://note.txt", exact=True)).to_be_visible()
    expect(result.locator("pre.content-text")).to_have_text(EMBEDDED_TEXT + "<b>typed</b>")
    expect(result.locator("pre.content-text i, pre.content-text b")).to_have_count(0)
    expect(result.get_by_text("memo://data.bin", exact=True)).to_be_visible()
    download = result.get_by_role("link", name="Download data.bin")
    expect(download).to_have_attribute("href", "data:application/octet-stream;base64,AAEC")
    expect(result.get_by_text("application/octet-stream, 3 bytes")).to_be_visible()


def test_the_page_says_it_cannot_answer_a_server_that_asks_back(page: Page) -> None:
    note = "If the tool asks back while it runs (sampling, elicitation or roots), this page cannot answer"
    page.get_by_role("link", name="Try echo", exact=True).click()
    expect(page.locator("#asks-note")).to_contain_text(note)  # above the form of every tool
    page.get_by_role("link", name="Media").first.click()
    _run(page, "sample")
    expect(page.locator("#asks-note")).to_contain_text(note)
    # What the note says happens: the server's sampling request is refused, and the call fails.
    expect(page.get_by_role("region", name="Result error").get_by_role("alert")).to_contain_text(
        "cannot answer server-to-client requests"
    )
