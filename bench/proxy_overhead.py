"""Proxy overhead: the same `tools/call` sent directly to an upstream, through a floor proxy and through meshgate.

Run:  .venv/bin/python bench/proxy_overhead.py [--calls 2000] [--concurrency 16] [--payload 0|100k|1m]
                                               [--virtual] [--sse | --stdio]

Starts a cheap SDK-built upstream (JSON answers), the floor proxy (`bench/floor_proxy.py`: uvicorn plus
meshgate's upstream client, nothing else) and `meshgate serve` on SQLite with the shipped default settings
(info logs, no access log), then for both protocol generations reports p50 / p99 latency at one and at N
clients, throughput, and the CPU time per call of the floor and of meshgate (from /proc accounting of each
process: user + system time over the calls, uvicorn's HTTP work included). Every meshgate figure is also
given as a ratio to the floor measured in the same run, so the figures of a loaded machine still compare.
`--payload` makes the tool answer that many bytes of text (`blob`); `--virtual` adds the path through a
virtual MCP over the same upstream. Targets (issue 24): meshgate CPU per call <= 1.5x the floor's at 1 and N
clients; p99 through meshgate <= 2x the direct p99; a 1 MB result <= 2x the floor's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.gateway import (
    Gateway,
    create_connection,
    free_port,
    gateway_env,
    rpc,
    run_cli,
    spawn_server,
    start_upstream,
)

# What the test helper sets for debugging and a shipped gateway does not: the bench runs the defaults.
_DEBUG_SETTINGS = ("LOG_LEVEL", "MESHGATE_LOG_FORMAT", "MESHGATE_ACCESS_LOG", "MESHGATE_KEY_USAGE_FLUSH_SECONDS")

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Caller:
    """Sends `tools/call echo` over one keep-alive connection, in the given protocol generation."""

    size = 0  # bytes the `blob` tool answers (set by --payload); 0 calls `echo`

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
        arguments = {"size": self.size} if self.size else {"text": "hello"}
        params: dict[str, Any] = {"name": self.tool, "arguments": arguments}
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
        answered = len(payload) >= self.size if self.size else b'"hello"' in payload
        if response.status != 200 or not answered:
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


@dataclass
class Route:
    """One way to the upstream, and the process whose CPU it costs (None: the client's own call)."""

    name: str
    url: str
    headers: dict[str, str]
    pid: int | None
    tool: str = "echo"
    health_url: str | None = None  # probed while N clients call: how long a request waits behind the calls


@dataclass
class Row:
    p50: float
    p99: float
    p50_n: float
    p99_n: float
    rate_1: float
    rate_n: float
    cpu_1: float  # ms of the path's process per call, one client
    cpu_n: float  # ... N clients
    health_max: float | None = None  # ms: the slowest `/health/live` answer while N clients called


async def probe(url: str, stop: asyncio.Event) -> list[float]:
    """`GET url` every 20 ms until `stop`; the answer times."""
    times: list[float] = []
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            started = time.perf_counter()
            async with http.get(url) as response:
                await response.read()
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)
    return times


async def measure_path(path: Route, era: str, args: argparse.Namespace) -> Row:
    await run_clients(path.url, path.headers, era, 1, 200, tool=path.tool)  # warm-up
    before = cpu_seconds(path.pid) if path.pid else 0.0
    single, wall1 = await run_clients(path.url, path.headers, era, 1, args.calls, tool=path.tool)
    middle = cpu_seconds(path.pid) if path.pid else 0.0
    stop = asyncio.Event()
    prober = asyncio.ensure_future(probe(path.health_url, stop)) if path.health_url else None
    many, wall_n = await run_clients(path.url, path.headers, era, args.concurrency, args.calls, tool=path.tool)
    after = cpu_seconds(path.pid) if path.pid else 0.0
    stop.set()
    health = max(await prober) * 1000 if prober is not None else None
    return Row(
        ms(single, 0.5),
        ms(single, 0.99),
        ms(many, 0.5),
        ms(many, 0.99),
        len(single) / wall1,
        len(many) / wall_n,
        (middle - before) / len(single) * 1000,
        (after - middle) / len(many) * 1000,
        health,
    )


