"""MONITORING_STATS with bucketSeconds: the time series behind the dashboard's charts; the caller filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import add_connection, new_owner
from support.audit import seed_history
from support.gateway import Gateway, Upstream
from support.mcp_client import call, connect

pytestmark = pytest.mark.anyio


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_stats_series_counts_every_call_once_per_bucket(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    connection = await add_connection(gateway, owner.api_key, upstream)
    written = await seed_history(gateway, owner.organization_id, connection["id"], owner.user_id, hours=6)
    now = datetime.now(UTC)
    window = {"startDate": _iso(now - timedelta(hours=8)), "endDate": _iso(now)}
    async with connect(gateway.mcp_url, owner.api_key) as client:
        stats = await call(client, "MONITORING_STATS", {**window, "bucketSeconds": 3600})
        plain = await call(client, "MONITORING_STATS", window)
    series = stats["series"]
    assert stats["totalCalls"] == written == plain["totalCalls"] and "series" not in plain
    assert sum(point["calls"] for point in series) == written
    assert sum(point["errors"] for point in series) == stats["errorCount"] > 0
    assert len(series) == 9  # 8 hours from an hour boundary: every bucket present, empty ones at zero
    assert [point["start"] for point in series] == sorted(point["start"] for point in series)
    assert series[0]["calls"] == 0 and series[0]["p50"] is None
    busy = [point for point in series if point["calls"]]
    assert all(point["p50"] <= point["p95"] <= point["p99"] for point in busy)


async def test_logs_filter_by_caller(gateway: Gateway, upstream: Upstream) -> None:
    owner = await new_owner(gateway)
    connection = await add_connection(gateway, owner.api_key, upstream)
    await seed_history(gateway, owner.organization_id, connection["id"], owner.user_id, hours=1, per_hour=3)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        mine = await call(client, "MONITORING_LOGS_LIST", {"userId": owner.user_id})
        nobody = await call(client, "MONITORING_LOGS_LIST", {"userId": "00000000-0000-0000-0000-000000000000"})
    assert mine["totalCount"] == 3 and nobody["totalCount"] == 0
