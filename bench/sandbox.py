"""Sandbox cost: starting a run, one tool call from inside, and a program of 100 tool calls against the same
100 calls from an SDK client.

Run:  .venv/bin/python bench/sandbox.py [--runs 200] [--calls 100]

Part 1, in this process (`SandboxService` with its real worker processes, tool calls answered by a coroutine
that does nothing): wall time and CPU (this process + the worker, from /proc) per warm run of `return 1`, and
per tool call from inside (a run making 1000 calls minus an empty run).
Part 2, through `meshgate serve` on SQLite with an SDK-built upstream behind a virtual MCP: the official SDK
client makes 100 `tools/call echo` one by one, then one `run_code` whose program makes the same 100 calls;
wall time and gateway CPU (the gateway and its sandbox workers) for each, and their ratio.
Targets (issue 19): a warm run starts in <= 5 ms; a call from inside costs <= 0.3 ms over a direct proxied call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench.proxy_overhead import cpu_seconds
from meshgate.sandbox.service import SandboxService
from meshgate.settings import SandboxLimits
from support.gateway import Gateway, create_connection, rpc, start_gateway, start_upstream
from support.mcp_client import connect

INSIDE_CALLS = 1000


def _family_cpu(pid: int) -> float:
    """CPU of a process and its live children (the sandbox workers)."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):  # ended meanwhile
                total += cpu_seconds(int(child))
    return total


async def _nothing(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"value": None}


async def in_process(runs: int) -> None:
    service = SandboxService(SandboxLimits(tool_calls=INSIDE_CALLS + 1, cpu_seconds=60))
    try:
        await service.warm()
        for _ in range(20):
            await service.run("return 1", [], _nothing)  # warm-up
        me = os.getpid()
        wall, cpu = time.perf_counter(), _family_cpu(me)
        for _ in range(runs):
            outcome = await service.run("return 1", [], _nothing)
            assert outcome.error is None, outcome.error
        start_ms = (time.perf_counter() - wall) / runs * 1000
        start_cpu = (_family_cpu(me) - cpu) / runs * 1000
        code = f"for (let i = 0; i < {INSIDE_CALLS}; i++) await tools.t({{i}}); return 1"
        wall, cpu = time.perf_counter(), _family_cpu(me)
        outcome = await service.run(code, ["t"], _nothing)
        assert outcome.error is None, outcome.error
        call_ms = ((time.perf_counter() - wall) * 1000 - start_ms) / INSIDE_CALLS
        call_cpu = ((_family_cpu(me) - cpu) * 1000 - start_cpu) / INSIDE_CALLS
    finally:
        await service.close()
    print(f"warm run start (return 1)           wall {start_ms:7.3f} ms   CPU {start_cpu:7.3f} ms   target <= 5 ms")
    print(f"tool call bridge, inside (no tool)  wall {call_ms:7.3f} ms   CPU {call_cpu:7.3f} ms")


def _virtual(gateway: Gateway, key: str, connection_id: str) -> str:
    data = {"title": "Bench", "connections": [{"connection_id": connection_id}]}
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "COLLECTION_VIRTUAL_MCP_CREATE", "arguments": {"data": data}},
    }
    created = rpc(gateway.mcp_url, body, key=key).json()["result"]["structuredContent"]
    return f"{gateway.url}/mcp/virtual/{created['id']}"


async def through_gateway(gateway: Gateway, virtual_url: str, key: str, calls: int) -> None:
    assert gateway.process is not None
    pid = gateway.process.pid
    program = f"for (let i = 0; i < {calls}; i++) await tools.upstream_echo({{text: 'x'}}); return 1"
    async with connect(virtual_url, key) as direct, connect(virtual_url + "?mode=code", key) as code:
        for _ in range(50):
            await direct.call_tool("upstream_echo", {"text": "x"})  # warm-up
        for _ in range(5):
            await code.call_tool("run_code", {"code": program})
        wall, cpu = time.perf_counter(), _family_cpu(pid)
        for _ in range(calls):
            await direct.call_tool("upstream_echo", {"text": "x"})
        direct_wall, direct_cpu = time.perf_counter() - wall, _family_cpu(pid) - cpu
        wall, cpu = time.perf_counter(), _family_cpu(pid)
        await code.call_tool("run_code", {"code": "return 1"})
        empty_wall, empty_cpu = time.perf_counter() - wall, _family_cpu(pid) - cpu
        wall, cpu = time.perf_counter(), _family_cpu(pid)
        result = await code.call_tool("run_code", {"code": program})
        assert not result.is_error, result
        code_wall, code_cpu = time.perf_counter() - wall, _family_cpu(pid) - cpu
    per_direct = direct_cpu / calls * 1000
    per_inside = (code_cpu - empty_cpu) / calls * 1000
    print(
        f"{calls} calls from the SDK client     wall {direct_wall * 1000:8.1f} ms   gateway CPU {direct_cpu * 1000:8.1f} ms"
    )
    print(
        f"run_code making {calls} calls          wall {code_wall * 1000:8.1f} ms   gateway CPU {code_cpu * 1000:8.1f} ms"
    )
    print(
        f"ratio run_code / client             wall {code_wall / direct_wall:8.2f}      gateway CPU {code_cpu / direct_cpu:8.2f}"
    )
    print(
        f"empty run_code (return 1)           wall {empty_wall * 1000:8.1f} ms   gateway CPU {empty_cpu * 1000:8.1f} ms"
    )
    print(
        f"per call: direct {per_direct:.3f} ms CPU, from inside {per_inside:.3f} ms CPU, "
        f"difference {per_inside - per_direct:+.3f} ms (target <= +0.3 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(in_process(args.runs))
    upstream = start_upstream(token="bench-token", json_response=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = start_gateway(f"sqlite:///{tmp}/bench.db", Path(tmp), MESHGATE_SANDBOX_TOOL_CALLS="100000")
            try:
                owner = gateway.bootstrap("bench@example.com")
                connection_id = create_connection(gateway, owner.api_key, upstream).rsplit("/", 1)[1]
                virtual_url = _virtual(gateway, owner.api_key, connection_id)
                asyncio.run(through_gateway(gateway, virtual_url, owner.api_key, args.calls))
            finally:
                gateway.stop()
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
