"""Upstream tool names a person could misread are hidden, refused and shown only escaped (security review 18)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from conftest import add_connection, key_for_user, new_owner, wait_for_logs
from meshgate.protocol import escaped_name, readable_tool_name
from support.gateway import Gateway, Upstream, rpc, start_upstream
from support.mcp_client import MODES, call, connect, tool_names
from support.oauth import forms_of, logged_in, new_person
from support.secrets import remember_secret
from support.upstream import BASE_TOOLS, HIDDEN_NAMES

pytestmark = [pytest.mark.anyio, pytest.mark.finding(18)]

BIDI = "x\u202e\u0007</script>"
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


@pytest.fixture(scope="module")
def spoofing() -> Iterator[Upstream]:
    """An SDK-built upstream that advertises control, bidi, zero-width and look-alike tool names."""
    server = start_upstream(token=remember_secret("spoofing-upstream-token-18"), spoof_names=True)
    yield server
    server.kill()


def test_the_rule_keeps_printable_names_and_hides_misreadable_ones() -> None:
    for name in ("echo", "DATA_EXPORT_v2", "admin.tools.list", "weird name", "path/like.name", "x" * 128):
        assert readable_tool_name(name), name
    for name in (*HIDDEN_NAMES, "", "x" * 129, "tab\tname", "trailing ", None, 7):
        assert not readable_tool_name(name), name
    assert escaped_name(BIDI) == "x\\u202e\\u0007</script>"


@pytest.mark.parametrize("mode", MODES)
async def test_tools_list_through_meshgate_leaves_misreadable_names_out(
    gateway: Gateway, spoofing: Upstream, mode: str
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, spoofing)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key, mode) as client:
        names = await tool_names(client)
    assert names == {tool.name for tool in BASE_TOOLS} | {"path/like.name"}


async def test_keys_granted_one_connection_see_no_misreadable_name(gateway: Gateway, spoofing: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, spoofing)
    every = await key_for_user(gateway, owner.organization_id, owner.user_id, permissions={conn["id"]: ["*"]})
    narrow = await key_for_user(
        gateway, owner.organization_id, owner.user_id, permissions={conn["id"]: ["echo", "path/like.name"]}
    )
    async with connect(f"{gateway.url}/mcp/{conn['id']}", every) as client:
        assert await tool_names(client) == {tool.name for tool in BASE_TOOLS} | {"path/like.name"}
    async with connect(f"{gateway.url}/mcp/{conn['id']}", narrow) as client:
        assert await tool_names(client) == {"echo", "path/like.name"}


async def test_calling_a_hidden_tool_is_refused_before_it_reaches_the_upstream(
    gateway: Gateway, spoofing: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, spoofing)
    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        for name in HIDDEN_NAMES:
            result = await client.call_tool(name, {})
            assert result.is_error, name
            text = result.content[0].text  # type: ignore[union-attr]
            assert text.startswith(f"permission_denied: unknown tool '{escaped_name(name, 100)}'"), text
            assert "\u202e" not in text and text != name  # the upstream would answer with the name itself
        kept = await client.call_tool("path/like.name", {})
        assert not kept.is_error and kept.content[0].text == "path/like.name"  # type: ignore[union-attr]
    rest = httpx.post(
        f"{gateway.url}/mcp/{conn['id']}/call-tool/{quote(BIDI, safe='')}",
        json={},
        headers={"authorization": f"Bearer {owner.api_key}"},
    )
    assert "unknown tool 'x\\\\u202e\\\\u0007</script>'" in rest.text and "\u202e" not in rest.text
    logs = await wait_for_logs(gateway, owner.api_key, len(HIDDEN_NAMES) + 2, connectionId=conn["id"])
    assert all(log["isError"] for log in logs if log["toolName"] != "path/like.name")
    stored = {log["toolName"] for log in logs}
    assert {escaped_name(name) for name in HIDDEN_NAMES} <= stored  # the audit log shows them escaped too
    assert not stored & set(HIDDEN_NAMES)


async def test_a_connection_read_lists_hidden_names_escaped_and_tools_without_them(
    gateway: Gateway, spoofing: Upstream
) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, spoofing)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        read = await call(client, "COLLECTION_CONNECTIONS_GET", {"id": conn["id"]})
    assert "path/like.name" in {tool["name"] for tool in read["tools"]}
    assert not set(HIDDEN_NAMES) & {tool["name"] for tool in read["tools"]}
    assert read["hidden_tools"] == [escaped_name(name) for name in HIDDEN_NAMES]
    assert "\u202e" not in json.dumps(read, ensure_ascii=False)
    assert f"{len(HIDDEN_NAMES)} upstream tool(s) hidden" in gateway.logs()


async def test_a_virtual_mcp_never_offers_a_hidden_tool(gateway: Gateway, spoofing: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, spoofing, title="Spoof")
    data = {"title": "Desk", "connections": [{"connection_id": conn["id"]}]}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        virtual_id = (await call(client, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data}))["id"]
    async with connect(f"{gateway.url}/mcp/virtual/{virtual_id}", owner.api_key) as client:
        names = await tool_names(client)
    assert "spoof_echo" in names and "spoof_path_like.name" in names
    assert all(readable_tool_name(name) and "\u202e" not in name for name in names)
    assert len(names) == len(BASE_TOOLS) + 1


async def test_dashboard_pages_show_hidden_names_escaped_and_never_raw(
    web_gateway: Gateway, spoofing: Upstream
) -> None:
    owner = await new_person(web_gateway, "Spoof Org")
    conn = await add_connection(web_gateway, owner.api_key, spoofing)
    async with logged_in(web_gateway, owner.email, owner.password) as http:
        root = str((await http.get("/app", follow_redirects=True)).url).rsplit("/", 1)[0]
        detail = await http.get(f"{root}/connections/{conn['id']}")
        assert detail.status_code == 200
        assert "<code>x\\u202e\\u0007&lt;/script&gt;</code>" in detail.text
        assert "<code>\\u0435cho</code>" in detail.text
        pickers = [detail, await http.get(f"{root}/settings"), await http.get(f"{root}/keys")]
        roles = await http.get(f"{root}/roles")
        pickers.append(roles)
        for page in pickers:
            assert page.status_code == 200
            for name in HIDDEN_NAMES:
                assert name not in page.text, (page.url, name)
            assert "\u202e" not in page.text and "\u200b" not in page.text
        assert f'value="{conn["id"]}|echo"' in (await http.get(f"{root}/settings")).text
        tool_page = await http.get(f"{root}/connections/{conn['id']}/tools/path/like.name")
        assert tool_page.status_code == 200 and "path/like.name" in tool_page.text
        token = forms_of(tool_page.text).fields["csrf_token"]
        tried = await http.post(f"{root}/connections/{conn['id']}/tools/path/like.name", data={"csrf_token": token})
        assert tried.status_code == 200 and "Result" in tried.text
        hidden_page = await http.get(f"{root}/connections/{conn['id']}/tools/{quote(BIDI, safe='')}")
        assert hidden_page.status_code != 200 and "\u202e" not in hidden_page.text


async def test_the_raw_tools_list_answer_holds_no_hidden_name(gateway: Gateway, spoofing: Upstream) -> None:
    owner = await new_owner(gateway)
    conn = await add_connection(gateway, owner.api_key, spoofing)
    listed = rpc(
        f"{gateway.url}/mcp/{conn['id']}",
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}},
        key=owner.api_key,
        headers={"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"},
    )
    assert listed.status_code == 200, listed.text
    assert "path/like.name" in listed.text and "echo" in listed.text
    for name in HIDDEN_NAMES:
        assert name not in listed.text and json.dumps(name) not in listed.text
