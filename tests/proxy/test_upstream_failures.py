"""A dead upstream gives a clean error while other connections keep answering."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import MCPError

from conftest import add_connection, new_owner
from support.gateway import Gateway, Upstream, rpc, start_upstream
from support.mcp_client import connect

pytestmark = pytest.mark.anyio


async def test_killed_upstream_gives_a_clean_error_and_others_keep_answering(
    gateway: Gateway, upstream: Upstream
) -> None:
    owner = await new_owner(gateway)
    doomed = start_upstream(token="doomed-token")
    try:
        healthy = await add_connection(gateway, owner.api_key, upstream, title="Healthy")
        dying = await add_connection(gateway, owner.api_key, doomed, title="Dying")
        async with connect(f"{gateway.url}/mcp/{dying['id']}", owner.api_key, "2026-07-28") as client:
            assert (await client.call_tool("echo", {"text": "alive"})).content[0].text == "alive"  # type: ignore[union-attr]
            doomed.kill()
            with pytest.raises(MCPError, match="upstream Dying is unreachable"):
                await client.call_tool("echo", {"text": "dead?"})
        async with connect(f"{gateway.url}/mcp/{healthy['id']}", owner.api_key) as client:
            assert (await client.call_tool("echo", {"text": "fine"})).content[0].text == "fine"  # type: ignore[union-attr]
    finally:
        doomed.kill()

    raw = rpc(
        f"{gateway.url}/mcp/{dying['id']}", {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}, key=owner.api_key
    )
    assert raw.status_code in (502, 503)
    body = raw.json()
    assert body["id"] == 9 and body["error"]["data"]["code"] in ("upstream_unreachable", "upstream_unavailable")
    rest = httpx.post(
        f"{gateway.url}/mcp/{dying['id']}/call-tool/echo", json={}, headers={"authorization": f"Bearer {owner.api_key}"}
    )
    assert rest.status_code in (502, 503)


async def test_repeated_failures_open_the_circuit_and_fail_fast(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    doomed = start_upstream(token="t")
    conn = await add_connection(gateway, owner.api_key, doomed, title="Flaky")
    doomed.kill()
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    codes = [
        rpc(f"{gateway.url}/mcp/{conn['id']}", body, key=owner.api_key).json()["error"]["data"]["code"]
        for _ in range(7)
    ]
    assert codes[:5] == ["upstream_unreachable"] * 5
    assert codes[5:] == ["upstream_unavailable"] * 2


@pytest.mark.parametrize("mode", ["legacy"])
async def test_hanging_upstream_times_out_cleanly_while_others_answer(
    gateway: Gateway, upstream: Upstream, mode: str
) -> None:
    owner = await new_owner(gateway)
    hanging = await add_connection(gateway, owner.api_key, upstream, title="Hanging", call_timeout_ms=1000)
    other = await add_connection(gateway, owner.api_key, upstream, title="Other")
    async with (
        connect(f"{gateway.url}/mcp/{hanging['id']}", owner.api_key, mode) as slow_client,
        connect(f"{gateway.url}/mcp/{other['id']}", owner.api_key, mode) as fast_client,
    ):
        outcome: list[str] = []
        answers: list[dict[str, Any] | None] = []
        async with anyio.create_task_group() as group:

            async def wait_for_slow() -> None:
                try:
                    await slow_client.call_tool("slow", {})
                    outcome.append("answered")
                except MCPError as error:
                    outcome.append(error.error.message)

            group.start_soon(wait_for_slow)
            answers = [(await fast_client.call_tool("add", {"a": n, "b": 0})).structured_content for n in range(5)]
        assert answers == [{"sum": float(n)} for n in range(5)]
        assert len(outcome) == 1 and "upstream answer broke off" in outcome[0]
        await fast_client.call_tool("release", {})  # let the upstream's slow call end


async def test_an_answer_that_is_not_mcp_becomes_a_clear_error(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    html_url = upstream.url.removesuffix("/mcp") + "/html"
    conn = await add_connection(gateway, owner.api_key, upstream, connection_url=html_url)
    assert conn["status"] == "error"
    response = rpc(
        f"{gateway.url}/mcp/{conn['id']}",
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "x", "arguments": {}}},
        key=owner.api_key,
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert response.json()["id"] == 4
    assert "answered HTTP 200 with text/html, not MCP" in error["message"] and "a login page" in error["message"]


@pytest.mark.finding(10)
async def test_a_get_relays_only_an_event_stream(gateway: Gateway, upstream: Upstream) -> None:
    """A connection pointed at some other HTTP service cannot be used to read it with a GET stream."""
    owner = await new_owner(gateway)
    html_url = upstream.url.removesuffix("/mcp") + "/html"
    conn = await add_connection(gateway, owner.api_key, upstream, connection_url=html_url)
    response = httpx.get(
        f"{gateway.url}/mcp/{conn['id']}",
        headers={"authorization": f"Bearer {owner.api_key}", "accept": "text/event-stream"},
        timeout=10,
    )
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "answered HTTP 200 with text/html to GET, not an SSE stream" in message
    assert "login page" not in response.text
