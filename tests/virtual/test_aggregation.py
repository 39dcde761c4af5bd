"""A virtual MCP in front of real upstreams of every type (HTTP, legacy SSE, STDIO) with 100 tools each,
used through the official SDK client of both generations: merged and namespaced lists, routing of calls,
resources and prompts, renames and overrides, allowlists, permissions, search mode, an upstream that
dies mid-session, and list_changed reaching clients."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from conftest import new_member, new_owner, wait_for_logs
from support.databases import fresh_database
from support.gateway import Gateway, Owner, Upstream, free_port, rpc, spawn_server, start_gateway, start_upstream
from support.mcp_client import MODES, call, connect, connect_answering
from support.secrets import remember_secret
from support.upstream import BASE_TOOLS, ODD_NAMES

pytestmark = pytest.mark.anyio
TESTS = str(Path(__file__).resolve().parents[1])
VALID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
SSE_TOKEN = remember_secret("virtual-sse-token-5151")
TTL_S = 4


@dataclass
class Stack:
    gateway: Gateway
    owner: Owner
    http: str
    sse: str
    stdio: str
    upstreams: list[Upstream]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("virtual")
    http = start_upstream(
        token=remember_secret("virtual-http-token-7171"), tools=100 - len(BASE_TOOLS)
    )  # the base tools + generated ones
    odd = start_upstream(token="odd-token", odd_names=True)
    sse_port = free_port()
    sse = spawn_server(
        "support.sse_upstream", sse_port, ["--port", str(sse_port), "--token", SSE_TOKEN, "--tools", "93"]
    )
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(
            url,
            tmp,
            MESHGATE_LOCAL_MODE="1",
            MESHGATE_VIRTUAL_LIST_TIMEOUT_SECONDS="3",
            MESHGATE_VIRTUAL_LIST_TTL_SECONDS=str(TTL_S),
        )
        try:
            owner = anyio.run(new_owner, gateway)
            ids = anyio.run(_register, gateway, owner, http, sse_port)
            yield Stack(gateway, owner, *ids, upstreams=[http, odd])
        finally:
            for server in (http, odd):
                server.kill()
            sse.kill()
            sse.wait(timeout=10)
            code = gateway.stop()
            assert code == 0, f"gateway exit code {code}; log tail: {gateway.logs()[-3000:]}"


async def _register(gateway: Gateway, owner: Owner, http: Upstream, sse_port: int) -> tuple[str, str, str]:
    stdio = {
        "command": sys.executable,
        "args": ["-m", "support.stdio_upstream"],
        "cwd": TESTS,
        "envVars": {"PYTHONPATH": TESTS, "GENERATED_TOOLS": "94"},  # 6 base tools + 94
    }
    datas = [
        {"title": "Web Tools", "connection_type": "HTTP", "connection_url": http.url, "connection_token": http.token},
        {
            "title": "Legacy",
            "connection_type": "SSE",
            "connection_url": f"http://127.0.0.1:{sse_port}/sse",
            "connection_token": SSE_TOKEN,
        },
        {"title": "Local", "connection_type": "STDIO", "connection_headers": stdio},
    ]
    async with connect(gateway.mcp_url, owner.api_key) as client:
        made = [await call(client, "COLLECTION_CONNECTIONS_CREATE", {"data": data}) for data in datas]
    assert all(item["status"] == "active" for item in made), made
    return made[0]["id"], made[1]["id"], made[2]["id"]


async def _virtual(stack: Stack, connections: list[dict[str, Any]], **fields: Any) -> str:
    data = {"title": fields.pop("title", "All tools"), "connections": connections, **fields}
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as client:
        return str((await call(client, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data}))["id"])


def _url(stack: Stack, virtual_id: str, query: str = "") -> str:
    return f"{stack.gateway.url}/mcp/virtual/{virtual_id}{query}"


def _text(result: types.CallToolResult) -> str:
    return result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
async def test_three_upstreams_of_every_type_behind_one_endpoint(stack: Stack, mode: str) -> None:
    members = [{"connection_id": c} for c in (stack.http, stack.sse, stack.stdio)]
    virtual_id = await _virtual(stack, members, instructions="Pick the right tool.")
    async with connect(_url(stack, virtual_id), stack.owner.api_key, mode) as client:
        tools = (await client.list_tools()).tools
        names = [tool.name for tool in tools]
        assert len(names) == 300
        assert len(set(names)) == 300
        assert all(VALID.match(name) for name in names)
        assert sum(name.startswith("web_tools_") for name in names) == 100
        assert sum(name.startswith("legacy_") for name in names) == 100
        assert sum(name.startswith("local_") for name in names) == 100
        assert _text(await client.call_tool("web_tools_echo", {"text": "over http"})) == "over http"
        assert _text(await client.call_tool("legacy_echo", {"text": "over sse"})) == "over sse"
        assert _text(await client.call_tool("local_echo", {"text": "over stdio"})) == "over stdio"
        # An upstream name that already starts with the connection's slug keeps it once.
        assert "legacy_legacy_042" not in names
        assert _text(await client.call_tool("legacy_042", {})) == "legacy 42"
        assert _text(await client.call_tool("local_093", {})) == "local 93"
        last = f"tool_{100 - len(BASE_TOOLS) - 1:03d}"  # the last generated tool
        assert _text(await client.call_tool(f"web_tools_{last}", {})) == last
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["memo://one"]
        read = await client.read_resource("memo://from-template")
        assert read.contents[0].text == "memo memo://from-template"  # type: ignore[union-attr]
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["web_tools_greet"]
        prompt = await client.get_prompt("web_tools_greet", {"name": "Ada"})
        assert prompt.messages[0].content.text == "Hello, Ada!"  # type: ignore[union-attr]
    response = rpc(
        _url(stack, virtual_id),
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"},
            },
        },
        key=stack.owner.api_key,
    )
    instructions = response.json()["result"]["instructions"]
    assert instructions.startswith("Pick the right tool.")
    assert "## Web Tools\nA test upstream." in instructions
    assert "## Legacy\nA server on the 2024-11-05 HTTP+SSE transport" in instructions
    logs = await wait_for_logs(stack.gateway, stack.owner.api_key, 3, virtualMcpId=virtual_id, toolName="echo")
    assert {log["connectionId"] for log in logs} == {stack.http, stack.sse, stack.stdio}


async def test_renames_overrides_and_allowlists(stack: Stack) -> None:
    virtual_id = await _virtual(
        stack,
        [
            {
                "connection_id": stack.http,
                "selected_tools": ["echo", "add"],
                "selected_resources": ["memo://one"],
                "selected_prompts": [],
                "tool_overrides": {"echo": {"name": "say", "description": "Say it back"}},
            },
            {
                "connection_id": stack.sse,
                "selected_tools": ["echo"],
                "tool_overrides": {"echo": {"description": "Old echo"}},
            },
        ],
    )
    async with connect(_url(stack, virtual_id), stack.owner.api_key) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == {"say", "web_tools_add", "legacy_echo"}
        assert tools["say"].description == "Say it back"
        assert tools["legacy_echo"].description == "Old echo"
        assert _text(await client.call_tool("say", {"text": "renamed"})) == "renamed"
        with pytest.raises(MCPError, match="unknown tool 'web_tools_headers'"):
            await client.call_tool("web_tools_headers", {})  # not selected: not there at all
        assert [str(r.uri) for r in (await client.list_resources()).resources] == ["memo://one"]
        assert (await client.list_resource_templates()).resource_templates == []
        assert (await client.list_prompts()).prompts == []


async def test_colliding_and_long_names_stay_valid_and_distinct(stack: Stack) -> None:
    odd = stack.upstreams[1]
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as client:
        twins = [
            await call(
                client,
                "COLLECTION_CONNECTIONS_CREATE",
                {
                    "data": {
                        "title": title,
                        "connection_type": "HTTP",
                        "connection_url": odd.url,
                        "connection_token": odd.token,
                    }
                },
            )
            for title in ("Twin", "twin")
        ]
    virtual_id = await _virtual(stack, [{"connection_id": twin["id"]} for twin in twins])
    async with connect(_url(stack, virtual_id), stack.owner.api_key) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert len(names) == len(set(names)) == 2 * (len(BASE_TOOLS) + len(ODD_NAMES))
        assert all(VALID.match(name) for name in names)
        assert "twin_echo" in names
        assert "twin_2_echo" in names
        weird = sorted(name for name in names if name.startswith("twin_weird_name"))
        assert len(weird) == 3  # three upstream names that clean to the same text, each with its own hash
        long_names = [name for name in names if "xxxxxxxx" in name]
        assert len(long_names) == 2
        assert all(len(name) == 64 for name in long_names)
        for name in [*weird, *long_names]:
            assert (await client.call_tool(name, {})).is_error is False
    async with connect(_url(stack, virtual_id), stack.owner.api_key) as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == names  # deterministic


@asynccontextmanager
async def _member(stack: Stack, permissions: dict[str, list[str]]) -> AsyncIterator[str]:
    name = f"r{uuid.uuid4().hex[:8]}"
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as client:
        await call(client, "ROLE_CREATE", {"name": name, "permissions": permissions})
    yield (await new_member(stack.gateway, stack.owner.organization_id, name)).api_key


@pytest.mark.parametrize("mode", MODES)
async def test_a_member_sees_and_calls_exactly_the_permitted_tools(stack: Stack, mode: str) -> None:
    virtual_id = await _virtual(stack, [{"connection_id": c} for c in (stack.http, stack.sse)])
    grants = {virtual_id: ["web_tools_echo"], stack.sse: ["echo"]}
    async with _member(stack, grants) as key, connect(_url(stack, virtual_id), key, mode) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {"web_tools_echo", "legacy_echo"}
        assert _text(await client.call_tool("web_tools_echo", {"text": "a"})) == "a"
        assert _text(await client.call_tool("legacy_echo", {"text": "b"})) == "b"
        refused = await client.call_tool("web_tools_add", {"a": 1, "b": 2})
        assert refused.is_error
        assert f"{virtual_id}:web_tools_add" in _text(refused)
    async with _member(stack, {stack.stdio: ["*"]}) as outsider:
        response = rpc(_url(stack, virtual_id), {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}, key=outsider)
        assert response.status_code == 403
        assert "no permission on virtual MCP" in response.json()["error"]["message"]


async def test_search_mode_finds_a_tool_by_its_description_and_calls_it(stack: Stack) -> None:
    virtual_id = await _virtual(stack, [{"connection_id": c} for c in (stack.http, stack.sse, stack.stdio)])
    async with connect(_url(stack, virtual_id, "?mode=search"), stack.owner.api_key) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {
            "search_tools",
            "describe_tools",
            "call_tool",
        }
        found = await call(client, "search_tools", {"query": "process id", "limit": 3})
        assert found["totalTools"] == 300
        assert found["tools"][0]["name"] == "local_pid"
        assert found["tools"][0]["connection"] == "Local"
        described = await call(client, "describe_tools", {"names": ["local_pid", "nope"]})
        assert described["tools"][0]["name"] == "local_pid"
        assert "inputSchema" in described["tools"][0]
        assert described["unknown"] == ["nope"]
        result = await client.call_tool("call_tool", {"name": "web_tools_add", "arguments": {"a": 2, "b": 3}})
        assert _text(result) == "5.0"
        missing = await client.call_tool("call_tool", {"name": "no_such_tool"})
        assert missing.is_error


async def test_an_upstream_killed_mid_session_is_left_out_and_the_rest_keeps_working(stack: Stack) -> None:
    doomed = start_upstream(token="doomed-token")
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as client:
        made = await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {
                "data": {
                    "title": "Doomed",
                    "connection_type": "HTTP",
                    "connection_url": doomed.url,
                    "connection_token": doomed.token,
                }
            },
        )
    virtual_id = await _virtual(stack, [{"connection_id": made["id"]}, {"connection_id": stack.sse}])
    async with connect(_url(stack, virtual_id), stack.owner.api_key) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"doomed_echo", "legacy_echo"} <= names
        doomed.kill()
        failed = await client.call_tool("doomed_echo", {"text": "x"})
        assert failed.is_error
        assert "upstream_unreachable" in _text(failed)
        after = {tool.name for tool in (await client.list_tools()).tools}
        assert not any(name.startswith("doomed_") for name in after)
        assert len(after) == 100
        assert _text(await client.call_tool("legacy_echo", {"text": "still here"})) == "still here"
    assert f"virtual MCPs leave out connection {made['id']}" in stack.gateway.logs()
    metrics = stack.gateway.scrape()
    assert f'meshgate_virtual_upstream_left_out_total{{connection="{made["id"]}"' in metrics


async def _streams_open(gateway: Gateway, count: int) -> None:
    with anyio.fail_after(15):
        while True:
            metrics = gateway.scrape()
            line = next(line for line in metrics.splitlines() if line.startswith("meshgate_open_streams "))
            if float(line.split()[1]) >= count:
                return
            await anyio.sleep(0.05)


async def test_list_changed_reaches_clients_of_both_generations(stack: Stack) -> None:
    growing = start_upstream(token="growing-token")
    try:
        async with connect(stack.gateway.mcp_url, stack.owner.api_key) as client:
            made = await call(
                client,
                "COLLECTION_CONNECTIONS_CREATE",
                {
                    "data": {
                        "title": "Growing",
                        "connection_type": "HTTP",
                        "connection_url": growing.url,
                        "connection_token": growing.token,
                    }
                },
            )
        virtual_id = await _virtual(stack, [{"connection_id": made["id"]}])
        url = _url(stack, virtual_id)
        heard = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                heard.set()

        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {stack.owner.api_key}"}) as http,
            Client(streamable_http_client(url, http_client=http), mode="legacy", message_handler=on_message) as legacy,  # type: ignore[arg-type]
            connect(url, stack.owner.api_key, "2026-07-28") as modern,
            modern.listen(tools_list_changed=True) as subscription,
        ):
            before = {tool.name for tool in (await legacy.list_tools()).tools}
            assert "growing_grown_1" not in before
            assert subscription.honored.tools_list_changed is True
            await _streams_open(stack.gateway, 2)  # the legacy client's GET stream and the listen stream
            assert _text(await legacy.call_tool("growing_grow", {})) == "grown_1"
            with anyio.fail_after(15):
                await heard.wait()
                event = await subscription.__anext__()
            assert type(event).__name__ == "ToolsListChanged"
            assert "growing_grown_1" in {tool.name for tool in (await legacy.list_tools()).tools}
            assert "growing_grown_1" in {tool.name for tool in (await modern.list_tools()).tools}
    finally:
        growing.kill()


async def _http_connection(stack: Stack, title: str, upstream: Upstream) -> str:
    data = {
        "title": title,
        "connection_type": "HTTP",
        "connection_url": upstream.url,
        "connection_token": upstream.token,
    }
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as client:
        return str((await call(client, "COLLECTION_CONNECTIONS_CREATE", {"data": data}))["id"])


async def test_a_quiet_change_upstream_shows_up_once_the_lists_are_refreshed(stack: Stack) -> None:
    quiet = start_upstream(token="quiet-token")
    try:
        connection_id = await _http_connection(stack, "Quiet", quiet)
        virtual_id = await _virtual(stack, [{"connection_id": connection_id}])
        async with connect(_url(stack, virtual_id), stack.owner.api_key) as client:
            assert "quiet_grown_1" not in {tool.name for tool in (await client.list_tools()).tools}
            async with connect(f"{stack.gateway.url}/mcp/{connection_id}", stack.owner.api_key) as direct:
                assert _text(await direct.call_tool("grow", {"quiet": True})) == "grown_1"  # no list_changed sent
            with anyio.fail_after(4 * TTL_S):
                while True:
                    if "quiet_grown_1" in {tool.name for tool in (await client.list_tools()).tools}:
                        break
                    await anyio.sleep(0.2)
    finally:
        quiet.kill()


async def test_connection_and_definition_changes_take_effect_at_once(stack: Stack) -> None:
    connection_id = await _http_connection(stack, "Before", stack.upstreams[0])
    virtual_id = await _virtual(stack, [{"connection_id": connection_id, "selected_tools": ["echo"]}])
    async with connect(_url(stack, virtual_id), stack.owner.api_key) as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == ["before_echo"]
        async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
            await call(admin, "COLLECTION_CONNECTIONS_UPDATE", {"id": connection_id, "data": {"title": "After"}})
        assert [tool.name for tool in (await client.list_tools()).tools] == ["after_echo"]
        async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
            update = {"connections": [{"connection_id": connection_id, "selected_tools": ["add"]}]}
            await call(admin, "COLLECTION_VIRTUAL_MCP_UPDATE", {"id": virtual_id, "data": update})
        assert [tool.name for tool in (await client.list_tools()).tools] == ["after_add"]
        async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
            await call(admin, "COLLECTION_VIRTUAL_MCP_DELETE", {"id": virtual_id})
    response = rpc(
        _url(stack, virtual_id), {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, key=stack.owner.api_key
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"virtual MCP {virtual_id} not found"


@pytest.mark.parametrize("mode", MODES)
async def test_progress_arrives_before_the_result_through_a_virtual_mcp(stack: Stack, mode: str) -> None:
    virtual_id = await _virtual(stack, [{"connection_id": c} for c in (stack.http, stack.sse)])
    events: list[str] = []
    started = [anyio.Event()]

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append(f"progress {progress}/{total}")
        started[-1].set()

    async with connect(_url(stack, virtual_id), stack.owner.api_key, mode) as client:
        result = await client.call_tool("legacy_progress", {}, progress_callback=on_progress)
        events.append("result")
        assert events == ["progress 1.0/3.0", "progress 2.0/3.0", "progress 3.0/3.0", "result"]
        events.clear()
        started.append(anyio.Event())
        async with anyio.create_task_group() as group:

            async def slow() -> None:
                answer = await client.call_tool("web_tools_slow", {}, progress_callback=on_progress)
                events.append(_text(answer))

            group.start_soon(slow)
            with anyio.fail_after(15):
                await started[-1].wait()  # the HTTP upstream's progress arrived while its call still runs
            assert events == ["progress 1.0/2.0"]
            assert _text(await client.call_tool("web_tools_release", {})) == "released"
        assert events == ["progress 1.0/2.0", "done"]
    assert not result.is_error


async def _elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    assert params.message == "What is your name?"  # type: ignore[union-attr]
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def _sample(_context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    assert params.messages[0].content.text == "Say hi"  # type: ignore[union-attr]
    return types.CreateMessageResult(role="assistant", content=types.TextContent(text="hi there"), model="test-model")


def _answering_client(url: str, key: str, mode: str) -> AbstractAsyncContextManager[Client]:
    return connect_answering(url, key, mode, elicitation_callback=_elicit, sampling_callback=_sample)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["virtual", "proxy", "legacy-sse"])
async def test_elicitation_and_sampling_round_trips(stack: Stack, mode: str, path: str) -> None:
    """The upstream asks the client mid-call; the answer goes back: through a virtual MCP and to a legacy
    SSE upstream (meshgate relays the request on the call's stream, or as input_required for 2026-07-28)
    and through the proxy (the client's own session with the upstream)."""
    if path == "virtual":
        url, prefix = _url(stack, await _virtual(stack, [{"connection_id": stack.http}])), "web_tools_"
    elif path == "proxy":
        url, prefix = f"{stack.gateway.url}/mcp/{stack.http}", ""
    else:  # meshgate holds the upstream side on its own session and relays the upstream's request
        url, prefix = f"{stack.gateway.url}/mcp/{stack.sse}", ""
    async with _answering_client(url, stack.owner.api_key, mode) as client:
        assert _text(await client.call_tool(f"{prefix}ask", {})) == "Hello, Ada!"
        assert _text(await client.call_tool(f"{prefix}sample", {})) == "the model said: hi there"


async def test_an_answer_from_another_caller_or_for_an_unknown_request_is_refused(stack: Stack) -> None:
    virtual_id = await _virtual(stack, [{"connection_id": stack.http}])
    reply = {"jsonrpc": "2.0", "id": "mg-not-a-real-request", "result": {"action": "accept"}}
    response = rpc(_url(stack, virtual_id), reply, key=stack.owner.api_key)
    assert response.status_code == 404
    assert "is waiting for an answer" in response.json()["error"]["message"]
    retry = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "web_tools_ask", "arguments": {}, "requestState": "mgvs1.forged", "inputResponses": {}},
    }
    response = rpc(
        _url(stack, virtual_id), retry, key=stack.owner.api_key, headers={"mcp-protocol-version": "2026-07-28"}
    )
    result = response.json()["result"]
    assert result["isError"] is True
    assert "make the request again" in result["content"][0]["text"]


