"""`UpstreamClient` over each transport: which parts it builds, and what it refuses to do on the wrong one."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest

from meshgate.connections.models import ConnectionSecrets, UpstreamConfig
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.http11 import Pool
from meshgate.connections.upstream.stdio import StdioSupervisor
from meshgate.errors import UpstreamUnavailable

pytestmark = pytest.mark.anyio
TESTS = str(Path(__file__).resolve().parents[1])


def stdio_config(title: str = "Local") -> UpstreamConfig:
    spec = {
        "command": sys.executable,
        "args": ["-m", "support.stdio_upstream"],
        "cwd": TESTS,
        "envVars": {"PYTHONPATH": TESTS},
    }
    return UpstreamConfig(
        id="conn-stdio",
        organization_id="org",
        title=title,
        connection_type="STDIO",
        url=None,
        status="active",
        secrets=ConnectionSecrets(stdio=spec),
        connect_timeout_ms=10_000,
        call_timeout_ms=10_000,
    )


def _pools() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, Pool))


async def test_a_stdio_client_builds_no_http_pool() -> None:
    before = _pools()
    client = UpstreamClient(stdio_config(), stdio=StdioSupervisor(2, 60))
    try:
        assert _pools() == before
        assert client.multiplexed
        with pytest.raises(UpstreamUnavailable, match="not reached over Streamable HTTP"):
            await client.open("POST", {}, b"{}")
        answer = await client.request("tools/call", {"name": "echo", "arguments": {"text": "no pool"}})
        assert answer["result"]["content"][0]["text"] == "no pool"
        assert _pools() == before
    finally:
        await client.close()


async def test_an_http_client_builds_its_pool() -> None:
    before = _pools()
    config = UpstreamConfig(
        id="conn-http",
        organization_id="org",
        title="Remote",
        connection_type="HTTP",
        url="http://127.0.0.1:9/mcp",
        status="active",
        secrets=ConnectionSecrets(),
        connect_timeout_ms=1000,
        call_timeout_ms=1000,
    )
    client = UpstreamClient(config)
    try:
        assert _pools() == before + 1
        assert not client.multiplexed
    finally:
        await client.close()
