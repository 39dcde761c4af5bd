"""An idle event worker sleeps until the first thing it knows is due (at most `poll_s`), and whatever makes new
work due sooner wakes it: on every backend, with the worker's injected clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from meshgate.db.tables import event_deliveries
from meshgate.events.service import WAKE_TOPIC
from support.events import bus, tool, upstream_tool
from support.gateway import Upstream

pytestmark = pytest.mark.anyio


async def test_an_idle_worker_sleeps_until_the_first_delivery_or_schedule_falls_due(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db, poll_s=30, first_retry_s=8) as (gateway, worker, clock):
        assert await worker.idle_wait() == 30  # nothing pending, nothing scheduled: the longest sleep

        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "job.*", "connectionId": gateway.conn_id})
        at = (clock.now + timedelta(seconds=20)).isoformat()
        assert (await tool(gateway, "EVENT_PUBLISH", {"type": "job.later", "deliverAt": at}))["status"] == "scheduled"
        assert await worker.idle_wait() == pytest.approx(20)
        clock.advance(15)
        assert await worker.idle_wait() == pytest.approx(5)

        await upstream_tool(gateway, "answer_with", {"answers": [{"isError": True}]})
        await tool(gateway, "EVENT_PUBLISH", {"type": "job.now"})
        assert await worker.idle_wait() == pytest.approx(0.05)  # due now (a round takes it): never a busy loop
        assert await worker.run_once() == 1  # fails: retried after 8 s (the jitter is fixed at its top)
        assert await worker.idle_wait() == pytest.approx(5)  # the schedule is still first
        clock.advance(4)
        assert await worker.idle_wait() == pytest.approx(1)
        clock.advance(1)
        assert await worker.run_once() == 1  # the schedule fired and its event was delivered
        assert await worker.idle_wait() == pytest.approx(3)  # the retry of job.now, 8 s after its attempt

        async with gateway.runtime.db.transaction() as session:  # another worker leases it for a minute
            until = clock.now + timedelta(seconds=60)
            await session.execute(update(event_deliveries).values(lease_owner="other", lease_until=until))
        assert await worker.idle_wait() == 30  # leased past the longest sleep
        clock.advance(50)
        assert await worker.idle_wait() == pytest.approx(10)  # until the lease runs out


async def test_publishing_and_scheduling_wake_idle_workers(tmp_path: Path, subscriber: Upstream, tmp_db: str) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, _worker, clock):
        heard: list[str] = []
        gateway.runtime.db.subscribe(heard.append)
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "job.*", "connectionId": gateway.conn_id})
        heard.clear()
        at = (clock.now + timedelta(hours=1)).isoformat()
        await tool(gateway, "EVENT_PUBLISH", {"type": "job.later", "deliverAt": at})
        assert WAKE_TOPIC in heard  # a worker asleep until later learns of the earlier schedule
        heard.clear()
        await tool(gateway, "EVENT_PUBLISH", {"type": "job.hourly", "cron": "0 * * * *"})
        assert WAKE_TOPIC in heard
        heard.clear()
        await tool(gateway, "EVENT_PUBLISH", {"type": "job.now"})
        assert WAKE_TOPIC in heard
