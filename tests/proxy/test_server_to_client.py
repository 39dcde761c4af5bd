"""What an upstream says to the client passes through `/mcp/{connection_id}` on every upstream transport and in
both protocol generations: roots requests, URL-mode elicitation (and its completion notice), resource
subscriptions and `subscriptions/listen`, list_changed notifications; and the client's own notifications reach
the upstream. One upstream implementation (tests/support/upstream.py) is served over Streamable HTTP, legacy
HTTP+SSE and stdio, so every path is held to the same behaviour."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.subscriptions import ResourceUpdated, ToolsListChanged
from pydantic import FileUrl

from conftest import new_owner
from support.databases import fresh_database
from support.gateway import Gateway, Owner, free_port, spawn_server, start_gateway
from support.mcp_client import MODES, call, connect, connect_answering
from support.secrets import remember_secret
from support.upstream_asks import CONFIRM_URL, ELICITATION_ID

pytestmark = pytest.mark.anyio
TESTS = str(Path(__file__).resolve().parents[1])
TOKEN = remember_secret("server-to-client-upstream-6262")
# "legacy-only": an HTTP upstream that refuses 2026-07-28, so a 2026-07-28 client is bridged over meshgate's session
PATHS = ("http", "sse", "stdio", "legacy-only")
ROOT = "file:///work/project"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@dataclass
class Stack:
    gateway: Gateway
    owner: Owner
    connections: dict[str, str]  # path -> connection id

    def url(self, path: str) -> str:
        return f"{self.gateway.url}/mcp/{self.connections[path]}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("server-to-client")
    ports = {"http": free_port(), "sse": free_port(), "legacy-only": free_port()}
    flags = {"http": [], "sse": ["--sse"], "legacy-only": ["--legacy-only"]}
    servers = [
        spawn_server("support.upstream", port, ["--port", str(port), "--token", TOKEN, *flags[path]])
        for path, port in ports.items()
    ]
    with fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(url, tmp, MESHGATE_LOCAL_MODE="1")
        try:
            owner = anyio.run(new_owner, gateway)
            connections = anyio.run(_register, gateway, owner, ports)
            yield Stack(gateway, owner, connections)
        finally:
            for server in servers:
                server.kill()
                server.wait(timeout=10)
            code = gateway.stop()
            assert code == 0, f"gateway exit code {code}; log tail: {gateway.logs()[-3000:]}"


async def _register(gateway: Gateway, owner: Owner, ports: dict[str, int]) -> dict[str, str]:
    stdio = {
        "command": sys.executable,
        "args": ["-m", "support.upstream", "--stdio"],
        "cwd": TESTS,
        "envVars": {"PYTHONPATH": TESTS},
    }
    datas = {
        "http": {"connection_type": "HTTP", "connection_url": f"http://127.0.0.1:{ports['http']}/mcp"},
        "sse": {"connection_type": "SSE", "connection_url": f"http://127.0.0.1:{ports['sse']}/sse"},
        "stdio": {"connection_type": "STDIO", "connection_headers": stdio},
        "legacy-only": {"connection_type": "HTTP", "connection_url": f"http://127.0.0.1:{ports['legacy-only']}/mcp"},
    }
    made: dict[str, str] = {}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        for path, data in datas.items():
            token = {"connection_token": TOKEN} if path != "stdio" else {}
            created = await call(
                client, "COLLECTION_CONNECTIONS_CREATE", {"data": {"title": f"Asks {path}", **data, **token}}
            )
            assert created["status"] == "active", created
            made[path] = str(created["id"])
    return made


async def _roots(_context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri=FileUrl(ROOT), name="project")])


URL_ELICITATIONS: list[tuple[str, str | None]] = []


async def _elicit(_context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    if isinstance(params, types.ElicitRequestURLParams):
        URL_ELICITATIONS.append((params.url, params.elicitation_id))
        return types.ElicitResult(action="accept")
    return types.ElicitResult(action="accept", content={"name": "Ada"})


def _client(url: str, key: str, mode: str, on_message: Any = None) -> AbstractAsyncContextManager[Client]:
    return connect_answering(
        url, key, mode, list_roots_callback=_roots, elicitation_callback=_elicit, message_handler=on_message
    )


def _text(result: types.CallToolResult) -> str:
    return result.content[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", PATHS)
async def test_roots_and_url_elicitation_reach_the_client_and_the_answer_goes_back(
    stack: Stack, path: str, mode: str
) -> None:
    completed: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ElicitCompleteNotification):
            completed.append(message.params.elicitation_id)

    URL_ELICITATIONS.clear()
    async with _client(stack.url(path), stack.owner.api_key, mode, on_message) as client:
        assert _text(await client.call_tool("roots", {})) == f"roots: {ROOT}"
        assert _text(await client.call_tool("ask_url", {})) == "confirmed in the browser"
        assert _text(await client.call_tool("ask", {})) == "Hello, Ada!"
    if mode == "legacy":
        assert URL_ELICITATIONS == [(CONFIRM_URL, ELICITATION_ID)]
        assert completed == [ELICITATION_ID]
    else:  # 2026-07-28 has no elicitationId (and no completion notice): the answer to input_required suffices
        assert [url for url, _ in URL_ELICITATIONS] == [CONFIRM_URL]


async def _touch(stack: Stack, path: str, uri: str) -> None:
    async with connect(stack.url(path), stack.owner.api_key) as other:
        assert _text(await other.call_tool("touch", {"uri": uri})) == f"touched {uri}"


@pytest.mark.parametrize("path", PATHS)
async def test_a_handshake_era_subscriber_hears_resource_updates_on_its_stream(stack: Stack, path: str) -> None:
    updated: list[str] = []
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updated.append(str(message.params.uri))
            heard.set()

    async with _client(stack.url(path), stack.owner.api_key, "legacy", on_message) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resources/subscribe is deprecated only in 2026-07-28
            await client.subscribe_resource(f"memo://{path}-watched")
        await _touch(stack, path, f"memo://{path}-unwatched")  # another URI: nothing arrives for it
        await _touch(stack, path, f"memo://{path}-watched")
        with anyio.fail_after(15):
            await heard.wait()
        assert updated == [f"memo://{path}-watched"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_2026_listener_hears_resource_updates_and_list_changes(stack: Stack, path: str) -> None:
    uri = f"memo://{path}-listened"
    async with (
        _client(stack.url(path), stack.owner.api_key, "2026-07-28") as client,
        client.listen(tools_list_changed=True, resource_subscriptions=[uri]) as subscription,
    ):
        assert subscription.honored.resource_subscriptions == [uri]
        await _touch(stack, path, f"memo://{path}-not-listened")
        await _touch(stack, path, uri)
        with anyio.fail_after(15):
            event = await subscription.__anext__()
        assert event == ResourceUpdated(uri=uri)
        # A 2026-07-28 caller: the upstream then tells its listen streams, and every session of meshgate's
        async with connect(stack.url(path), stack.owner.api_key, "2026-07-28") as other:
            await other.call_tool("grow", {})
        with anyio.fail_after(15):
            event = await subscription.__anext__()
        assert isinstance(event, ToolsListChanged)


@pytest.mark.parametrize("path", PATHS)
async def test_a_handshake_era_client_hears_list_changed_on_its_stream(stack: Stack, path: str) -> None:
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            heard.set()

    async with _client(stack.url(path), stack.owner.api_key, "legacy", on_message) as client:
        grown = _text(await client.call_tool("grow", {}))
        with anyio.fail_after(15):
            await heard.wait()
        assert grown in {tool.name for tool in (await client.list_tools()).tools}


async def test_a_clients_roots_list_changed_reaches_the_upstream(stack: Stack) -> None:
    async with _client(stack.url("http"), stack.owner.api_key, "legacy") as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated only in 2026-07-28
            await client.session.send_roots_list_changed()
        with anyio.fail_after(15):
            while True:  # the notification is a separate POST: poll the upstream until it has heard it
                if "roots/list_changed" in _text(await client.call_tool("heard", {})):
                    break
                await anyio.sleep(0.05)


async def _admin(stack: Stack, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async with connect(stack.gateway.mcp_url, stack.owner.api_key) as admin:
        return await call(admin, tool, arguments)


def _initialize(url: str, key: str) -> str:
    headers = {"authorization": f"Bearer {key}", "accept": "application/json, text/event-stream"}
    opened = httpx.post(url, json=INITIALIZE, headers=headers, timeout=30)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    headers |= {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    assert httpx.post(url, json=initialized, headers=headers, timeout=30).status_code == 202
    return session


@pytest.mark.parametrize("path", PATHS)
async def test_a_get_stream_ends_when_its_key_is_revoked(stack: Stack, path: str) -> None:
    made = await _admin(stack, "API_KEY_CREATE", {"name": f"stream holder {path}"})
    key = remember_secret(made["key"])
    session = _initialize(stack.url(path), key)
    headers = {"authorization": f"Bearer {key}", "accept": "text/event-stream", "mcp-session-id": session}
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", stack.url(path), headers=headers) as stream,
    ):
        assert stream.status_code == 200
        await _admin(stack, "API_KEY_DELETE", {"keyId": made["id"]})
        with anyio.fail_after(15):  # meshgate ends the response: the loop finishes instead of waiting forever
            async for _ in stream.aiter_bytes():
                pass


@pytest.mark.parametrize("path", PATHS)
async def test_a_listen_stream_ends_when_its_connection_changes(stack: Stack, path: str) -> None:
    connection_id = stack.connections[path]
    ended = "gracefully"
    async with _client(stack.url(path), stack.owner.api_key, "2026-07-28") as client:
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                await _admin(
                    stack, "COLLECTION_CONNECTIONS_UPDATE", {"id": connection_id, "data": {"description": "changed"}}
                )
                with anyio.fail_after(15):
                    async for _ in subscription:
                        pass
        except SubscriptionLost:
            ended = "abruptly"
    # meshgate closes its own listen streams with their result; the upstream's own (forwarded bytes) is cut
    assert ended == ("abruptly" if path == "http" else "gracefully")


async def test_a_forwarded_listen_stream_outlives_the_connections_call_timeout(stack: Stack) -> None:
    upstream = await _admin(stack, "COLLECTION_CONNECTIONS_GET", {"id": stack.connections["http"]})
    data = {
        "title": "Quick calls",
        "connection_type": "HTTP",
        "connection_url": upstream["connection_url"],
        "connection_token": TOKEN,
        "call_timeout_ms": 1000,
    }
    quick = await _admin(stack, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
    url = f"{stack.gateway.url}/mcp/{quick['id']}"
    async with (
        _client(url, stack.owner.api_key, "2026-07-28") as client,
        client.listen(resource_subscriptions=["memo://patient"]) as subscription,
    ):
        await anyio.sleep(1.5)  # longer than any call on this connection may take
        async with connect(url, stack.owner.api_key) as other:
            assert _text(await other.call_tool("touch", {"uri": "memo://patient"})) == "touched memo://patient"
        with anyio.fail_after(15):
            assert await subscription.__anext__() == ResourceUpdated(uri="memo://patient")