async def measure(paths: list[Route], args: argparse.Namespace) -> None:
    n = args.concurrency
    print(
        f"{'era':11s} {'path':9s} {'p50 ms':>7s} {'p99 ms':>7s} {f'p50@{n}':>7s} {f'p99@{n}':>7s} "
        f"{'req/s':>6s} {f'req/s@{n}':>8s} {'CPU ms/call':>11s} {f'CPU@{n}':>7s}"
    )
    for era in ("2025-11-25", "2026-07-28"):
        rows = {path.name: await measure_path(path, era, args) for path in paths}
        for name, row in rows.items():
            cpu = f"{row.cpu_1:11.3f} {row.cpu_n:7.3f}" if name != "direct" else f"{'-':>11s} {'-':>7s}"
            print(
                f"{era:11s} {name:9s} {row.p50:7.3f} {row.p99:7.3f} {row.p50_n:7.3f} {row.p99_n:7.3f} "
                f"{row.rate_1:6.0f} {row.rate_n:8.0f} {cpu}"
            )
        direct, floor = rows["direct"], rows["floor"]
        for name in (name for name in rows if name not in ("direct", "floor")):
            row = rows[name]
            print(
                f"{era:11s} {name} / floor: CPU {row.cpu_1 / floor.cpu_1:.2f}x (1 client) "
                f"{row.cpu_n / floor.cpu_n:.2f}x ({n} clients); added p50 {row.p50 - direct.p50:.3f} ms "
                f"(floor {floor.p50 - direct.p50:.3f} ms); p99 {row.p99 / direct.p99:.2f}x the direct p99"
                + ("" if row.health_max is None else f"; /health/live at most {row.health_max:.1f} ms meanwhile")
            )


def start_shipped_gateway(database_url: str, tmp: Path, **extra: str) -> Gateway:
    """`meshgate serve` with the shipped defaults (the tests' helper turns on debug logs and the access log)."""
    data = tmp / "gw"
    data.mkdir(parents=True, exist_ok=True)
    env = gateway_env(database_url, data, **extra)
    for name in _DEBUG_SETTINGS:
        env.pop(name, None)
    result = run_cli(env, "migrate")
    if result.returncode != 0:
        raise SystemExit(f"migrate failed: {result.stderr}")
    return Gateway(env=env, port=free_port()).start(data / "gateway.log")


def start_floor(upstream_url: str, token: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    script = str(Path(__file__).resolve().parent / "floor_proxy.py")
    process = subprocess.Popen(
        [sys.executable, script, "--port", str(port), "--upstream", upstream_url, "--token", token]
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return url, process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the floor proxy did not start")


_PAYLOADS = {"0": 0, "100k": 100 * 1024, "1m": 1024 * 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sse", action="store_true", help="measure a legacy HTTP+SSE upstream instead")
    parser.add_argument("--stdio", action="store_true", help="measure a STDIO upstream (a local process) instead")
    parser.add_argument("--payload", choices=sorted(_PAYLOADS), default="0", help="bytes of each tool result")
    parser.add_argument("--virtual", action="store_true", help="also measure the path through a virtual MCP")
    args = parser.parse_args()
    if args.sse or args.stdio:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = start_shipped_gateway(f"sqlite:///{tmp}/bench.db", Path(tmp), MESHGATE_LOCAL_MODE="1")
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
    Caller.size = _PAYLOADS[args.payload]
    upstream = start_upstream(token="bench-token", json_response=True)
    floor_url, floor = start_floor(upstream.url, "bench-token")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = start_shipped_gateway(f"sqlite:///{tmp}/bench.db", Path(tmp))
            assert gateway.process is not None
            try:
                owner = gateway.bootstrap("bench@example.com")
                conn_url = create_connection(gateway, owner.api_key, upstream)
                tool = "blob" if Caller.size else "echo"
                auth = {"authorization": f"Bearer {owner.api_key}"}
                upstream_auth = {"authorization": "Bearer bench-token"}
                paths = [
                    Route("direct", upstream.url, upstream_auth, None, tool),
                    Route("floor", floor_url, {}, floor.pid, tool),
                    Route("meshgate", conn_url, auth, gateway.process.pid, tool, f"{gateway.url}/health/live"),
                ]
                if args.virtual:
                    virtual_url = _virtual(gateway, owner.api_key, conn_url.rsplit("/", 1)[1])
                    paths.append(Route("virtual", virtual_url, auth, gateway.process.pid, f"upstream_{tool}"))
                print(f"payload {args.payload}: {Caller.size} bytes of result text" if Caller.size else "payload: echo")
                asyncio.run(measure(paths, args))
            finally:
                gateway.stop()
    finally:
        floor.kill()
        upstream.kill()


def _virtual(gateway: Gateway, key: str, connection_id: str) -> str:
    data = {"title": "Bench", "connections": [{"connection_id": connection_id}]}
    created = rpc(
        gateway.mcp_url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "COLLECTION_VIRTUAL_MCP_CREATE", "arguments": {"data": data}},
        },
        key=key,
        headers={"mcp-protocol-version": "2025-11-25"},
    ).json()
    return f"{gateway.url}/mcp/virtual/{created['result']['structuredContent']['id']}"


if __name__ == "__main__":
    main()
