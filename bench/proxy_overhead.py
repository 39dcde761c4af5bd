"""Proxy overhead: the same `tools/call` sent directly to an upstream and through meshgate.

Run:  .venv/bin/python bench/proxy_overhead.py [--calls 2000] [--concurrency 16] [--sse | --stdio]

Starts a cheap SDK-built echo upstream (JSON answers) and `meshgate serve` on SQLite, then for both
protocol generations reports median / p99 latency at one client, throughput at 1 and N concurrent
clients, and meshgate's CPU time per proxied call (from /proc accounting of the gateway process:
user + system time over the calls, so it includes uvicorn's HTTP work). Targets (issue 3): at most
1.0 ms of meshgate CPU per call and at most 0.6 ms added median latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.gateway import Gateway, create_connection, free_port, rpc, spawn_server, start_gateway, start_upstream

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Caller:
    """Sends `tools/call echo` over one keep-alive connection, in the given protocol generation."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, headers: dict[str, str], era: str, tool: str = "echo"
    ) -> None:
        self.http = http
        self.url = url
        self.era = era
        self.tool = tool
        self.headers = {**headers, "content-type": "application/json", "accept": "application/json, text/event-stream"}
        self.ids = 0

    async def open(self) -> None:
        if self.era == "2026-07-28":
            self.headers.update(
                {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": self.tool}
            )
            return
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
        async with self.http.post(self.url, data=orjson.dumps(init), headers=self.headers) as response:
            await response.read()
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
        self.headers["mcp-protocol-version"] = "2025-11-25"
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        async with self.http.post(self.url, data=orjson.dumps(note), headers=self.headers) as response:
            await response.read()

    async def call(self) -> float:
        self.ids += 1
        params: dict[str, Any] = {"name": self.tool, "arguments": {"text": "hello"}}
        if self.era == "2026-07-28":
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        body = orjson.dumps({"jsonrpc": "2.0", "id": self.ids, "method": "tools/call", "params": params})
        started = time.perf_counter()
        async with self.http.post(self.url, data=body, headers=self.headers) as response:
            payload = await response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or b'"hello"' not in payload:
            raise SystemExit(f"bad answer {response.status}: {payload[:300]!r}")
        return elapsed


async def run_clients(  # noqa: PLR0917
    url: str,
    headers: dict[str, str],
    era: str,
    clients: int,
    calls: int,
    caller_type: type[Caller] = Caller,
    tool: str = "echo",
) -> tuple[list[float], float]:
    """`calls` calls spread over `clients` concurrent connections; returns latencies and wall time."""
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        callers = [caller_type(http, url, headers, era, tool) for _ in range(clients)]
        for caller in callers:
            await caller.open()
        for caller in callers:
            await caller.call()  # warm connections
        latencies: list[float] = []
        per_client = calls // clients

        async def drive(caller: Caller) -> None:
            for _ in range(per_client):
                latencies.append(await caller.call())

        started = time.perf_counter()
        await asyncio.gather(*(drive(c) for c in callers))
        return latencies, time.perf_counter() - started


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure_sse(gateway: Gateway, conn_url: str, key: str, args: argparse.Namespace, kind: str) -> None:
    """Through meshgate to an SSE or STDIO upstream (no direct row: the client side is Streamable HTTP)."""
    assert gateway.process is not None
    auth = {"authorization": f"Bearer {key}"}
    print(
        f"{'era':11s} {'path':12s} {'p50 ms':>7s} {'p99 ms':>7s} {'1-client req/s':>15s} {f'{args.concurrency}-client req/s':>16s} {'CPU ms/call':>11s}"
    )
    for era in ("2025-11-25", "2026-07-28"):
        await run_clients(conn_url, auth, era, 1, 200)  # warm-up
        single, wall1 = await run_clients(conn_url, auth, era, 1, args.calls)
        before = cpu_seconds(gateway.process.pid)
        many, wall_n = await run_clients(conn_url, auth, era, args.concurrency, args.calls)
        cpu = (cpu_seconds(gateway.process.pid) - before) / len(many) * 1000
        print(
            f"{era:11s} {'meshgate→' + kind:12s} {ms(single, 0.5):7.3f} {ms(single, 0.99):7.3f} "
            f"{len(single) / wall1:15.0f} {len(many) / wall_n:16.0f} {cpu:11.3f}"
        )


def sse_connection(gateway: Gateway, key: str) -> tuple[str, Any]:
    port = free_port()
    process = spawn_server("support.sse_upstream", port, ["--port", str(port), "--token", "bench-token"])
    data = {
        "title": "SSE bench",
        "connection_type": "SSE",
        "connection_url": f"http://127.0.0.1:{port}/sse",
        "connection_token": "bench-token",
    }
    return _create(gateway, key, data), process


def stdio_connection(gateway: Gateway, key: str) -> str:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    data = {
        "title": "STDIO bench",
        "connection_type": "STDIO",
        "connection_headers": {
            "command": sys.executable,
            "args": ["-m", "support.stdio_upstream"],
            "envVars": {"PYTHONPATH": tests},
        },
    }
    return _create(gateway, key, data)


def _create(gateway: Gateway, key: str, data: dict[str, Any]) -> str:
    created = rpc(
        gateway.mcp_url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "COLLECTION_CONNECTIONS_CREATE", "arguments": {"data": data}},
        },
        key=key,
        headers={"mcp-protocol-version": "2025-11-25"},
    ).json()
    return f"{gateway.url}/mcp/{created['result']['structuredContent']['id']}"


