"""The MCP reference server (npm `@modelcontextprotocol/server-everything`) through meshgate over Streamable
HTTP, legacy HTTP+SSE and stdio: its tools that need client capabilities (sampling, form and URL
elicitation, roots) are listed and round-trip through meshgate's shared session on SSE and STDIO as they do
through the byte-forwarded HTTP path (and on a virtual MCP); a request of the server's that no caller can
answer is refused at once; discovery declares nothing; log messages it sends outside any call reach
clients' GET streams. server-everything speaks only the handshake era, so for `2026-07-28` clients the
HTTP path is bridged over meshgate's own HTTP session too.

The server (and node ≥ 22) lives in `.tools/`, installed by `scripts/test`; without it these tests skip,
and fail under CI=true or MESHGATE_REQUIRE_ALL_BACKENDS.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.client import Client
from pydantic import FileUrl

from conftest import new_owner
from support import server_everything
from support.databases import fresh_database
from support.gateway import Gateway, Owner, free_port, start_gateway
from support.mcp_client import MODES, call, connect, connect_answering

pytestmark = pytest.mark.anyio
PATHS = ("http", "sse", "stdio")
BRIDGED = ("sse", "stdio")  # reached over meshgate's own session with the upstream
# Registered by the server only for clients that declare roots, elicitation (form, URL) and sampling.
GATED = frozenset(
    {"get-roots-list", "trigger-elicitation-request", "trigger-url-elicitation", "trigger-sampling-request"}
)
EXPECTED_TOOLS = 17  # what the pinned version lists for a client that declares all three
ROOT = "file:///work/everything"
MODEL_SAID = "hello from the test model"
CONSENT_URL = "https://consent.example/approve?ticket=7"


@dataclass
class Stack:
    gateway: Gateway
    owner: Owner
    connections: dict[str, str]  # path -> connection id

    def url(self, path: str) -> str:
        return f"{self.gateway.url}/mcp/{self.connections[path]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = server_everything.missing()
    if reason is not None:
        # .ci/run sets MESHGATE_REQUIRE_ALL_BACKENDS (a skip there fails the run); CI services set CI=true.
        if os.environ.get("CI") == "true" or os.environ.get("MESHGATE_REQUIRE_ALL_BACKENDS"):
            pytest.fail(f"server-everything is required in CI but missing: {reason}")
        pytest.skip(f"server-everything not installed: {reason}")
    tmp = tmp_path_factory.mktemp("server-everything")
    ports = {"http": free_port(), "sse": free_port()}
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for path, transport in (("http", "streamableHttp"), ("sse", "sse")):
            servers.append(server_everything.start(transport, ports[path], tmp / f"{path}.log"))
            bound = server_everything.listening_addresses(ports[path])
            assert bound and bound <= server_everything.LOOPBACK, f"{transport} listens on {bound}, not 127.0.0.1"
        with fresh_database("sqlite", tmp) as url:
            gateway = start_gateway(url, tmp, MESHGATE_LOCAL_MODE="1")
            try:
                owner = anyio.run(new_owner, gateway)
                yield Stack(gateway, owner, anyio.run(_register, gateway, owner, ports))
            finally:
                code = gateway.stop()
                assert code == 0, f"gateway exit code {code}; log tail: {gateway.logs()[-3000:]}"
    finally:
        for server in servers:
            server.kill()
            server.wait(timeout=10)


async def _register(gateway: Gateway, owner: Owner, ports: dict[str, int]) -> dict[str, str]:
    datas = {
        "http": {"connection_type": "HTTP", "connection_url": f"http://127.0.0.1:{ports['http']}/mcp"},
        "sse": {"connection_type": "SSE", "connection_url": f"http://127.0.0.1:{ports['sse']}/sse"},
        "stdio": {"connection_type": "STDIO", "connection_headers": server_everything.stdio_command()},
    }
    made: dict[str, str] = {}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        for path, data in datas.items():
            created = await call(
                client, "COLLECTION_CONNECTIONS_CREATE", {"data": {"title": f"Everything {path}", **data}}
            )
            assert created["status"] == "active", created
            made[path] = str(created["id"])
    return made


async def _sample(_context: Any, _params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(text=MODEL_SAID), model="test-model")


async def _elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    if isinstance(params, types.ElicitRequestURLParams):
        return types.ElicitResult(action="accept")
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def _roots(_context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri=FileUrl(ROOT), name="everything")])


def _client(stack: Stack, path: str, mode: str = "legacy", **more: Any) -> AbstractAsyncContextManager[Client]:
    """An SDK client that answers sampling, elicitation and roots (so it declares all three)."""
    return connect_answering(
        stack.url(path),
        stack.owner.api_key,
        mode,
        sampling_callback=_sample,
        elicitation_callback=_elicit,
        list_roots_callback=_roots,
        **more,
    )


def _text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    return "\n".join(part.text for part in result.content if isinstance(part, types.TextContent))


async def _tool_names(stack: Stack, path: str, mode: str) -> set[str]:
    async with _client(stack, path, mode) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", BRIDGED)
async def test_a_bridged_upstream_lists_the_same_tools_as_streamable_http(stack: Stack, path: str, mode: str) -> None:
    through_http = await _tool_names(stack, "http", mode)
    bridged = await _tool_names(stack, path, mode)
    print(
        f"server-everything through meshgate ({mode}): {len(through_http)} tools over HTTP, {len(bridged)} over {path}"
    )
    assert through_http >= GATED
    assert len(through_http) == EXPECTED_TOOLS
    assert bridged == through_http


async def test_discovery_declares_nothing_so_the_record_leaves_out_gated_tools(stack: Stack) -> None:
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
        for path in PATHS:
            record = await call(admin, "COLLECTION_CONNECTIONS_GET", {"id": stack.connections[path]})
            names = {str(tool["name"]) for tool in record["tools"]}
            assert "echo" in names, (path, names)
            assert not GATED & names, (path, sorted(GATED & names))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", PATHS)
async def test_sampling_round_trips_through_meshgate(stack: Stack, path: str, mode: str) -> None:
    async with _client(stack, path, mode) as client:
        said = _text(await client.call_tool("trigger-sampling-request", {"prompt": "Say hi", "maxTokens": 20}))
    assert MODEL_SAID in said


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", PATHS)
async def test_form_elicitation_round_trips_through_meshgate(stack: Stack, path: str, mode: str) -> None:
    async with _client(stack, path, mode) as client:
        answer = _text(await client.call_tool("trigger-elicitation-request", {}))
    assert "- Name: Ada" in answer


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", PATHS)
async def test_url_elicitation_round_trips_through_meshgate(stack: Stack, path: str, mode: str) -> None:
    async with _client(stack, path, mode) as client:
        answer = _text(await client.call_tool("trigger-url-elicitation", {"url": CONSENT_URL}))
    assert "User completed the URL elicitation flow" in answer
    assert CONSENT_URL in answer


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", PATHS)
async def test_roots_round_trip_through_meshgate(stack: Stack, path: str, mode: str) -> None:
    async with _client(stack, path, mode) as client:
        answer = _text(await client.call_tool("get-roots-list", {}))
    assert ROOT in answer


@pytest.mark.parametrize("path", BRIDGED)
async def test_a_log_message_sent_outside_a_call_reaches_a_listening_get_stream(stack: Stack, path: str) -> None:
    heard: list[types.LoggingMessageNotificationParams] = []
    arrived = anyio.Event()

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        heard.append(params)
        arrived.set()

    # The listener makes no call: what it hears can only come on its GET stream. (Not over HTTP: there each
    # client has its own upstream session, whose log messages the listener's session never carries.)
    async with _client(stack, path, logging_callback=on_log):
        async with _client(stack, path) as other:
            started = _text(await other.call_tool("toggle-simulated-logging", {}))
        assert started.startswith("Started simulated"), started
        with anyio.fail_after(20):  # the server logs at a 5 s pace, each message outside any call
            await arrived.wait()
    assert "-level message" in str(heard[0].data) or "level-message" in str(heard[0].data)


@pytest.mark.parametrize("path", PATHS)
async def test_a_request_no_caller_can_answer_is_refused_at_once(stack: Stack, path: str) -> None:
    # The REST call-tool route has no way to put the server's sampling request to its caller.
    url = f"{stack.url(path)}/call-tool/trigger-sampling-request"
    headers = {"authorization": f"Bearer {stack.owner.api_key}"}
    async with httpx.AsyncClient(timeout=60) as http:
        with anyio.fail_after(30):  # a generous "never stalls" bound: the answer takes milliseconds
            answered = await http.post(url, json={"prompt": "Say hi", "maxTokens": 20}, headers=headers)
    assert answered.status_code == 200, answered.text
    result = answered.json()
    assert result["isError"] is True
    assert "cannot answer server-to-client requests" in result["content"][0]["text"]


@pytest.mark.parametrize("path", BRIDGED)
async def test_a_virtual_mcp_lists_and_answers_the_gated_tools_over_the_shared_session(stack: Stack, path: str) -> None:
    data = {"title": f"Everything virtual {path}", "connections": [{"connection_id": stack.connections[path]}]}
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
        virtual_id = str((await call(admin, "COLLECTION_VIRTUAL_MCP_CREATE", {"data": data}))["id"])
    url = f"{stack.gateway.url}/mcp/virtual/{virtual_id}"
    async with connect_answering(url, stack.owner.api_key, "legacy", sampling_callback=_sample) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert all(any(name.endswith(gated) for name in names) for gated in GATED), sorted(names)
        sampling = next(name for name in names if name.endswith("trigger-sampling-request"))
        said = _text(await client.call_tool(sampling, {"prompt": "Say hi", "maxTokens": 20}))
    assert MODEL_SAID in said
