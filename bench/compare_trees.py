"""Before and after: the same proxied `tools/call` through two meshgate source trees, measured side by side.

Run:  git archive <commit> src | tar -x -C /tmp/before
      .venv/bin/python bench/compare_trees.py --before /tmp/before/src [--blocks 20] [--block-calls 200]

Starts one SDK-built upstream and two gateways with the shipped default settings, one on this tree and one
on the `--before` tree (its `src` on PYTHONPATH), and alternates blocks of calls between them at one and at N
clients, for both protocol generations. Load from elsewhere on the machine falls on both alike, so the
ratio after / before reads true on a busy machine where absolute figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench.proxy_overhead import cpu_seconds, ms, run_clients, start_shipped_gateway
from support.gateway import Gateway, create_connection, start_upstream


async def compare(gateways: dict[str, tuple[Gateway, str, str]], args: argparse.Namespace) -> None:
    n = args.concurrency
    print(f"{'era':11s} {'clients':>7s} {'tree':7s} {'p50 ms':>7s} {'p99 ms':>7s} {'CPU ms/call':>11s}")
    for era in ("2025-11-25", "2026-07-28"):
        for clients in (1, n):
            latencies: dict[str, list[float]] = {name: [] for name in gateways}
            cpu: dict[str, float] = dict.fromkeys(gateways, 0.0)
            calls: dict[str, int] = dict.fromkeys(gateways, 0)
            for _gw, url, key in gateways.values():
                await run_clients(url, {"authorization": f"Bearer {key}"}, era, clients, 200)  # warm-up
            for block in range(args.blocks):
                order = list(gateways) if block % 2 == 0 else list(reversed(gateways))
                for name in order:
                    gateway, url, key = gateways[name]
                    assert gateway.process is not None
                    before = cpu_seconds(gateway.process.pid)
                    done, _wall = await run_clients(
                        url, {"authorization": f"Bearer {key}"}, era, clients, args.block_calls
                    )
                    cpu[name] += cpu_seconds(gateway.process.pid) - before
                    calls[name] += len(done)
                    latencies[name].extend(done)
            for name in gateways:
                per_call = cpu[name] / calls[name] * 1000
                print(
                    f"{era:11s} {clients:7d} {name:7s} {ms(latencies[name], 0.5):7.3f} "
                    f"{ms(latencies[name], 0.99):7.3f} {per_call:11.3f}"
                )
            ratio = (cpu["after"] / calls["after"]) / (cpu["before"] / calls["before"])
            p50 = ms(latencies["after"], 0.5) / ms(latencies["before"], 0.5)
            p99 = ms(latencies["after"], 0.99) / ms(latencies["before"], 0.99)
            print(f"{era:11s} {clients:7d} after/before: CPU {ratio:.3f}x, p50 {p50:.3f}x, p99 {p99:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True, type=Path, help="the `src` directory of the earlier tree")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-calls", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    upstream = start_upstream(token="bench-token", json_response=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            after = start_shipped_gateway(f"sqlite:///{tmp}/after.db", Path(tmp) / "after")
            before = start_shipped_gateway(
                f"sqlite:///{tmp}/before.db", Path(tmp) / "before", PYTHONPATH=str(args.before.resolve())
            )
            try:
                gateways: dict[str, tuple[Gateway, str, str]] = {}
                for name, gateway in (("before", before), ("after", after)):
                    owner = gateway.bootstrap("bench@example.com")
                    gateways[name] = (gateway, create_connection(gateway, owner.api_key, upstream), owner.api_key)
                asyncio.run(compare(gateways, args))
            finally:
                before.stop()
                after.stop()
    finally:
        upstream.kill()


if __name__ == "__main__":
    main()
