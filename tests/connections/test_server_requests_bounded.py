"""Security review finding 15: an upstream that floods meshgate's session with server-to-client requests gets
at most 16 answered at a time and the rest refused at once with a JSON-RPC error, instead of a task (and a
wait for the caller) per request; an oversized request is refused; the session keeps serving meanwhile.
The upstream is a real STDIO process (tests/support/flood_upstream.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from meshgate.connections.models import ConnectionSecrets, UpstreamConfig
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.stdio import StdioSupervisor
from support.gateway import free_port, spawn_server

pytestmark = [pytest.mark.anyio, pytest.mark.finding(15)]
TESTS = str(Path(__file__).resolve().parents[1])
FLOOD = 2000
ROOTS = {"result": {"roots": [{"uri": "file:///work/project", "name": "project"}]}}


def _client() -> UpstreamClient:
    spec = {
        "command": sys.executable,
        "args": ["-m", "support.flood_upstream"],
        "cwd": TESTS,
        "envVars": {"PYTHONPATH": TESTS},
    }
    config = UpstreamConfig(
        id="conn-flood",
        organization_id="org",
        title="Flood",
        connection_type="STDIO",
        url=None,
        status="active",
        secrets=ConnectionSecrets(stdio=spec),
        connect_timeout_ms=10_000,
        call_timeout_ms=60_000,
    )
    return UpstreamClient(config, stdio=StdioSupervisor(4, 3600))


async def test_a_flood_of_server_requests_is_refused_beyond_sixteen_in_flight() -> None:
    client = _client()
    asked = 0
    answered = 0
    release = anyio.Event()
    refused_all_but_admitted = anyio.Event()

    async def caller_answers(_request: dict[str, Any]) -> dict[str, Any]:
        nonlocal asked
        asked += 1
        await release.wait()
        return ROOTS

    def on_progress(message: dict[str, Any]) -> None:
        nonlocal answered
        answered = int(message["params"]["progress"])
        if answered >= FLOOD - 16:
            refused_all_but_admitted.set()

    outcome: dict[str, Any] = {}

    async def flood() -> None:
        outcome.update(
            await client.request(
                "tools/call",
                {"name": "flood", "arguments": {"count": FLOOD}, "_meta": {"progressToken": 1}},
                on_progress=on_progress,
                on_server_request=caller_answers,
                caller="key-a",
            )
        )

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(flood)
            with anyio.fail_after(30):  # on the old code every request waits for the caller: this never comes
                await refused_all_but_admitted.wait()
            assert asked == 16
            with anyio.fail_after(10):  # the session still serves while 16 requests wait for their caller
                assert "result" in await client.request("ping", caller="key-a")
            release.set()
        assert outcome["result"]["content"][0]["text"] == f"results=16 errors={FLOOD - 16}"
    finally:
        await client.close()


async def test_an_oversized_server_request_is_refused() -> None:
    client = _client()
    asked = 0

    async def caller_answers(_request: dict[str, Any]) -> dict[str, Any]:
        nonlocal asked
        asked += 1
        return ROOTS

    try:
        with anyio.fail_after(30):
            answer = await client.request(
                "tools/call",
                {"name": "big", "arguments": {"bytes": 5 * 1024 * 1024}},
                on_server_request=caller_answers,
                caller="key-a",
            )
        assert answer["result"]["content"][0]["text"] == "results=0 errors=1"
        assert asked == 0
    finally:
        await client.close()


@pytest.fixture(scope="module")
def flood_http_url() -> Iterator[str]:
    port = free_port()
    process = spawn_server("support.flood_http_upstream", port, ["--port", str(port), "--count", str(FLOOD)])
    yield f"http://127.0.0.1:{port}/mcp"
    process.kill()
    process.wait(timeout=10)


async def test_a_flood_on_the_get_stream_creates_no_task_per_request(flood_http_url: str) -> None:
    """The review's case: requests that name no call, on meshgate's GET stream with an HTTP upstream."""
    config = UpstreamConfig(
        id="conn-flood-http",
        organization_id="org",
        title="Flood HTTP",
        connection_type="HTTP",
        url=flood_http_url,
        status="active",
        secrets=ConnectionSecrets(),
        connect_timeout_ms=10_000,
        call_timeout_ms=10_000,
    )
    client = UpstreamClient(config)
    peak = 0
    before = len(asyncio.all_tasks())

    async def count_answers() -> str:
        answer = await client.request("tools/call", {"name": "answers", "arguments": {}})
        return str(answer["result"]["content"][0]["text"])

    try:
        client.watch("test", lambda _message, _caller: None)  # opens meshgate's GET stream
        with anyio.fail_after(30):
            while True:
                peak = max(peak, len(asyncio.all_tasks()) - before)
                if await count_answers() == f"results=0 errors={FLOOD}":  # every one refused, none dropped
                    break
                await anyio.lowlevel.checkpoint()
        assert peak <= 16 + 8, peak  # the answering tasks, the sender of refusals, the stream reader
    finally:
        await client.close()
