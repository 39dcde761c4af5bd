"""Virtual MCP cost: `tools/list` of 10 upstreams x 50 tools from meshgate's cache, and `tools/call`
through the virtual MCP next to the same call through `/mcp/{connection_id}`.

Run:  .venv/bin/python bench/virtual_mcp.py [--calls 2000] [--concurrency 16]

Starts 10 SDK-built upstreams (JSON answers, 50 tools each) and `meshgate serve` on SQLite, puts all ten
behind one virtual MCP, and reports per protocol generation: p50 / p99 latency at one client, throughput
at 1 and N clients, and meshgate's CPU time per request (/proc accounting of the gateway process).
Targets (issue 6): tools/list <= 2 ms and tools/call <= 1.2 ms of meshgate CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench.proxy_overhead import Caller, cpu_seconds, ms, run_clients
from support.gateway import Gateway, create_connection, rpc, start_gateway, start_upstream
from support.upstream import BASE_TOOLS as UPSTREAM_TOOLS

UPSTREAMS = 10
TOOLS_EACH = 50
BASE_TOOLS = len(UPSTREAM_TOOLS)  # tests/support/upstream.py's own tools; the rest are generated


class Lister(Caller):
    """Sends `tools/list` and checks that every tool of every upstream is there."""

    async def open(self) -> None:
        await super().open()
        if self.era == "2026-07-28":
            self.headers.update({"mcp-method": "tools/list"})
            self.headers.pop("mcp-name", None)

    async def call(self) -> float:
        self.ids += 1
        params: dict[str, Any] = {}
        if self.era == "2026-07-28":
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        body = orjson.dumps({"jsonrpc": "2.0", "id": self.ids, "method": "tools/list", "params": params})
        started = time.perf_counter()
        async with self.http.post(self.url, data=body, headers=self.headers) as response:
            payload = await response.read()
        elapsed = time.perf_counter() - started
        tools = orjson.loads(payload).get("result", {}).get("tools", [])
        if response.status != 200 or len(tools) != UPSTREAMS * TOOLS_EACH:
            raise SystemExit(f"bad answer {response.status}: {payload[:300]!r}")
        return elapsed


def _virtual(gateway: Gateway, key: str, connection_ids: list[str]) -> str:
    data = {"title": "Bench", "connections": [{"connection_id": c} for c in connection_ids]}
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


async def measure(gateway: Gateway, virtual_url: str, proxy_url: str, key: str, args: argparse.Namespace) -> None:
    assert gateway.process is not None
    auth = {"authorization": f"Bearer {key}"}
    print(
        f"{'era':11s} {'request':26s} {'p50 ms':>7s} {'p99 ms':>7s} {'1-client req/s':>15s} "
        f"{f'{args.concurrency}-client req/s':>16s} {'CPU ms/req':>10s}"
    )
    rows: list[tuple[str, str, type[Caller], str]] = [
        ("virtual tools/list (500)", virtual_url, Lister, ""),
        ("virtual tools/call", virtual_url, Caller, "upstream_3_echo"),
        ("proxy tools/call", proxy_url, Caller, "echo"),
    ]
    for era in ("2025-11-25", "2026-07-28"):
        for label, url, caller, tool in rows:
            await run_clients(url, auth, era, 1, 200, caller, tool)  # warm-up (fills the list cache)
            single, wall1 = await run_clients(url, auth, era, 1, args.calls, caller, tool)
            before = cpu_seconds(gateway.process.pid)
            many, wall_n = await run_clients(url, auth, era, args.concurrency, args.calls, caller, tool)
            cpu = (cpu_seconds(gateway.process.pid) - before) / len(many) * 1000
            print(
                f"{era:11s} {label:26s} {ms(single, 0.5):7.3f} {ms(single, 0.99):7.3f} "
                f"{len(single) / wall1:15.0f} {len(many) / wall_n:16.0f} {cpu:10.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    upstreams = [
        start_upstream(token="bench-token", json_response=True, tools=TOOLS_EACH - BASE_TOOLS) for _ in range(UPSTREAMS)
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = start_gateway(f"sqlite:///{tmp}/bench.db", Path(tmp))
            try:
                owner = gateway.bootstrap("bench@example.com")
                urls = [create_connection(gateway, owner.api_key, upstream) for upstream in upstreams]
                ids = [url.rsplit("/", 1)[1] for url in urls]
                # every connection is titled "Upstream": their prefixes are upstream, upstream_2 ... upstream_10
                virtual_url = _virtual(gateway, owner.api_key, ids)
                asyncio.run(measure(gateway, virtual_url, urls[2], owner.api_key, args))
            finally:
                gateway.stop()
    finally:
        for upstream in upstreams:
            upstream.kill()


if __name__ == "__main__":
    main()
