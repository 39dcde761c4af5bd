"""Code mode of a virtual MCP (`?mode=code`) through a real gateway, a real upstream and the official SDK client:
the three tools, TypeScript declarations, programs calling tools through meshgate's call pipeline as the caller
(same refusals, one audit record per call), and the gateway answering while a program spins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest

from conftest import add_connection, key_for_user, new_member, new_owner
from support.databases import fresh_database
from support.gateway import Gateway, Owner, Upstream, start_gateway, start_upstream
from support.mcp_client import MODES, call, connect
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio


@dataclass
class Stack:
    gateway: Gateway
    owner: Owner
    upstream: Upstream
    virtual_id: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("code-mode")
    upstream = start_upstream(token=remember_secret("code-mode-upstream-token-3131"))
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(
            url,
            tmp,
            MESHGATE_SANDBOX_CPU_SECONDS="3",
            MESHGATE_SANDBOX_TOOL_CALLS="20",
            MESHGATE_SANDBOX_CONCURRENT="3",
        )
        try:
            owner = anyio.run(new_owner, gateway)
            virtual_id = anyio.run(_virtual, gateway, owner, upstream)
            yield Stack(gateway, owner, upstream, virtual_id)
        finally:
            upstream.kill()
            code = gateway.stop()
            assert code == 0, f"gateway exit code {code}; log tail: {gateway.logs()[-3000:]}"


async def _virtual(gateway: Gateway, owner: Owner, upstream: Upstream) -> str:
    connection = (await add_connection(gateway, owner.api_key, upstream, title="Up"))["id"]
    data = {"title": "Code", "connections": [{"connection_id": connection}]}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        return str((await call(client, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data}))["id"])


def _url(stack: Stack, query: str = "?mode=code") -> str:
    return f"{stack.gateway.url}/mcp/virtual/{stack.virtual_id}{query}"


def _text(result: types.CallToolResult) -> str:
    return "\n".join(item.text for item in result.content if isinstance(item, types.TextContent))


async def _run(stack: Stack, key: str, code: str, mode: str = "legacy") -> types.CallToolResult:
    async with connect(_url(stack), key, mode) as client:
        return await client.call_tool("run_code", {"code": code})


async def test_code_mode_lists_search_describe_and_run_code(stack: Stack) -> None:
    async with connect(_url(stack), stack.owner.api_key) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert names == ["search_tools", "describe_tools", "run_code"]
        found = await call(client, "search_tools", {"query": "echo text"})
        assert found["tools"][0]["name"] == "up_echo"
        described = await call(client, "describe_tools", {"names": ["up_echo", "up_add"]})
    declarations = {tool["name"]: tool["typescript"] for tool in described["tools"]}
    assert "up_echo(args: { text?: string; }): Promise<unknown>;" in declarations["up_echo"]
    assert declarations["up_echo"].startswith("/** Echo text back */")
    assert "up_add(args: {" in declarations["up_add"]


async def test_the_normal_endpoint_still_lists_the_upstream_tools(stack: Stack) -> None:
    async with connect(_url(stack, ""), stack.owner.api_key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"up_echo", "up_add"} <= names
    assert "run_code" not in names


@pytest.mark.parametrize("mode", MODES)
async def test_a_program_calls_tools_and_returns_logs_and_its_value(stack: Stack, mode: str) -> None:
    code = (
        "const said = await tools.up_echo({text: 'hello'});"
        "const total = await tools.up_add({a: 2, b: 3});"
        "console.log('said', said.text); return {said: said.text, total}"
    )
    result = await _run(stack, stack.owner.api_key, code, mode)
    assert not result.is_error, _text(result)
    assert result.structured_content == {
        "result": {"said": "hello", "total": {"sum": 5}},
        "logs": ["said hello"],
        "toolCalls": 2,
    }
    assert "said hello" in _text(result)


async def test_a_program_sees_only_callable_tools_and_cannot_run_code_recursively(stack: Stack) -> None:
    key = await key_for_user(
        stack.gateway, stack.owner.organization_id, stack.owner.user_id, {stack.virtual_id: ["up_echo"]}
    )
    code = "let nested; try { await tools.run_code({code: 'return 1'}) } catch (e) { nested = e.code }"
    result = await _run(stack, key, code + "; return [Object.keys(tools), nested]")
    assert result.structured_content is not None
    assert result.structured_content["result"] == [["up_echo"], "not_found"]


async def test_a_limit_ends_the_run_with_its_code(stack: Stack) -> None:
    result = await _run(stack, stack.owner.api_key, "for (;;) { try { await tools.up_echo({}) } catch (e) {} }")
    assert result.is_error
    assert result.structured_content is not None
    assert result.structured_content["error"]["code"] == "sandbox_tool_call_limit"
    assert "sandbox_tool_call_limit" in _text(result)


async def test_a_caller_without_the_tool_gets_the_same_refusal_inside_as_outside(stack: Stack) -> None:
    key = await key_for_user(
        stack.gateway, stack.owner.organization_id, stack.owner.user_id, {stack.virtual_id: ["up_echo"]}
    )
    async with connect(_url(stack, ""), key) as client:
        outside = await client.call_tool("up_add", {"a": 1, "b": 2})
    assert outside.is_error
    result = await _run(stack, key, "try { await tools.up_add({a: 1, b: 2}) } catch (e) { return [e.code, e.message] }")
    assert result.structured_content is not None
    assert result.structured_content["result"] == ["permission_denied", _text(outside)]
    allowed = await _run(stack, key, "return (await tools.up_echo({text: 'mine'})).text")
    assert allowed.structured_content is not None
    assert allowed.structured_content["result"] == "mine"


async def test_every_call_inside_is_audited_with_the_callers_identity(stack: Stack) -> None:
    member = await new_member(stack.gateway, stack.owner.organization_id, "admin")
    code = "for (let i = 0; i < 3; i++) await tools.up_echo({text: 'n' + i}); return 'ok'"
    result = await _run(stack, member.api_key, code)
    assert not result.is_error, _text(result)
    mine = await _wait_for_records(stack, 3, lambda log: log["caller"]["userId"] == member.user_id)
    assert len(mine) == 3
    assert all(log["caller"]["apiKeyId"] and log["toolName"] == "echo" for log in mine)
    assert sorted(str(log["input"]) for log in mine) == [f'{{"text":"n{i}"}}' for i in range(3)]


async def _wait_for_records(stack: Stack, count: int, keep: Any) -> list[dict[str, Any]]:
    """The virtual MCP's audit records that `keep` accepts, once there are `count` (written in the background)."""
    with anyio.fail_after(30):
        while True:
            async with connect(stack.gateway.mcp_url, stack.owner.api_key) as client:
                arguments = {"virtualMcpId": stack.virtual_id, "limit": 1000}
                found = await call(client, "MONITORING_LOGS_LIST", arguments)
            kept = [item for item in found["items"] if keep(item)]
            if len(kept) >= count:
                return kept
            await anyio.sleep(0.05)


async def test_the_gateway_answers_while_a_program_loops_forever(stack: Stack) -> None:
    spinning = asyncio.ensure_future(_run(stack, stack.owner.api_key, "await tools.up_echo({}); while (true) {}"))
    async with httpx.AsyncClient(timeout=10) as http, connect(_url(stack, ""), stack.owner.api_key) as client:
        # Once the program's first call is audited, its loop has begun or is about to.
        await _wait_for_records(stack, 1, lambda log: log["toolName"] == "echo" and log["input"] == "{}")
        for _ in range(5):
            assert (await http.get(f"{stack.gateway.url}/health/live")).status_code == 200
            assert _text(await client.call_tool("up_echo", {"text": "still here"})) == "still here"
        assert not spinning.done()  # all of that was answered while the program still ran
    result = await spinning
    assert result.is_error
    assert result.structured_content is not None
    assert result.structured_content["error"]["code"] == "sandbox_cpu_time_limit"
