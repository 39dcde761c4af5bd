"""Security review finding 15: an upstream that floods meshgate's session with server-to-client requests gets
at most 16 answered at a time and the rest refused at once with a JSON-RPC error, instead of a task (and a
wait for the caller) per request; an oversized request is refused; the session keeps serving meanwhile.
The upstream is a real STDIO process (tests/support/flood_upstream.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from meshgate.connections.models import ConnectionSecrets, UpstreamConfig
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.stdio import StdioSupervisor

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
