"""Event delivery: how many events per second meshgate delivers to a subscriber's ON_EVENTS, and how long an
event takes from publish to arrival, on SQLite and PostgreSQL (with 1 and 2 delivering processes).

Run:  .venv/bin/python bench/events.py [--events 5000] [--latency-events 200] [--backends sqlite,postgresql]

A subscriber built with the SDK (tests/support/event_subscriber.py) counts what arrives and, per event, the time
from its `time` (set at publish) to its arrival. Throughput: N events are published with delivery paused (the
subscription exists, no process delivers), then the delivering processes start and the subscriber's first-to-last
arrival time gives events/s. Latency: with the delivering processes idle, events are published one at a time
(20 ms apart) and their publish→ON_EVENTS delays give p50/p99. The floor, in the same run: the subscriber called
directly with batches of the same size (events/s), and one direct ON_EVENTS round trip (ms).
Targets (issue 16): >= 2,000 events/s on PostgreSQL; p50 <= 25 ms with LISTEN/NOTIFY.
PostgreSQL needs MESHGATE_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench.proxy_overhead import Caller
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, free_port, spawn_server, start_gateway

BATCH = 50
MCP = {"accept": "application/json, text/event-stream"}


def tool(gateway: Gateway, key: str, name: str, arguments: dict[str, Any], path: str = "/mcp") -> Any:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    answer = httpx.post(
        gateway.url + path, json=message, headers={**MCP, "authorization": f"Bearer {key}"}, timeout=60
    ).json()
    return answer["result"]["structuredContent"]


async def subscriber_tool(upstream: Upstream, name: str) -> Any:
    async with aiohttp.ClientSession() as http:
        caller = Caller(http, upstream.url, {"authorization": f"Bearer {upstream.token}"}, "2025-11-25", name)
        await caller.open()
        message = {"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": {"name": name, "arguments": {}}}
        async with http.post(caller.url, json=message, headers=caller.headers) as response:
            return (await response.json())["result"]["structuredContent"]


async def floor(upstream: Upstream, batches: int) -> tuple[float, float]:
    """Events/s of the subscriber called directly with full batches, and one round trip's median (ms)."""
    events = [{"id": str(uuid.uuid4()), "type": "bench.floor", "source": "bench", "specversion": "1.0",
               "time": "2026-01-01T00:00:00Z"} for _ in range(BATCH)]  # fmt: skip
    async with aiohttp.ClientSession() as http:
        caller = Caller(http, upstream.url, {"authorization": f"Bearer {upstream.token}"}, "2025-11-25", "ON_EVENTS")
        await caller.open()
        trips: list[float] = []
        started = time.perf_counter()
        for index in range(batches):
            message = {
                "jsonrpc": "2.0",
                "id": index + 1,
                "method": "tools/call",
                "params": {"name": "ON_EVENTS", "arguments": {"events": events}},
            }
            sent = time.perf_counter()
            async with http.post(caller.url, json=message, headers=caller.headers) as response:
                await response.read()
            trips.append((time.perf_counter() - sent) * 1000)
        elapsed = time.perf_counter() - started
    await subscriber_tool(upstream, "reset")
    return batches * BATCH / elapsed, statistics.median(trips)


@contextmanager
def subscriber() -> Iterator[Upstream]:
    port = free_port()
    server = Upstream(port, "bench-subscriber", spawn_server("support.event_subscriber", port,
                      ["--port", str(port), "--token", "bench-subscriber", "--count-only"]))  # fmt: skip
    try:
        yield server
    finally:
        server.kill()


async def wait_for(upstream: Upstream, count: int, limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while True:
        stats = await subscriber_tool(upstream, "stats")
        if stats["count"] >= count or time.monotonic() > deadline:
            return dict(stats)
        await asyncio.sleep(0.2)


async def publish_many(gateway: Gateway, slug: str, key: str, count: int, concurrency: int = 8) -> None:
    url = f"{gateway.url}/api/{slug}/events/bench.load"
    headers = {"authorization": f"Bearer {key}"}
    queue = list(range(count))

    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while queue:
                number = queue.pop()
                async with http.post(url, json={"data": {"n": number}}, headers=headers) as response:
                    assert response.status == 201, await response.text()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    backend: str, url: str, processes: int, args: argparse.Namespace, direct: tuple[float, float]
) -> None:
    with tempfile.TemporaryDirectory() as tmp, subscriber() as upstream:
        publisher = start_gateway(url, Path(tmp), "publisher", MESHGATE_EVENT_DELIVERY="off", LOG_LEVEL="INFO",
                                  MESHGATE_ACCESS_LOG="0", MESHGATE_LOG_FORMAT="auto",
                                  MESHGATE_KEY_USAGE_FLUSH_SECONDS="10")  # shipped defaults  # fmt: skip
        workers: list[Gateway] = []
        try:
            owner = publisher.bootstrap("bench@example.com")
            data = {"title": "Subscriber", "connection_type": "HTTP", "connection_url": upstream.url,
                    "connection_token": upstream.token}  # fmt: skip
            conn = tool(publisher, owner.api_key, "COLLECTION_CONNECTIONS_CREATE", {"data": data})["id"]
            tool(publisher, owner.api_key, "EVENT_SUBSCRIBE", {"eventType": "bench.*", "connectionId": conn})
            await publish_many(publisher, owner.organization_slug, owner.api_key, args.events)
            for index in range(processes):
                worker = Gateway(env={**publisher.env, "MESHGATE_EVENT_DELIVERY": "on"}, port=free_port())
                workers.append(worker.start(Path(tmp) / f"worker-{index}.log"))
            stats = await wait_for(upstream, args.events, 300)
            rate = stats["count"] / max(stats["last"] - stats["first"], 1e-9)
            await subscriber_tool(upstream, "reset")
            slug, key = owner.organization_slug, owner.api_key
            # PostgreSQL: publish on one process, deliver from others (NOTIFY wakes them). SQLite serves one
            # process, which publishes and delivers (it wakes itself).
            target = workers[0] if backend == "sqlite" else publisher
            async with aiohttp.ClientSession() as http:
                for number in range(args.latency_events):
                    async with http.post(f"{target.url}/api/{slug}/events/bench.ping", json={"data": number},
                                         headers={"authorization": f"Bearer {key}"}) as response:  # fmt: skip
                        assert response.status == 201
                    await asyncio.sleep(0.02)
            latencies = (await wait_for(upstream, args.latency_events, 60))["latencies_ms"]
        finally:
            for worker in workers:
                worker.stop()
            publisher.stop()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        f"{backend:<10} {processes} process{'es' if processes > 1 else '  '}  "
        f"{rate:8.0f} events/s ({rate / direct[0]:.2f}x the direct floor of {direct[0]:.0f}/s)   "
        f"publish->ON_EVENTS p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  (direct round trip {direct[1]:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    with subscriber() as upstream:
        direct = asyncio.run(floor(upstream, max(args.events // BATCH, 20)))
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                asyncio.run(measure("sqlite", f"sqlite:///{tmp}/bench.db", 1, args, direct))
            continue
        if backend == "postgresql" and not os.environ.get("MESHGATE_TEST_POSTGRES_URL"):
            print("postgresql: skipped (set MESHGATE_TEST_POSTGRES_URL)")
            continue
        for processes in (1, 2):
            with tempfile.TemporaryDirectory() as tmp, fresh_database(backend, Path(tmp)) as url:
                asyncio.run(measure(backend, url, processes, args, direct))


if __name__ == "__main__":
    main()
