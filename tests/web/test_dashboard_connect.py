""" "Connect a client" in a real browser: a virtual MCP in search mode, and every snippet the page renders
parsed the way its client reads it (JSON configs as JSON, shell commands with shlex, the Python with
compile()); the curl, Python and TypeScript snippets are run against the gateway with a real key. Then a
member: no link on any page they can reach leads to a refusal, and no "use YOUR_API_KEY" they cannot get."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import add_connection
from support import server_everything
from support.browser import Login, add_member, log_in, run_async, shot
from support.gateway import Gateway, Upstream, manage
from support.oauth import Person, new_person

SEARCH_TOOLS = {"search_tools", "describe_tools", "call_tool"}


def _snippets(page: Page) -> dict[str, tuple[str, str]]:
    """Each snippet's (language, text) by title, as the page shows them."""
    found: dict[str, tuple[str, str]] = {}
    for section in page.locator("section.snippet").all():
        title = section.get_by_role("heading").inner_text()
        found[title] = (str(section.get_attribute("data-language")), section.locator("pre").inner_text())
    return found


def _tool_names_from_curl(text: str, key: str) -> set[str]:
    argv = shlex.split(text.replace("YOUR_API_KEY", key))
    assert argv[0] == "curl"
    answer = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    data = [line[5:] for line in answer.splitlines() if line.startswith("data:")] or [answer]
    message = json.loads(data[-1])
    assert "result" in message, message
    return {tool["name"] for tool in message["result"]["tools"]}


def _run_python(text: str, key: str, tmp: Path) -> set[str]:
    compile(text, "snippet.py", "exec")
    script = tmp / "snippet.py"
    script.write_text(text.replace("YOUR_API_KEY", key))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    return set(eval(out.stdout.strip()))  # noqa: S307  # the snippet prints a Python list of names


def _run_typescript(text: str, key: str, tmp: Path) -> set[str]:
    """The snippet as an ES module beside the MCP TypeScript SDK that `.tools/` holds."""
    script = server_everything.TOOLS / f"snippet-{os.getpid()}.mjs"
    script.write_text(text.replace("YOUR_API_KEY", key).replace("console.log(", "console.log(JSON.stringify(", 1)
                      .replace("tool.name));", "tool.name)));", 1))  # fmt: skip
    try:
        out = subprocess.run(
            [str(server_everything.NODE), str(script)], capture_output=True, text=True, timeout=60, check=True, cwd=tmp
        )
    finally:
        script.unlink()
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _check_configs(snippets: dict[str, tuple[str, str]], url: str, name: str) -> None:
    """The JSON configs and shell commands say what their client needs, where it looks for it."""
    languages = {title: language for title, (language, _) in snippets.items()}
    assert languages == {
        "Claude Desktop": "json",
        "Claude Code": "shell",
        "Cursor": "json",
        "VS Code": "json",
        "Windsurf": "json",
        "MCP Inspector": "shell",
        "MCP Python SDK": "python",
        "MCP TypeScript SDK": "typescript",
        "curl": "shell",
    }
    claude = json.loads(snippets["Claude Desktop"][1])["mcpServers"][name]
    assert claude == {"command": "npx", "args": ["-y", "mcp-remote", url]}
    cursor = json.loads(snippets["Cursor"][1])["mcpServers"][name]
    assert cursor == {"url": url, "headers": {"Authorization": "Bearer YOUR_API_KEY"}}
    vscode = json.loads(snippets["VS Code"][1])
    assert vscode["servers"][name]["type"] == "http"
    assert vscode["servers"][name]["url"] == url
    assert vscode["inputs"][0]["id"] in vscode["servers"][name]["headers"]["Authorization"]
    windsurf = json.loads(snippets["Windsurf"][1])["mcpServers"][name]
    assert windsurf["serverUrl"] == url
    code = shlex.split(snippets["Claude Code"][1])
    assert code[:6] == ["claude", "mcp", "add", "--transport", "http", name]
    assert code[6] == url
    assert code[code.index("--header") + 1] == "Authorization: Bearer YOUR_API_KEY"
    inspector = shlex.split(snippets["MCP Inspector"][1])
    assert inspector[:4] == ["npx", "@modelcontextprotocol/inspector", "--cli", url]
    assert inspector[inspector.index("--transport") + 1] == "http"


