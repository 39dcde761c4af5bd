"""CPU per upstream request: aiohttp against meshgate's own HTTP/1.1 pool (connections/upstream/http11.py).

Run:  .venv/bin/python bench/upstream_client.py [--calls 3000]

The reason meshgate does not use aiohttp on the hot path; the same JSON `tools/call` is sent over one
keep-alive connection to a local SDK-built upstream, and this process's own CPU time is divided by the
number of requests.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from meshgate.connections.upstream.http11 import Pool
from support.gateway import start_upstream

BODY = orjson.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "echo",
            "arguments": {"text": "hello"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
)
HEADERS = {
    "authorization": "Bearer bench-token",
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def with_aiohttp(url: str, calls: int) -> float:
    connector = aiohttp.TCPConnector(limit=10)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as http:
        for _ in range(100):
            async with http.post(url, data=BODY, headers=HEADERS) as response:
                await response.read()
        started = cpu()
        for _ in range(calls):
            async with http.post(url, data=BODY, headers=HEADERS) as response:
                async for _chunk in response.content.iter_any():
                    pass
        return (cpu() - started) / calls


async def with_pool(url: str, calls: int) -> float:
    pool = Pool(url, ssl_context=None, connect_timeout=10)
    try:
        for _ in range(100):
            response = await pool.request("POST", HEADERS, BODY, head_timeout=30)
            await response.read(1 << 20)
            response.release()
        started = cpu()
        for _ in range(calls):
            response = await pool.request("POST", HEADERS, BODY, head_timeout=30)
            async for _chunk in response.iter_chunks():
                pass
            response.release()
        return (cpu() - started) / calls
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    upstream = start_upstream(token="bench-token", json_response=True)
    try:
        time.sleep(0.2)
        for name, run in (("aiohttp", with_aiohttp), ("meshgate http11 pool", with_pool)):
            per_call = asyncio.run(run(upstream.url, args.calls))
            print(f"{name:22s} {per_call * 1e6:7.1f} µs CPU per request")
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
