"""Callers' own upstream sessions (`connections/upstream/callers.py`) on real upstreams: one per credential,
bounded (least recently used closed first, refused while all are in use), closed when idle by the injected
clock, and closed when the connection changes. STDIO sessions are processes, so closing one is seen in /proc."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from test_upstream_transports import stdio_config

from meshgate.connections.models import ConnectionSecrets, UpstreamConfig
from meshgate.connections.upstream import UpstreamClient
from meshgate.connections.upstream.callers import SessionLimits
from meshgate.connections.upstream.stdio import StdioSupervisor
from meshgate.errors import UpstreamUnavailable
from support.gateway import free_port, spawn_server

pytestmark = pytest.mark.anyio
IDLE_S = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _text(client: UpstreamClient, caller: str, tool: str) -> str:
    answer = await client.request("tools/call", {"name": tool, "arguments": {}}, caller=caller)
    return str(answer["result"]["content"][0]["text"])


async def _sse_session(client: UpstreamClient, caller: str) -> str:
    """The upstream session a call of `caller` was posted to (`headers` of tests/support/sse_upstream.py)."""
    return str(json.loads(await _text(client, caller, "headers"))["session"])


def _stdio_client(clock: Clock, max_sessions: int = 3) -> UpstreamClient:
    limits = SessionLimits(max_sessions=max_sessions, idle_s=IDLE_S, clock=clock)
    return UpstreamClient(stdio_config(), stdio=StdioSupervisor(10, 3600), sessions=limits)


async def test_each_caller_gets_its_own_stdio_process_and_keeps_it() -> None:
    client = _stdio_client(Clock())
    try:
        first = await _text(client, "key-a", "pid")
        assert await _text(client, "key-a", "pid") == first
        assert await _text(client, "key-b", "pid") != first
        assert sorted(client.callers.callers()) == ["key-a", "key-b"]
    finally:
        await client.close()


async def test_an_idle_caller_session_closes_after_the_idle_time() -> None:
    clock = Clock()
    client = _stdio_client(clock)
    try:
        pid = int(await _text(client, "key-a", "pid"))
        clock.now += IDLE_S - 1
        assert await client.callers.sweep() == 0
        assert _alive(pid)
        clock.now += 2
        assert await client.callers.sweep() == 1
        assert not _alive(pid)
        assert int(await _text(client, "key-a", "pid")) != pid  # a new session on the next call
    finally:
        await client.close()


async def test_the_least_recently_used_caller_session_closes_over_the_bound() -> None:
    clock = Clock()
    client = _stdio_client(clock, max_sessions=2)
    try:
        a = int(await _text(client, "key-a", "pid"))
        clock.now += 1
        b = int(await _text(client, "key-b", "pid"))
        clock.now += 1
        await _text(client, "key-a", "pid")  # b is now the least recently used
        c = int(await _text(client, "key-c", "pid"))
        assert sorted(client.callers.callers()) == ["key-a", "key-c"]
        assert _alive(a) and _alive(c)
        await _gone(b)  # closed in the background
    finally:
        await client.close()


async def test_sessions_in_use_are_neither_evicted_nor_idle_closed() -> None:
    clock = Clock()
    client = _stdio_client(clock, max_sessions=2)
    try:
        async with client.session_for("key-a"), client.session_for("key-b"):
            a = int(await _text(client, "key-a", "pid"))
            clock.now += IDLE_S * 2
            assert await client.callers.sweep() == 0
            with pytest.raises(UpstreamUnavailable, match="MESHGATE_UPSTREAM_SESSIONS_MAX=2"):
                await _text(client, "key-c", "pid")
            assert _alive(a)
    finally:
        await client.close()


async def test_caller_sessions_close_when_the_connection_changes() -> None:
    client = _stdio_client(Clock())
    try:
        pid = int(await _text(client, "key-a", "pid"))
        async with client.session_for("key-b"):
            busy = int(await _text(client, "key-b", "pid"))
            client.retire()  # what the pool does on a change
            await _gone(pid)
            assert _alive(busy)  # a session in use stays until it is let go
        await _gone(busy)
    finally:
        await client.close()


async def _gone(pid: int) -> None:
    with anyio.fail_after(15):
        while True:
            if not _alive(pid):
                break
            await anyio.sleep(0.05)


@pytest.fixture(scope="module")
def sse_url() -> Iterator[str]:
    port = free_port()
    process = spawn_server("support.sse_upstream", port, ["--port", str(port), "--token", "caller-sessions-token"])
    yield f"http://127.0.0.1:{port}/sse"
    process.kill()
    process.wait(timeout=10)


async def test_sse_callers_get_their_own_sessions_which_close_when_idle(sse_url: str) -> None:
    clock = Clock()
    config = UpstreamConfig(
        id="conn-sse",
        organization_id="org",
        title="Legacy",
        connection_type="SSE",
        url=sse_url,
        status="active",
        secrets=ConnectionSecrets(token="caller-sessions-token"),
        connect_timeout_ms=10_000,
        call_timeout_ms=10_000,
    )
    client = UpstreamClient(config, sessions=SessionLimits(max_sessions=5, idle_s=IDLE_S, clock=clock))
    try:
        first = await _sse_session(client, "key-a")
        assert await _sse_session(client, "key-a") == first
        assert await _sse_session(client, "key-b") != first
        clock.now += IDLE_S
        assert await client.callers.sweep() == 2
        assert await _sse_session(client, "key-a") != first
    finally:
        await client.close()


async def test_an_idle_stdio_process_stops_by_the_supervisors_clock() -> None:
    """`MESHGATE_STDIO_IDLE_SECONDS`: the process stops, its session stays, and the next call starts a new one."""
    clock = Clock()
    supervisor = StdioSupervisor(4, IDLE_S, clock=clock)
    client = UpstreamClient(stdio_config(), stdio=supervisor)
    try:
        pid = int(await _text(client, "key-a", "pid"))
        clock.now += IDLE_S - 1
        assert await supervisor.stop_idle() == 0
        assert _alive(pid) and supervisor.running == 1
        clock.now += 2
        assert await supervisor.stop_idle() == 1
        assert not _alive(pid) and supervisor.running == 0
        assert client.callers.callers() == ["key-a"]
        assert int(await _text(client, "key-a", "pid")) != pid
    finally:
        await client.close()
