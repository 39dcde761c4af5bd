"""meshgate CPU per proxied call with tracing (default 10% ratio) and metrics on, against both off.

Run:  .venv/bin/python bench/observability_overhead.py [--calls 4000] [--rounds 3]

Two gateways on SQLite in turn (same upstream): one with the defaults, one with OTEL_SDK_DISABLED=true
and MESHGATE_METRICS=off. Each round sends the same 2026-era `tools/call` load at 16 clients to both;
CPU is the gateway process's own user + system time. Target (issue 7): under 10% more CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from proxy_overhead import cpu_seconds, run_clients

from support.gateway import Gateway, Upstream, create_connection, start_gateway, start_upstream


def _connect(gateway: Gateway, upstream: Upstream) -> tuple[str, str]:
    owner = gateway.bootstrap(f"obs-{gateway.port}@example.com")
    return create_connection(gateway, owner.api_key, upstream), owner.api_key


async def _cpu_per_call(gateway: Gateway, url: str, key: str, calls: int) -> float:
    assert gateway.process is not None
    headers = {"authorization": f"Bearer {key}"}
    await run_clients(url, headers, "2026-07-28", 16, 400)  # warm-up
    before = cpu_seconds(gateway.process.pid)
    latencies, _ = await run_clients(url, headers, "2026-07-28", 16, calls)
    return (cpu_seconds(gateway.process.pid) - before) / len(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    upstream = start_upstream(token="bench-token", json_response=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            on = start_gateway(f"sqlite:///{tmp}/on.db", Path(tmp), "on", LOG_LEVEL="WARNING", MESHGATE_ACCESS_LOG="0")
            off = start_gateway(
                f"sqlite:///{tmp}/off.db",
                Path(tmp),
                "off",
                LOG_LEVEL="WARNING",
                MESHGATE_ACCESS_LOG="0",
                OTEL_SDK_DISABLED="true",
                MESHGATE_METRICS="off",
            )
            try:
                targets = [(on, *_connect(on, upstream)), (off, *_connect(off, upstream))]
                results: dict[int, list[float]] = {on.port: [], off.port: []}
                for _ in range(args.rounds):
                    for gateway, url, key in targets:
                        results[gateway.port].append(asyncio.run(_cpu_per_call(gateway, url, key, args.calls)))
                with_obs = statistics.median(results[on.port])
                without = statistics.median(results[off.port])
                print(
                    f"tracing 10% + metrics on : {with_obs:.3f} ms CPU per call  (rounds: {', '.join(f'{v:.3f}' for v in results[on.port])})"
                )
                print(
                    f"tracing and metrics off  : {without:.3f} ms CPU per call  (rounds: {', '.join(f'{v:.3f}' for v in results[off.port])})"
                )
                print(f"difference: {(with_obs - without) / without * 100:+.1f}% (target: under +10%)")
            finally:
                on.stop()
                off.stop()
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