async def test_list_changed_passes_through_the_proxy_on_the_clients_own_session(stack: Stack) -> None:
    growing = start_upstream(token="growing-proxy-token")
    try:
        connection_id = await _http_connection(stack, "Growing proxy", growing)
        heard = anyio.Event()

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                heard.set()

        async with (
            create_mcp_http_client(headers={"Authorization": f"Bearer {stack.owner.api_key}"}) as http,
            Client(
                streamable_http_client(f"{stack.gateway.url}/mcp/{connection_id}", http_client=http),  # type: ignore[arg-type]
                mode="legacy",
                message_handler=on_message,
            ) as client,
        ):
            await _streams_open(stack.gateway, 1)  # the client's GET stream, relayed by the proxy
            assert _text(await client.call_tool("grow", {})) == "grown_1"
            with anyio.fail_after(15):
                await heard.wait()
            assert "grown_1" in {tool.name for tool in (await client.list_tools()).tools}
    finally:
        growing.kill()


@pytest.mark.parametrize("mode", MODES)
async def test_an_upstream_of_the_stateless_era_only_serves_clients_of_both_generations(
    stack: Stack, mode: str
) -> None:
    modern = start_upstream(token="modern-token", modern_only=True)
    try:
        connection_id = await _http_connection(stack, "Modern", modern)
        virtual_id = await _virtual(stack, [{"connection_id": connection_id}, {"connection_id": stack.sse}])
        async with _answering_client(_url(stack, virtual_id), stack.owner.api_key, mode) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"modern_echo", "modern_ask", "legacy_echo"} <= names
            assert _text(await client.call_tool("modern_echo", {"text": "2026 upstream"})) == "2026 upstream"
            assert _text(await client.call_tool("legacy_echo", {"text": "2024 upstream"})) == "2024 upstream"
            prompt = await client.get_prompt("modern_greet", {"name": "Grace"})
            assert prompt.messages[0].content.text == "Hello, Grace!"  # type: ignore[union-attr]
            # 2026 clients get the upstream's own input_required; for handshake clients meshgate asks them
            assert _text(await client.call_tool("modern_ask", {})) == "Hello, Ada!"
    finally:
        modern.kill()


