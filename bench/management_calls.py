"""Management call throughput and latency through a real `meshgate serve` process.

Run:  .venv/bin/python bench/management_calls.py [--calls 2000] [--database-url sqlite:///...]

Measures, over one keep-alive HTTP connection, `tools/list` and `tools/call ORGANIZATION_GET` with a
bootstrap key: the authenticated steady state (principal from the in-memory cache).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.gateway import start_gateway


def _measure(client: httpx.Client, url: str, body: dict[str, object], calls: int) -> list[float]:
    payload = json.dumps(body).encode()
    timings: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        response = client.post(url, content=payload)
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:200]}")
    return timings


def _report(name: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    rate = len(ordered) / sum(ordered)
    print(f"{name:28s} n={len(ordered):5d}  p50={p50:6.2f} ms  p99={p99:6.2f} ms  {rate:7.0f} req/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        gateway = start_gateway(url, Path(tmp))
        try:
            owner = gateway.bootstrap(f"bench-{time.time_ns()}@example.com")
            headers = {
                "authorization": f"Bearer {owner.api_key}",
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
            }
            with httpx.Client(headers=headers, timeout=30) as client:
                list_body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
                call_body = {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "ORGANIZATION_GET", "arguments": {}},
                }
                _measure(client, gateway.mcp_url, list_body, 100)  # warm-up
                _report("tools/list", _measure(client, gateway.mcp_url, list_body, args.calls))
                _report("tools/call ORGANIZATION_GET", _measure(client, gateway.mcp_url, call_body, args.calls))
                print(f"(statistics: python {sys.version.split()[0]}, database {url.split(':')[0]})")
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
