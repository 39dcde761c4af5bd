"""EVENT_LIST's filters (type, status, source, delivery state) and the delivery counts of each listed event."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.events import bus, call, tool, upstream_tool
from support.gateway import Upstream

pytestmark = pytest.mark.anyio


async def test_events_are_listed_by_source_and_delivery_state_with_their_delivery_counts(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, _clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "job.*", "connectionId": gateway.conn_id})
        await upstream_tool(gateway, "answer_with", {"answers": [{"success": False, "error": "no"}]})
        failed = await tool(gateway, "EVENT_PUBLISH", {"type": "job.failed"})
        assert await worker.run_once() == 1
        done = await tool(gateway, "EVENT_PUBLISH", {"type": "job.done"})
        assert await worker.run_once() == 1
        waiting = await tool(gateway, "EVENT_PUBLISH", {"type": "job.waiting"})

        dead = await tool(gateway, "EVENT_LIST", {"deliveryStatus": "dead"})
        assert [item["id"] for item in dead["items"]] == [failed["id"]]
        assert dead["items"][0]["deliveryCounts"] == {"dead": 1}
        listed = await tool(gateway, "EVENT_LIST", {"type": "job.*"})
        counts = {item["id"]: item["deliveryCounts"] for item in listed["items"]}
        assert counts == {failed["id"]: {"dead": 1}, done["id"]: {"delivered": 1}, waiting["id"]: {"pending": 1}}

        mine = await tool(gateway, "EVENT_LIST", {"source": failed["source"], "type": "job.*"})
        assert mine["totalCount"] == 3
        assert (await tool(gateway, "EVENT_LIST", {"source": "connection:someone-else"}))["totalCount"] == 0
        refused = await call(gateway, "EVENT_LIST", {"deliveryStatus": "lost"})
        assert refused["isError"] and "pending, delivered, dead, cancelled" in refused["content"][0]["text"]