@pytest.mark.parametrize("mode", MODES)
async def test_the_proxy_bridges_a_generation_the_upstream_does_not_speak(stack: Stack, mode: str) -> None:
    """A client of either generation reaches, through `/mcp/{id}`, an upstream that speaks only the other."""
    modern = start_upstream(token="modern-proxy-token", modern_only=True)
    legacy = start_upstream(token="legacy-proxy-token", legacy_only=True)
    try:
        for title, upstream in (("Only modern", modern), ("Only legacy", legacy)):
            connection_id = await _http_connection(stack, title, upstream)
            url = f"{stack.gateway.url}/mcp/{connection_id}"
            async with _answering_client(url, stack.owner.api_key, mode) as client:
                assert "echo" in {tool.name for tool in (await client.list_tools()).tools}
                assert _text(await client.call_tool("echo", {"text": title})) == title, title
                assert _text(await client.call_tool("ask", {})) == "Hello, Ada!", title
                assert _text(await client.call_tool("sample", {})) == "the model said: hi there", title
    finally:
        modern.kill()
        legacy.kill()


@pytest.mark.parametrize("mode", MODES)
async def test_a_notification_stream_ends_when_its_key_is_revoked(stack: Stack, mode: str) -> None:
    virtual_id = await _virtual(stack, [{"connection_id": stack.http}])
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
        made = await call(admin, "API_KEY_CREATE", {"name": f"virtual stream holder {mode}"})
    key = remember_secret(made["key"])
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    if mode == "legacy":
        request: dict[str, Any] = {"method": "GET", "headers": headers | {"accept": "text/event-stream"}}
    else:
        listen = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "subscriptions/listen",
            "params": {"notifications": {"toolsListChanged": True}},
        }
        stream_headers = headers | {"accept": "application/json, text/event-stream", "mcp-protocol-version": mode}
        request = {"method": "POST", "headers": stream_headers, "json": listen}
    async with httpx.AsyncClient(timeout=30) as http, http.stream(url=_url(stack, virtual_id), **request) as stream:
        assert stream.status_code == 200
        async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
            await call(admin, "API_KEY_DELETE", {"keyId": made["id"]})
        with anyio.fail_after(15):  # the stream ends instead of waiting for the next notification
            received = b"".join([chunk async for chunk in stream.aiter_bytes()])
    if mode != "legacy":  # graceful closure: the listen request's result is the last frame
        assert b'"id":7,"result":' in received
