"""SIGTERM under load loses no audit record: in-flight calls finish and the queue is drained."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from meshgate.db.database import Database
from meshgate.monitoring.service import LogFilter, MonitoringService
from support.databases import fresh_database
from support.gateway import Upstream, create_connection, start_gateway


def test_sigterm_under_load_loses_no_audit_record(tmp_path: Path, upstream: Upstream) -> None:
    with fresh_database("sqlite", tmp_path) as url:
        gw = start_gateway(url, tmp_path)
        owner = gw.bootstrap("load@example.com")
        headers = {"authorization": f"Bearer {owner.api_key}"}
        conn_url = create_connection(gw, owner.api_key, upstream)
        conn_id = conn_url.rsplit("/", 1)[1]

        async def load() -> int:
            ok = 0
            limits = httpx.Limits(max_connections=16)
            warmed = asyncio.Event()
            completed = 0
            async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

                async def one(n: int) -> bool:
                    nonlocal completed
                    try:
                        response = await client.post(f"{gw.url}/mcp/{conn_id}/call-tool/add", json={"a": n, "b": 0})
                    except httpx.TransportError:
                        return False
                    completed += 1
                    if completed == 100:
                        warmed.set()
                    return response.status_code == 200

                tasks = [asyncio.ensure_future(one(n)) for n in range(600)]
                async with asyncio.timeout(30):
                    await warmed.wait()  # 100 calls done, ~16 in flight: stop the gateway in the middle of the load
                gw.terminate()
                for done in await asyncio.gather(*tasks):
                    ok += int(done)
            return ok

        succeeded = asyncio.run(load())
        assert gw.stop(timeout=60) == 0
        assert 100 <= succeeded < 600

        async def stored() -> int:
            db = Database(url)
            try:
                async with db.transaction() as session:
                    _, total = await MonitoringService(session, owner.organization_id).list(
                        LogFilter(connection_id=conn_id), limit=1, offset=0
                    )
                return total
            finally:
                await db.close()

        assert asyncio.run(stored()) == succeeded
