"""A legacy HTTP+SSE upstream (2024-11-05 transport, the SDK's `sse_app`) behind meshgate: discovery, both
client generations, credentials injected on the stream and on every message, concurrent callers
multiplexed over one upstream session, and progress notifications before the result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import pytest

from conftest import new_owner
from support.gateway import Gateway, free_port, spawn_server
from support.mcp_client import call, connect
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio
TOKEN = remember_secret("sse-upstream-token-4242")


@dataclass
class SseUpstream:
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sse"


@pytest.fixture(scope="module")
def sse_upstream() -> Iterator[SseUpstream]:
    port = free_port()
    process = spawn_server("support.sse_upstream", port, ["--port", str(port), "--token", TOKEN])
    yield SseUpstream(port)
    process.kill()
    process.wait(timeout=10)


async def _connection(gateway: Gateway, key: str, upstream: SseUpstream) -> dict[str, object]:
    async with connect(gateway.mcp_url, key) as client:
        return await call(
            client,
            "COLLECTION_CONNECTIONS_CREATE",
            {
                "data": {
                    "title": "Legacy",
                    "connection_type": "SSE",
                    "connection_url": upstream.url,
                    "connection_token": TOKEN,
                }
            },
        )


async def test_sse_upstream_is_discovered_and_serves_both_generations(
    gateway: Gateway, sse_upstream: SseUpstream
) -> None:
    owner = await new_owner(gateway)
    conn = await _connection(gateway, owner.api_key, sse_upstream)
    assert conn["status"] == "active", conn
    assert {"echo", "progress", "headers"} <= {tool["name"] for tool in conn["tools"]}  # type: ignore[union-attr, index]
    url = f"{gateway.url}/mcp/{conn['id']}"
    for mode in ("legacy", "2026-07-28"):
        async with connect(url, owner.api_key, mode) as client:
            listed = await client.list_tools()
            assert {"echo", "progress", "headers"} <= {tool.name for tool in listed.tools}
            result = await client.call_tool("echo", {"text": f"via {mode}"})
            assert not result.is_error and result.content[0].text == f"via {mode}"  # type: ignore[union-attr]
            seen = json.loads((await client.call_tool("headers", {})).content[0].text)  # type: ignore[union-attr]
            assert seen["authorization"] == f"Bearer {TOKEN}"  # meshgate's credential, never the caller's key
            assert owner.api_key not in json.dumps(seen)
            assert "x-mesh-token" in seen and "x-request-id" in seen
    async with connect(gateway.mcp_url, owner.api_key) as client:
        tested = await call(client, "CONNECTION_TEST", {"id": conn["id"]})
    assert tested["healthy"] is True


async def test_concurrent_callers_share_one_upstream_session(gateway: Gateway, sse_upstream: SseUpstream) -> None:
    owner = await new_owner(gateway)
    conn = await _connection(gateway, owner.api_key, sse_upstream)
    url = f"{gateway.url}/mcp/{conn['id']}"
    answers: dict[int, str] = {}

    async def caller(number: int) -> None:
        async with connect(url, owner.api_key, "legacy" if number % 2 else "2026-07-28") as client:
            for round_ in range(5):
                result = await client.call_tool("echo", {"text": f"{number}-{round_}"})
                answers[number * 10 + round_] = result.content[0].text  # type: ignore[union-attr]

    async with anyio.create_task_group() as group:
        for number in range(8):
            group.start_soon(caller, number)
    assert answers == {n * 10 + r: f"{n}-{r}" for n in range(8) for r in range(5)}


async def test_progress_arrives_before_the_result(gateway: Gateway, sse_upstream: SseUpstream) -> None:
    owner = await new_owner(gateway)
    conn = await _connection(gateway, owner.api_key, sse_upstream)
    events: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append(f"progress {progress}/{total}")

    async with connect(f"{gateway.url}/mcp/{conn['id']}", owner.api_key) as client:
        result = await client.call_tool("progress", {}, progress_callback=on_progress)
        events.append("result")
    assert not result.is_error
    assert events == ["progress 1.0/3.0", "progress 2.0/3.0", "progress 3.0/3.0", "result"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_cancellation_reaches_the_sse_upstream(gateway: Gateway, sse_upstream: SseUpstream, mode: str) -> None:
    """Legacy clients cancel with notifications/cancelled, 2026 clients by dropping the request; either way
    meshgate cancels its own request on the shared session and the upstream stops working on it."""
    owner = await new_owner(gateway)
    conn = await _connection(gateway, owner.api_key, sse_upstream)
    url = f"{gateway.url}/mcp/{conn['id']}"

    async def cancellations() -> int:
        async with connect(url, owner.api_key) as other:
            return int((await other.call_tool("cancellations", {})).content[0].text)  # type: ignore[union-attr]

    before = await cancellations()
    with anyio.fail_after(15):
        async with connect(url, owner.api_key, mode) as client, anyio.create_task_group() as group:
            scope = anyio.CancelScope()

            async def waiting() -> None:
                with scope:
                    await client.call_tool("wait", {})

            group.start_soon(waiting)
            await anyio.sleep(1)  # the upstream is working on it
            scope.cancel()
        while True:
            if await cancellations() > before:
                break
            await anyio.sleep(0.05)


async def test_each_api_key_gets_its_own_upstream_session(gateway: Gateway, sse_upstream: SseUpstream) -> None:
    """An upstream keeps state per session: two credentials bridged onto it never share one, while the same
    credential (over any number of client sessions, of either generation) keeps its own."""
    owner = await new_owner(gateway)
    conn = await _connection(gateway, owner.api_key, sse_upstream)
    async with connect(gateway.mcp_url, owner.api_key) as admin:
        second = remember_secret((await call(admin, "API_KEY_CREATE", {"name": "second caller"}))["key"])
    url = f"{gateway.url}/mcp/{conn['id']}"

    async def upstream_session(key: str, mode: str) -> str:
        async with connect(url, key, mode) as client:  # `headers` tells the session its call was posted to
            seen = json.loads((await client.call_tool("headers", {})).content[0].text)  # type: ignore[union-attr]
        assert seen["session"]
        return str(seen["session"])

    first_legacy = await upstream_session(owner.api_key, "legacy")
    first_modern = await upstream_session(owner.api_key, "2026-07-28")
    other = await upstream_session(second, "legacy")
    other_again = await upstream_session(second, "2026-07-28")
    assert first_legacy == first_modern
    assert other == other_again
    assert other != first_legacy
