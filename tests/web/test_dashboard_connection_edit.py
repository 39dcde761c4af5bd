"""Editing a connection in a real browser: a STDIO connection shows its command and arguments (configuration),
never its environment's values; the edit form holds every non-secret value, so saving one changed field
leaves the command, arguments, environment, token and headers as they were (issue 22, point 5)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from support.browser import log_in, run_async, shot
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, connection_request, rpc, start_gateway
from support.oauth import Person, new_person
from support.secrets import remember_secret

TESTS = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def local_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway in local mode (STDIO connections), on SQLite like the other dashboard tests."""
    tmp = tmp_path_factory.mktemp("gw-web-local")
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(url, tmp, MESHGATE_LOCAL_MODE="1")
        try:
            yield gateway
        finally:
            code = gateway.stop()
            assert code == 0, f"gateway exited with {code}:\n{gateway.logs()[-3000:]}"


def _tool(gateway: Gateway, person: Person, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A management tool's structured result, called with the person's API key."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    result = rpc(gateway.mcp_url, body, key=person.api_key).json()["result"]
    assert not result.get("isError"), result
    return result["structuredContent"]


def _call_through(gateway: Gateway, person: Person, connection_id: str, tool: str) -> str:
    """The text a tool of the connection answers, called through the gateway (REST call-tool)."""
    answer = httpx.post(
        f"{gateway.url}/mcp/{connection_id}/call-tool/{tool}",
        json={},
        headers={"authorization": f"Bearer {person.api_key}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert not result.get("isError"), result
    return result["content"][0]["text"]


def _open(page: Page, gateway: Gateway, person: Person, connection_id: str) -> None:
    log_in(page, gateway, person.email, person.password)
    page.goto(page.url.rsplit("/", 1)[0] + f"/connections/{connection_id}")


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Connection saved.")


def test_stdio_connection_shows_its_command_and_keeps_it_when_only_the_title_changes(
    browser: Browser, local_gateway: Gateway
) -> None:
    person: Person = run_async(new_person, local_gateway, "Stdio Page Org")
    marker = remember_secret("stdio-env-secret-4471")
    stdio = {
        "command": sys.executable,
        "args": ["-m", "support.stdio_upstream"],
        "cwd": TESTS,
        "envVars": {"PYTHONPATH": TESTS, "MARKER": marker, "EXTRA": remember_secret("extra-env-secret-9")},
    }
    created = _tool(
        local_gateway,
        person,
        "COLLECTION_CONNECTIONS_CREATE",
        {"data": {"title": "Local tools", "connection_type": "STDIO", "connection_headers": stdio}},
    )
    assert created["status"] == "active", created
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    _open(page, local_gateway, person, created["id"])

    facts = page.locator("dl.facts")
    expect(facts).to_contain_text(sys.executable)
    expect(facts.locator("ol.args li")).to_have_text(["-m", "support.stdio_upstream"])
    expect(facts).to_contain_text(TESTS)
    expect(facts).to_contain_text("environment variables EXTRA, MARKER, PYTHONPATH")
    assert marker not in page.content()
    shot(page, "17-connection-stdio")

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Command")).to_have_value(sys.executable)
    expect(page.get_by_label("Arguments")).to_have_value("-m\nsupport.stdio_upstream")
    expect(page.get_by_label("Working directory")).to_have_value(TESTS)
    expect(page.get_by_label("MARKER new value")).to_have_value("")
    assert marker not in page.content()
    shot(page, "16-connection-edit-stdio")
    page.get_by_label("Name", exact=True).fill("Local tools, renamed")
    _save(page)
    expect(page.get_by_role("heading", name="Local tools, renamed")).to_be_visible()

    kept = _tool(local_gateway, person, "COLLECTION_CONNECTIONS_GET", {"id": created["id"]})
    assert kept["connection_headers"] == {
        "set": True,
        "names": ["EXTRA", "MARKER", "PYTHONPATH"],
        "command": sys.executable,
        "args": ["-m", "support.stdio_upstream"],
        "cwd": TESTS,
    }
    assert kept["status"] == "active"
    assert json.loads(_call_through(local_gateway, person, created["id"], "env"))["marker"] == marker

    # One variable given a new value and one removed: the others keep their values without retyping.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("MARKER new value").fill(remember_secret("stdio-env-secret-new-52"))
    page.get_by_label("Remove EXTRA").check()
    _save(page)
    assert "stdio-env-secret-new-52" not in page.content()
    seen = json.loads(_call_through(local_gateway, person, created["id"], "env"))
    assert seen["marker"] == "stdio-env-secret-new-52"
    assert "EXTRA" not in seen["names"] and "PYTHONPATH" in seen["names"]
    context.close()


def test_http_connection_edit_keeps_its_token_and_headers_when_only_the_title_changes(
    browser: Browser, local_gateway: Gateway, upstream: Upstream
) -> None:
    person: Person = run_async(new_person, local_gateway, "Http Page Org")
    tenant = remember_secret("tenant-header-secret-3318")
    request = connection_request(upstream, "Remote tools")
    request["params"]["arguments"]["data"]["connection_headers"] = {"X-Tenant": tenant}
    created = rpc(local_gateway.mcp_url, request, key=person.api_key).json()["result"]["structuredContent"]
    assert created["status"] == "active", created
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    _open(page, local_gateway, person, created["id"])
    expect(page.locator("dl.facts")).to_contain_text("headers X-Tenant")

    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Server URL")).to_have_value(upstream.url)
    expect(page.get_by_label("X-Tenant new value")).to_have_value("")
    assert tenant not in page.content() and upstream.token not in page.content()
    page.get_by_label("Name", exact=True).fill("Remote tools, renamed")
    _save(page)

    kept = _tool(local_gateway, person, "COLLECTION_CONNECTIONS_GET", {"id": created["id"]})
    assert kept["title"] == "Remote tools, renamed" and kept["status"] == "active"
    assert kept["connection_token"] == {"set": True}
    assert kept["connection_headers"] == {"set": True, "names": ["X-Tenant"]}
    assert f"x-tenant: {tenant}" in _call_through(local_gateway, person, created["id"], "headers_text")

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Remove X-Tenant").check()
    _save(page)
    removed = _tool(local_gateway, person, "COLLECTION_CONNECTIONS_GET", {"id": created["id"]})
    assert removed["connection_headers"] == {"set": False, "names": []}
    assert removed["connection_token"] == {"set": True}
    assert "x-tenant" not in _call_through(local_gateway, person, created["id"], "headers_text")
    context.close()


def test_oauth_client_id_and_scope_are_filled_in_and_a_new_scope_keeps_the_client_secret(
    browser: Browser, local_gateway: Gateway, upstream: Upstream
) -> None:
    person: Person = run_async(new_person, local_gateway, "OAuth Edit Org")
    client_secret = remember_secret("oauth-client-secret-6620")
    oauth = {"client_id": "meshgate-by-hand", "client_secret": client_secret, "scope": "read"}
    data = {"title": "Pre-registered", "connection_type": "HTTP", "connection_url": upstream.url, "oauth": oauth}
    created = _tool(local_gateway, person, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    _open(page, local_gateway, person, created["id"])
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Client id")).to_have_value("meshgate-by-hand")
    expect(page.get_by_label("Scopes")).to_have_value("read")
    expect(page.get_by_role("textbox", name="Client secret")).to_have_value("")
    assert client_secret not in page.content()
    page.get_by_label("Scopes").fill("read write")
    _save(page)
    shown = _tool(local_gateway, person, "COLLECTION_CONNECTIONS_GET", {"id": created["id"]})["oauth"]
    assert shown == {
        "enabled": True,
        "client_id": "meshgate-by-hand",
        "scope": "read write",
        "client_secret": {"set": True},
    }

    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Remove the stored client secret").check()
    _save(page)
    shown = _tool(local_gateway, person, "COLLECTION_CONNECTIONS_GET", {"id": created["id"]})["oauth"]
    assert shown["client_secret"] == {"set": False} and shown["client_id"] == "meshgate-by-hand"
    context.close()
