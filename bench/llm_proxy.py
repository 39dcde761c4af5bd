"""LLM proxy overhead: the same chat completion sent to an OpenAI-wire provider stand-in directly and through
meshgate's OpenAI-compatible API (`/api/{org_slug}/v1/chat/completions`).

Run:  .venv/bin/python bench/llm_proxy.py [--calls 1000] [--concurrency 8] [--streams 300]

Starts the provider stand-in of the tests (tests/support/ai_providers.py, OpenAI's wire format, served by
uvicorn in its own process on 127.0.0.1) and `meshgate serve` on SQLite with the shipped default settings,
registers the stand-in as the organization's `openai` provider, then reports for the direct path (the floor)
and for meshgate: p50 / p99 latency of a non-streamed completion at one client and at N, throughput, time to
first token of a streamed one (first delta with text) at one client, and CPU time per request of the
stand-in and of meshgate (/proc accounting of each process, uvicorn's HTTP work included). meshgate's
figures are also given as differences and ratios to the floor measured in the same run.
Targets (issue 18): <= 1 ms of meshgate CPU per request, <= 1 ms added to time to first token.
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

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench.proxy_overhead import cpu_seconds, ms, start_shipped_gateway
from support.ai_providers import OPENAI_KEY
from support.gateway import free_port, manage

_MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there bench"}]


@dataclass
class Target:
    name: str
    url: str  # the chat completions endpoint
    key: str
    model: str
    pid: int


def start_standin() -> tuple[str, subprocess.Popen[bytes]]:
    """The OpenAI-wire stand-in under uvicorn (the tests' app), its `/openai/v1` root."""
    port = free_port()
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    env = {**os.environ, "PYTHONPATH": tests + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "uvicorn", "support.ai_providers:Providers", "--factory"]
    options = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen([*command, *options], env=env, cwd=tests)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"http://127.0.0.1:{port}/openai/v1", process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the provider stand-in did not start")


async def complete(http: aiohttp.ClientSession, target: Target) -> float:
    body = orjson.dumps({"model": target.model, "messages": _MESSAGES})
    headers = {"authorization": f"Bearer {target.key}", "content-type": "application/json"}
    started = time.perf_counter()
    async with http.post(target.url, data=body, headers=headers) as response:
        payload = await response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200 or b"echo: hello there bench" not in payload:
        raise SystemExit(f"{target.name}: bad answer {response.status}: {payload[:300]!r}")
    return elapsed


async def first_token(http: aiohttp.ClientSession, target: Target) -> tuple[float, float]:
    """Seconds to the first delta with text, and to the end of the stream."""
    body = orjson.dumps({"model": target.model, "messages": _MESSAGES, "stream": True})
    headers = {"authorization": f"Bearer {target.key}", "content-type": "application/json"}
    started = time.perf_counter()
    ttft: float | None = None
    async with http.post(target.url, data=body, headers=headers) as response:
        async for line in response.content:
            if ttft is None and line.startswith(b"data: {") and b'"content":"echo:' in line:
                ttft = time.perf_counter() - started
    total = time.perf_counter() - started
    if response.status != 200 or ttft is None:
        raise SystemExit(f"{target.name}: bad stream {response.status}")
    return ttft, total


@dataclass
class Row:
    p50: float
    p99: float
    p50_n: float
    p99_n: float
    rate_1: float
    rate_n: float
    cpu_1: float  # ms of the path's process per non-streamed request, one client
    cpu_n: float
    ttft50: float
    ttft99: float
    cpu_stream: float  # ms per streamed request


async def measure(target: Target, args: argparse.Namespace) -> Row:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency * 2)) as http:
        for _ in range(100):
            await complete(http, target)  # warm-up
            await first_token(http, target)
        before = cpu_seconds(target.pid)
        started = time.perf_counter()
        single = [await complete(http, target) for _ in range(args.calls)]
        wall_1 = time.perf_counter() - started
        middle = cpu_seconds(target.pid)
        latencies: list[float] = []

        async def drive() -> None:
            for _ in range(args.calls // args.concurrency):
                latencies.append(await complete(http, target))

        started = time.perf_counter()
        await asyncio.gather(*(drive() for _ in range(args.concurrency)))
        wall_n = time.perf_counter() - started
        after = cpu_seconds(target.pid)
        streams = [await first_token(http, target) for _ in range(args.streams)]
        streamed = cpu_seconds(target.pid)
    ttfts = [ttft for ttft, _ in streams]
    return Row(
        ms(single, 0.5),
        ms(single, 0.99),
        ms(latencies, 0.5),
        ms(latencies, 0.99),
        len(single) / wall_1,
        len(latencies) / wall_n,
        (middle - before) / len(single) * 1000,
        (after - middle) / len(latencies) * 1000,
        ms(ttfts, 0.5),
        ms(ttfts, 0.99),
        (streamed - after) / len(streams) * 1000,
    )


def report(direct: Row, meshgate: Row, n: int) -> None:
    print(
        f"{'path':9s} {'p50 ms':>7s} {'p99 ms':>7s} {f'p50@{n}':>7s} {f'p99@{n}':>7s} {'req/s':>6s} "
        f"{f'req/s@{n}':>8s} {'TTFT p50':>8s} {'TTFT p99':>8s} {'CPU ms/req':>10s} {f'CPU@{n}':>7s} {'CPU/stream':>10s}"
    )
    for name, row in (("direct", direct), ("meshgate", meshgate)):
        print(
            f"{name:9s} {row.p50:7.3f} {row.p99:7.3f} {row.p50_n:7.3f} {row.p99_n:7.3f} {row.rate_1:6.0f} "
            f"{row.rate_n:8.0f} {row.ttft50:8.3f} {row.ttft99:8.3f} {row.cpu_1:10.3f} {row.cpu_n:7.3f} "
            f"{row.cpu_stream:10.3f}"
        )
    print("(direct CPU is the stand-in's own; meshgate CPU is the gateway process's, the stand-in's excluded)")
    print(
        f"meshgate CPU per request: {meshgate.cpu_1:.3f} ms (1 client), {meshgate.cpu_n:.3f} ms ({n} clients), "
        f"{meshgate.cpu_stream:.3f} ms per stream — target <= 1 ms; "
        f"{meshgate.cpu_1 / direct.cpu_1:.2f}x the stand-in's own CPU per request"
    )
    print(
        f"added latency: p50 {meshgate.p50 - direct.p50:+.3f} ms ({meshgate.p50 / direct.p50:.2f}x direct), "
        f"p99 {meshgate.p99 - direct.p99:+.3f} ms ({meshgate.p99 / direct.p99:.2f}x); at {n} clients p50 "
        f"{meshgate.p50_n - direct.p50_n:+.3f} ms ({meshgate.p50_n / direct.p50_n:.2f}x)"
    )
    print(
        f"added time to first token: p50 {meshgate.ttft50 - direct.ttft50:+.3f} ms "
        f"({meshgate.ttft50 / direct.ttft50:.2f}x direct), p99 {meshgate.ttft99 - direct.ttft99:+.3f} ms "
        f"— target <= 1 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--streams", type=int, default=300)
    args = parser.parse_args()
    root, standin = start_standin()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            gateway = start_shipped_gateway(f"sqlite:///{tmp}/bench.db", Path(tmp))
            assert gateway.process is not None
            try:
                owner = gateway.bootstrap("bench@example.com")
                manage(
                    gateway, owner.api_key, "AI_PROVIDER_KEY_CREATE", provider="openai", apiKey=OPENAI_KEY, baseUrl=root
                )
                direct = Target("direct", f"{root}/chat/completions", OPENAI_KEY, "gpt-4o", standin.pid)
                through = Target(
                    "meshgate",
                    f"{gateway.url}/api/{owner.organization_slug}/v1/chat/completions",
                    owner.api_key,
                    "openai/gpt-4o",
                    gateway.process.pid,
                )
                stand_in = asyncio.run(measure(direct, args))
                meshgate = asyncio.run(measure(through, args))
                print(f"{args.calls} requests at 1 client, {args.calls} at {args.concurrency}, {args.streams} streams")
                report(stand_in, meshgate, args.concurrency)
            finally:
                gateway.stop()
    finally:
        standin.kill()


if __name__ == "__main__":
    main()