def test_connect_page_snippets_reach_a_virtual_mcp_in_search_mode(
    browser: Browser, web_gateway: Gateway, upstream: Upstream, tmp_path: Path
) -> None:
    person: Person = run_async(new_person, web_gateway, "Snippet Works")
    connection = run_async(add_connection, web_gateway, person.api_key, upstream, title="Demo tools")
    data = {"title": "Support desk", "connections": [{"connection_id": connection["id"]}]}
    virtual = manage(web_gateway, person.api_key, "COLLECTION_VIRTUAL_MCP_CREATE", data=data)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, web_gateway, person.email, person.password)

    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Connect a client").click()
    expect(page.get_by_role("link", name="API key", exact=True)).to_be_visible()
    page.get_by_label("Endpoint", exact=True).select_option(label=f"Support desk ({virtual['id'][:8]}…)")
    page.get_by_label("Virtual MCP mode").select_option("search")
    page.get_by_role("button", name="Show").click()
    url = f"{web_gateway.url}/mcp/virtual/{virtual['id']}?mode=search"
    expect(page.locator("#endpoint-url")).to_have_text(url)
    expect(page.get_by_label("Virtual MCP mode")).to_have_value("search")
    shot(page, "11b-connect-a-virtual-mcp")

    snippets = _snippets(page)
    _check_configs(snippets, url, "support-desk-search")
    assert _tool_names_from_curl(snippets["curl"][1], person.api_key) == SEARCH_TOOLS
    assert _run_python(snippets["MCP Python SDK"][1], person.api_key, tmp_path) == SEARCH_TOOLS

    # A connection's endpoint: the URL and every snippet follow, and the mode choice does not apply.
    page.get_by_label("Endpoint", exact=True).select_option(label=f"Demo tools ({connection['id'][:8]}…)")
    page.get_by_role("button", name="Show").click()
    direct = f"{web_gateway.url}/mcp/{connection['id']}"
    expect(page.locator("#endpoint-url")).to_have_text(direct)
    snippets = _snippets(page)
    _check_configs(snippets, direct, "demo-tools")
    assert "echo" in _tool_names_from_curl(snippets["curl"][1], person.api_key)
    context.close()


def test_typescript_snippet_runs_against_the_gateway(browser: Browser, web_gateway: Gateway, tmp_path: Path) -> None:
    reason = server_everything.missing()  # node ≥ 22 and the MCP TypeScript SDK come with it into .tools/
    if reason is not None:
        if os.environ.get("CI") == "true" or os.environ.get("MESHGATE_REQUIRE_ALL_BACKENDS"):
            pytest.fail(f"node and the TypeScript SDK are required in CI but missing: {reason}")
        pytest.skip(f"node and the TypeScript SDK are not installed: {reason}")
    person: Person = run_async(new_person, web_gateway, "Snippet Scripts")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, web_gateway, person.email, person.password)
    page.goto(f"{web_gateway.url}/app/{_slug(page)}/connect")
    text = _snippets(page)["MCP TypeScript SDK"][1]
    assert {"ORGANIZATION_LIST", "COLLECTION_CONNECTIONS_LIST"} <= _run_typescript(text, person.api_key, tmp_path)
    context.close()


def _slug(page: Page) -> str:
    return urlsplit(page.url).path.split("/")[2]


def _links(page: Page) -> set[str]:
    hrefs: list[Any] = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    return {urljoin(page.url, str(h)).split("#")[0] for h in hrefs if not str(h).startswith("#")}


def test_member_sees_only_links_they_can_open(browser: Browser, web_gateway: Gateway, upstream: Upstream) -> None:
    person: Person = run_async(new_person, web_gateway, "Member Links")
    run_async(add_connection, web_gateway, person.api_key, upstream, title="Shared tools")
    member: Login = run_async(add_member, web_gateway, person.organization_id)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    log_in(page, web_gateway, member.email, member.password)
    root = f"{web_gateway.url}/app/{_slug(page)}"
    expect(page.get_by_role("row").filter(has_text="Shared tools")).to_be_visible()
    expect(page.get_by_role("link", name="Shared tools")).to_have_count(0)  # its page needs COLLECTION_CONNECTIONS_GET

    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name="Connect a client").click()
    expect(page.locator("#key-hint")).to_contain_text("ask an administrator")
    expect(page.get_by_role("link", name="API key", exact=True)).to_have_count(0)
    shot(page, "11c-connect-as-member")

    # Every page the member can reach from the dashboard, and every link on those pages, opens.
    seen: set[str] = set()
    queue = [f"{root}/connections"]
    while queue:
        url = queue.pop()
        if url in seen or not url.startswith(web_gateway.url) or "/logout" in url:
            continue
        seen.add(url)
        answer = context.request.get(url, max_redirects=0)
        assert answer.status < 400, f"{url} answers {answer.status} to a member (linked from the dashboard)"
        if answer.ok and "text/html" in answer.headers.get("content-type", "") and url.startswith(root):
            page.goto(url)
            queue.extend(_links(page) - seen)
    assert {f"{root}/connections", f"{root}/connect", f"{root}/apps"} <= seen, seen
    context.close()
