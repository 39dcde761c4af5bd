"""Sessions across meshgate processes (PostgreSQL). With Streamable HTTP upstreams the session id meshgate
hands out is the upstream's, sealed and bound to the connection and the credential, so a session opened
through one process continues through another, and nobody else can use it. With bridged upstreams (legacy
SSE here) meshgate's session ids carry no state, and a session's resource subscriptions reach whichever
process holds its stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import add_connection, new_owner
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, free_port, spawn_server, start_gateway
from support.mcp_client import call, connect
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio
SSE_TOKEN = remember_secret("replicas-sse-upstream-8383")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


@pytest.fixture
def two_gateways(tmp_path: Path) -> Iterator[tuple[Gateway, Gateway]]:
    with fresh_database("postgresql", tmp_path) as url:
        first = start_gateway(url, tmp_path, "first")
        second = Gateway(env=first.env, port=0)
        try:
            second.port = free_port()
            second.start(tmp_path / "second.log")
            yield first, second
        finally:
            assert second.stop() == 0
            assert first.stop() == 0


def _post(url: str, key: str, message: dict[str, Any], session: str | None = None) -> httpx.Response:
    headers = {
        "authorization": f"Bearer {key}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    if session is not None:
        headers["mcp-session-id"] = session
    return httpx.post(url, content=json.dumps(message), headers=headers, timeout=30)


def _message(response: httpx.Response) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return dict(json.loads(data[-1]))
    return dict(response.json())


def _tool(name: str, arguments: dict[str, Any], message_id: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": message_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def test_a_session_opened_on_one_process_continues_on_another(
    two_gateways: tuple[Gateway, Gateway], upstream: Upstream
) -> None:
    first, second = two_gateways
    owner = await new_owner(first)
    connection = await add_connection(first, owner.api_key, upstream)
    path = f"/mcp/{connection['id']}"
    opened = _post(first.url + path, owner.api_key, INITIALIZE)
    assert opened.status_code == 200
    session = opened.headers["mcp-session-id"]
    assert session.startswith("mgs1.")
    assert (
        _post(
            second.url + path, owner.api_key, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session
        ).status_code
        == 202
    )
    echoed = _message(_post(second.url + path, owner.api_key, _tool("echo", {"text": "moved"}, 2), session))
    assert echoed["result"]["content"][0]["text"] == "moved"
    seen = _message(_post(first.url + path, owner.api_key, _tool("headers", {}, 3), session))
    upstream_ids = {request.get("mcp-session-id") for request in seen["result"]["structuredContent"]["requests"][-3:]}
    assert len(upstream_ids) == 1  # one upstream session throughout, whichever process forwarded
    (upstream_id,) = upstream_ids
    assert upstream_id is not None
    assert not upstream_id.startswith("mgs1.")
    assert upstream_id not in session  # the client never sees the upstream's id


async def test_a_session_is_useless_to_another_credential_and_ends_with_its_credential_or_connection(
    two_gateways: tuple[Gateway, Gateway], upstream: Upstream
) -> None:
    first, second = two_gateways
    owner = await new_owner(first)
    connection = await add_connection(first, owner.api_key, upstream)
    path = f"/mcp/{connection['id']}"
    async with connect(first.mcp_url, owner.api_key) as client:
        key = await call(client, "API_KEY_CREATE", {"name": "session holder"})
        other = await call(client, "API_KEY_CREATE", {"name": "someone else"})
    remember_secret(key["key"])
    remember_secret(other["key"])
    session = _post(first.url + path, key["key"], INITIALIZE).headers["mcp-session-id"]
    assert _message(_post(second.url + path, key["key"], _tool("echo", {"text": "mine"}, 2), session))["result"]
    stolen = _post(second.url + path, other["key"], _tool("echo", {"text": "theirs"}, 3), session)
    assert stolen.status_code == 404
    assert "session not found" in stolen.json()["error"]["message"]
    altered = session[:-4] + ("AAAA" if not session.endswith("AAAA") else "BBBB")
    assert _post(second.url + path, key["key"], _tool("echo", {"text": "x"}, 4), altered).status_code == 404
    other_connection = await add_connection(first, owner.api_key, upstream, title="Other")
    elsewhere = _post(f"{second.url}/mcp/{other_connection['id']}", key["key"], _tool("echo", {}, 5), session)
    assert elsewhere.status_code == 404

    async with connect(first.mcp_url, owner.api_key) as client:
        await call(client, "API_KEY_DELETE", {"keyId": key["id"]})
    assert _post(second.url + path, key["key"], _tool("echo", {"text": "x"}, 6), session).status_code == 401

    session = _post(first.url + path, owner.api_key, INITIALIZE).headers["mcp-session-id"]
    async with connect(first.mcp_url, owner.api_key) as client:
        await call(client, "COLLECTION_CONNECTIONS_DELETE", {"id": connection["id"]})
    assert _post(second.url + path, owner.api_key, _tool("echo", {"text": "x"}, 7), session).status_code == 404


@pytest.fixture
def sse_upstream() -> Iterator[str]:
    """The test upstream over the legacy HTTP+SSE transport: meshgate bridges it with its own session."""
    port = free_port()
    process = spawn_server("support.upstream", port, ["--port", str(port), "--token", SSE_TOKEN, "--sse"])
    try:
        yield f"http://127.0.0.1:{port}/sse"
    finally:
        process.kill()
        process.wait(timeout=10)


async def test_a_subscription_made_through_one_process_reaches_the_sessions_stream_on_another(
    two_gateways: tuple[Gateway, Gateway], sse_upstream: str
) -> None:
    """A bridged (SSE) session: its GET stream is held by the first process, its resources/subscribe goes
    through the second; the update the upstream announces arrives on the stream."""
    first, second = two_gateways
    owner = await new_owner(first)
    data = {"title": "Bridged", "connection_type": "SSE", "connection_url": sse_upstream, "connection_token": SSE_TOKEN}
    async with connect(first.mcp_url, owner.api_key) as client:
        connection = await call(client, "COLLECTION_CONNECTIONS_CREATE", {"data": data})
    path = f"/mcp/{connection['id']}"
    session = _post(first.url + path, owner.api_key, INITIALIZE).headers["mcp-session-id"]
    headers = {"authorization": f"Bearer {owner.api_key}", "accept": "text/event-stream", "mcp-session-id": session}
    heard: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", first.url + path, headers=headers) as stream,
        anyio.create_task_group() as group,
    ):
        assert stream.status_code == 200

        async def read() -> None:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    heard.append(json.loads(line[5:]))
                    group.cancel_scope.cancel()

        group.start_soon(read)
        subscribe = {"jsonrpc": "2.0", "id": 2, "method": "resources/subscribe", "params": {"uri": "memo://moved"}}
        assert _message(_post(second.url + path, owner.api_key, subscribe, session)) == {
            "jsonrpc": "2.0",
            "id": 2,
            "result": {},
        }
        with anyio.fail_after(20):
            for attempt in range(1000):  # the first process subscribes upstream once it hears of it: touch until then
                _post(second.url + path, owner.api_key, _tool("touch", {"uri": "memo://moved"}, 3 + attempt), session)
                await anyio.sleep(0.2)
    assert heard == [{"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "memo://moved"}}]
