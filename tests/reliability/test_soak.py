"""Soak: many proxied calls at 16 concurrent clients with zero errors, and memory and descriptors flat.

`MESHGATE_SOAK_CALLS` sets the number of calls (default 100,000, about a minute here). Figures are
printed, and written as JSON to `$MESHGATE_RELIABILITY_OUT/soak.json` when that is set (see
scripts/reliability_report.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from support.databases import fresh_database
from support.gateway import Upstream, create_connection, start_gateway, start_upstream

CALLS = int(os.environ.get("MESHGATE_SOAK_CALLS", "100000"))
WARM_UP = min(10_000, CALLS // 10)
CLIENTS = 16


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


async def _drive(url: str, key: str, calls: int) -> tuple[int, int]:
    ok = errors = 0
    body = json.dumps({"a": 1, "b": 2}).encode()
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as http:

        async def client(share: int) -> None:
            nonlocal ok, errors
            for _ in range(share):
                async with http.post(f"{url}/call-tool/add", data=body, headers=headers) as response:
                    payload = await response.read()
                    if response.status == 200 and b'"sum":3.0' in payload:
                        ok += 1
                    else:
                        errors += 1

        await asyncio.gather(*(client(calls // CLIENTS) for _ in range(CLIENTS)))
    return ok, errors


@pytest.fixture
def json_upstream() -> Iterator[Upstream]:
    server = start_upstream(token="soak-token", json_response=True)
    yield server
    server.kill()


def test_soak_has_no_errors_and_flat_memory_and_descriptors(tmp_path: Path, json_upstream: Upstream) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path, LOG_LEVEL="WARNING", MESHGATE_ACCESS_LOG="0")
        try:
            owner = gw.bootstrap("soak@example.com")
            conn_url = create_connection(gw, owner.api_key, json_upstream)
            assert gw.process is not None
            pid = gw.process.pid
            asyncio.run(_drive(conn_url, owner.api_key, WARM_UP))
            rss_before, fds_before = _rss_kib(pid), _descriptors(pid)
            started = time.perf_counter()
            ok, errors = asyncio.run(_drive(conn_url, owner.api_key, CALLS))
            elapsed = time.perf_counter() - started
            rss_after, fds_after = _rss_kib(pid), _descriptors(pid)
        finally:
            assert gw.stop(timeout=120) == 0
    figures = {
        "calls": ok + errors,
        "errors": errors,
        "clients": CLIENTS,
        "seconds": round(elapsed, 1),
        "calls_per_second": round((ok + errors) / elapsed),
        "rss_kib_after_warm_up": rss_before,
        "rss_kib_at_end": rss_after,
        "descriptors_after_warm_up": fds_before,
        "descriptors_at_end": fds_after,
    }
    print("soak:", figures)
    out = os.environ.get("MESHGATE_RELIABILITY_OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "soak.json").write_text(json.dumps(figures, indent=2))
    assert errors == 0 and ok == CALLS // CLIENTS * CLIENTS
    # A descriptor leaked per call (or per upstream connection) would add thousands; a few more pooled
    # SQLite connections (three descriptors each with WAL) are not a leak.
    assert fds_after - fds_before <= 16, figures
    # Flat within noise: a leak of even 200 bytes a call would add ~20 MiB over 100,000 calls.
    assert rss_after - rss_before < 16 * 1024, figures