async def measure(gateway: Gateway, upstream_url: str, conn_url: str, key: str, args: argparse.Namespace) -> None:
    assert gateway.process is not None
    auth = {"authorization": f"Bearer {key}"}
    upstream_auth = {"authorization": "Bearer bench-token"}
    print(
        f"{'era':11s} {'path':8s} {'p50 ms':>7s} {'p99 ms':>7s} {'1-client req/s':>15s} {f'{args.concurrency}-client req/s':>16s}"
    )
    for era in ("2025-11-25", "2026-07-28"):
        rows: dict[str, tuple[float, float]] = {}
        for path, url, headers in (("direct", upstream_url, upstream_auth), ("meshgate", conn_url, auth)):
            await run_clients(url, headers, era, 1, 200)  # warm-up
            single, wall1 = await run_clients(url, headers, era, 1, args.calls)
            before = cpu_seconds(gateway.process.pid)
            many, wall_n = await run_clients(url, headers, era, args.concurrency, args.calls)
            cpu = cpu_seconds(gateway.process.pid) - before
            rows[path] = (statistics.median(single) * 1000, cpu / len(many) * 1000)
            print(
                f"{era:11s} {path:8s} {ms(single, 0.5):7.3f} {ms(single, 0.99):7.3f} "
                f"{len(single) / wall1:15.0f} {len(many) / wall_n:16.0f}"
            )
        added = rows["meshgate"][0] - rows["direct"][0]
        print(
            f"{era:11s} added median latency {added:.3f} ms; meshgate CPU per proxied call {rows['meshgate'][1]:.3f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sse", action="store_true", help="measure a legacy HTTP+SSE upstream instead")
    parser.add_argument("--stdio", action="store_true", help="measure a STDIO upstream (a local process) instead")
    args = parser.parse_args()
    if args.sse or args.stdio:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = start_gateway(f"sqlite:///{tmp}/bench.db", Path(tmp), MESHGATE_LOCAL_MODE="1")
            try:
                owner = gateway.bootstrap("bench@example.com")
                if args.stdio:
                    asyncio.run(
                        measure_sse(gateway, stdio_connection(gateway, owner.api_key), owner.api_key, args, "STDIO")
                    )
                    return
                conn_url, process = sse_connection(gateway, owner.api_key)
                try:
                    asyncio.run(measure_sse(gateway, conn_url, owner.api_key, args, "SSE"))
                finally:
                    process.kill()
            finally:
                gateway.stop()
        return
    upstream = start_upstream(token="bench-token", json_response=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = start_gateway(f"sqlite:///{tmp}/bench.db", Path(tmp))
            try:
                owner = gateway.bootstrap("bench@example.com")
                conn_url = create_connection(gateway, owner.api_key, upstream)
                asyncio.run(measure(gateway, upstream.url, conn_url, owner.api_key, args))
            finally:
                gateway.stop()
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
