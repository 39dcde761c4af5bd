"""Events reach their subscribers at least once: through the call pipeline, with retries, dead letters and
schedules, on every database backend. The worker runs with an injected clock (no sleeping for backoff)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from meshgate.bootstrap import bootstrap_owner
from meshgate.db.database import Database
from meshgate.db.tables import event_deliveries
from meshgate.events.worker import DeliveryPolicy, EventWorker
from support.events import bus, call, deliveries, tool, upstream_tool
from support.gateway import Upstream
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio


async def test_a_published_event_reaches_matching_subscribers_through_on_events(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, _clock):
        conn = gateway.conn_id
        exact = await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.created", "connectionId": conn})
        prefix = await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.*", "connectionId": conn})
        filtered = {"exact": {"subject": "order-7"}}
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.*", "connectionId": conn, "filter": filtered})
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.created", "connectionId": conn, "publisher": "x"})
        again = await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "order.created", "connectionId": conn})
        assert (exact["created"], again["created"], again["id"]) == (True, False, exact["id"])

        published = await tool(
            gateway, "EVENT_PUBLISH", {"type": "order.created", "subject": "order-1", "data": {"total": 12}}
        )
        assert published["status"] == "published"
        assert published["source"].startswith("user:")
        pending = await deliveries(gateway, published["id"])
        assert {item["subscriptionId"] for item in pending} == {exact["id"], prefix["id"]}
        assert {item["status"] for item in pending} == {"pending"}

        assert await worker.run_once() == 2
        batches = (await upstream_tool(gateway, "received", {}))["batches"]
        assert len(batches) == 2  # one ON_EVENTS call per subscription
        event = batches[0][0]
        assert event["id"] == published["id"]
        assert (event["type"], event["subject"], event["data"], event["specversion"]) == (
            "order.created",
            "order-1",
            {"total": 12},
            "1.0",
        )
        assert {item["status"] for item in await deliveries(gateway, published["id"])} == {"delivered"}
        assert await worker.run_once() == 0  # nothing is delivered twice
        assert gateway.runtime.metrics is not None
        scraped = gateway.runtime.metrics.render().decode()
        assert "meshgate_events_published_total 2.0" in scraped  # with meshgate.connection.created of the set-up
        assert 'meshgate_event_deliveries_total{outcome="delivered"} 2.0' in scraped
        assert "meshgate_event_delivery_latency_seconds_count 2.0" in scraped

        logs = await tool(gateway, "MONITORING_LOGS_LIST", {"connectionId": conn, "toolName": "ON_EVENTS"})
        with anyio.fail_after(10):
            while len(logs["items"]) < 2:  # the audit writer flushes in the background
                await anyio.sleep(0.05)
                logs = await tool(gateway, "MONITORING_LOGS_LIST", {"connectionId": conn, "toolName": "ON_EVENTS"})
        assert {item["userAgent"] for item in logs["items"]} == {f"meshgate-events/{worker.name}"}


async def test_failures_back_off_then_land_in_the_dead_letter_state_and_can_be_redelivered(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db, max_attempts=3, first_retry_s=10) as (gateway, worker, clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "job.failed", "connectionId": gateway.conn_id})
        await upstream_tool(gateway, "answer_with", {"answers": [{"isError": True}] * 3})
        event_id = (await tool(gateway, "EVENT_PUBLISH", {"type": "job.failed"}))["id"]

        assert await worker.run_once() == 1
        [first] = await deliveries(gateway, event_id)
        assert (first["status"], first["attempts"]) == ("pending", 1)
        assert "the subscriber broke" in first["lastError"]
        assert await worker.run_once() == 0  # not due yet: the first retry waits 10 s
        clock.advance(10)
        assert await worker.run_once() == 1
        [second] = await deliveries(gateway, event_id)
        assert second["attempts"] == 2
        due = datetime.fromisoformat(second["nextAttemptAt"])
        assert due - clock.now == timedelta(seconds=20)  # doubled (jitter fixed at its top)
        clock.advance(20)
        assert await worker.run_once() == 1
        [dead] = await deliveries(gateway, event_id)
        assert (dead["status"], dead["attempts"]) == ("dead", 3)
        assert gateway.runtime.metrics is not None
        scraped = gateway.runtime.metrics.render().decode()
        assert 'meshgate_event_deliveries_total{outcome="retried"} 2.0' in scraped
        assert 'meshgate_event_deliveries_total{outcome="dead"} 1.0' in scraped

        clock.advance(3600)
        assert await worker.run_once() == 0  # a dead letter stays until someone redelivers it
        assert (await tool(gateway, "EVENT_REDELIVER", {"eventId": event_id}))["redelivered"] == 1
        assert await worker.run_once() == 1  # the subscriber answers success by default now
        [done] = await deliveries(gateway, event_id)
        assert (done["status"], done["attempts"]) == ("delivered", 0)


async def test_the_subscribers_answer_decides_each_event(tmp_path: Path, subscriber: Upstream, tmp_db: str) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "doc.*", "connectionId": gateway.conn_id})
        ids = [(await tool(gateway, "EVENT_PUBLISH", {"type": f"doc.v{n}"}))["id"] for n in range(3)]
        results = {ids[0]: {"success": True}, ids[1]: {"success": False, "error": "bad document"}}
        await upstream_tool(gateway, "answer_with", {"answers": [{"results": results, "retryAfter": 60_000}]})
        assert await worker.run_once() == 3
        assert len((await upstream_tool(gateway, "received", {}))["batches"]) == 1  # one batch of three
        states = {event_id: (await deliveries(gateway, event_id))[0] for event_id in ids}
        assert states[ids[0]]["status"] == "delivered"
        assert (states[ids[1]]["status"], states[ids[1]]["lastError"]) == ("dead", "bad document")
        later = states[ids[2]]
        assert (later["status"], later["attempts"]) == ("pending", 0)  # retryAfter is not a failed attempt
        assert datetime.fromisoformat(later["nextAttemptAt"]) - clock.now == timedelta(seconds=60)

        acked = await tool(gateway, "EVENT_ACK", {"eventId": ids[2], "connectionId": gateway.conn_id})
        assert acked["acknowledged"] == 1
        clock.advance(60)
        assert await worker.run_once() == 0
        assert (await deliveries(gateway, ids[2]))[0]["status"] == "delivered"


async def test_scheduled_and_recurring_events_fire_on_the_injected_clock(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "tick.*", "connectionId": gateway.conn_id})
        at = (clock.now + timedelta(hours=3)).isoformat()
        scheduled = await tool(gateway, "EVENT_PUBLISH", {"type": "tick.once", "deliverAt": at})
        assert scheduled["status"] == "scheduled"
        recurring = await tool(gateway, "EVENT_PUBLISH", {"type": "tick.hourly", "cron": "0 * * * *"})
        same = await tool(gateway, "EVENT_PUBLISH", {"type": "tick.hourly", "cron": "30 * * * *"})
        assert same["id"] == recurring["id"]  # one schedule per source and type
        next_at = datetime.fromisoformat(same["nextAt"])
        assert next_at.minute == 30 and next_at > clock.now

        assert await worker.run_once() == 0
        clock.now = next_at
        assert await worker.run_once() == 1  # the first firing
        assert await worker.run_once() == 0  # fired once, not again at the same time
        clock.now = next_at + timedelta(hours=1, minutes=1)
        assert await worker.run_once() == 1
        clock.now = datetime.fromisoformat(at)
        assert await worker.run_once() == 2  # the scheduled one, and the recurring one again

        types = [
            event["type"] for batch in (await upstream_tool(gateway, "received", {}))["batches"] for event in batch
        ]
        assert sorted(types) == ["tick.hourly", "tick.hourly", "tick.hourly", "tick.once"]
        assert (await tool(gateway, "EVENT_CANCEL", {"eventId": recurring["id"]}))["was"] == "recurring"
        clock.advance(24 * 3600)
        assert await worker.run_once() == 0
        listed = await tool(gateway, "EVENT_LIST", {"type": "tick.*", "status": "published"})
        assert listed["totalCount"] == 4


async def test_two_workers_on_one_database_deliver_each_event_once(
    tmp_path: Path, subscriber: Upstream, backend: str, tmp_db: str
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite serves one process: one worker delivers")
    async with bus(tmp_path, subscriber, tmp_db, claim_size=20, batch_size=5) as (gateway, first, clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "load.*", "connectionId": gateway.conn_id})
        for n in range(60):
            await tool(gateway, "EVENT_PUBLISH", {"type": "load.item", "data": n})
        other_db = Database(tmp_db)
        second = EventWorker(other_db, gateway.runtime.calls, DeliveryPolicy(claim_size=20, batch_size=5), clock=clock)
        try:
            tried = [0, 0]

            async def drain(index: int, worker: EventWorker) -> None:
                while (count := await worker.run_once()) > 0:
                    tried[index] += count

            async with anyio.create_task_group() as group:
                group.start_soon(drain, 0, first)
                group.start_soon(drain, 1, second)
        finally:
            await other_db.close()
        received = [
            event["data"] for batch in (await upstream_tool(gateway, "received", {}))["batches"] for event in batch
        ]
        assert sorted(received) == list(range(60))  # every event once: none lost, none twice
        assert sum(tried) == 60


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # claims there use SKIP LOCKED
async def test_a_worker_on_postgresql_skips_deliveries_another_worker_holds(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, _clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "held.*", "connectionId": gateway.conn_id})
        for n in range(10):
            await tool(gateway, "EVENT_PUBLISH", {"type": "held.item", "data": n})
        other_db = Database(tmp_db)
        try:
            async with other_db.transaction() as session:  # another worker, mid-claim, holds four rows locked
                some = list((await session.scalars(select(event_deliveries.c.id).limit(4))).all())
                held = select(event_deliveries.c.id).where(event_deliveries.c.id.in_(some)).with_for_update()
                locked = list((await session.scalars(held)).all())
                with anyio.fail_after(20):  # without SKIP LOCKED this claim would wait for those rows
                    assert await worker.run_once() == 6
        finally:
            await other_db.close()
        async with gateway.runtime.db.transaction() as session:
            pending = await session.scalars(select(event_deliveries.c.id).where(event_deliveries.c.status == "pending"))
            assert sorted(pending.all()) == sorted(locked)


async def test_subscribing_needs_the_right_to_call_on_events_and_nothing_crosses_organizations(
    tmp_path: Path, subscriber: Upstream
) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    async with bus(tmp_path, subscriber, url) as (gateway, worker, _clock):
        narrow = await tool(gateway, "API_KEY_CREATE", {"name": "n", "permissions": {"self": ["EVENT_SUBSCRIBE"]}})
        refused = await call(
            gateway, "EVENT_SUBSCRIBE", {"eventType": "a.b", "connectionId": gateway.conn_id}, narrow["key"]
        )
        assert refused["isError"] and "ON_EVENTS" in refused["content"][0]["text"]

        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "*", "connectionId": gateway.conn_id})
        own_event = (await tool(gateway, "EVENT_PUBLISH", {"type": "secret.thing"}))["id"]
        other = remember_secret(
            (await bootstrap_owner(url, email="other@example.com", password=None, org_name="Other")).api_key
        )
        for name, arguments in [
            ("EVENT_GET", {"eventId": own_event}),
            ("EVENT_SUBSCRIBE", {"eventType": "*", "connectionId": gateway.conn_id}),
            ("EVENT_ACK", {"eventId": own_event, "connectionId": gateway.conn_id}),
        ]:
            result = await call(gateway, name, arguments, other)
            assert result["isError"] and "not found" in result["content"][0]["text"], (name, result)
        assert (await tool(gateway, "EVENT_LIST", {}, other))["totalCount"] == 0
        assert (await tool(gateway, "EVENT_SUBSCRIPTION_LIST", {}, other))["items"] == []
        await tool(gateway, "EVENT_PUBLISH", {"type": "secret.thing"}, other)  # no subscriber in its organization
        assert await worker.run_once() == 1  # only the first organization's own event
        received = [
            event["id"] for batch in (await upstream_tool(gateway, "received", {}))["batches"] for event in batch
        ]
        assert received == [own_event]


async def test_bad_input_is_refused_with_what_is_allowed(tmp_path: Path, subscriber: Upstream) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'bad.db'}") as (gateway, _worker, _clock):
        cases = [
            ("EVENT_PUBLISH", {"type": "has space"}, "is not an event type"),
            ("EVENT_PUBLISH", {"type": "a.b", "cron": "every minute"}, "is not a cron expression"),
            ("EVENT_PUBLISH", {"type": "a.b", "cron": "* * * * *", "timezone": "Mars/Base"}, "IANA time zone"),
            ("EVENT_PUBLISH", {"type": "a.b", "deliverAt": "tomorrow"}, "ISO 8601"),
            ("EVENT_PUBLISH", {"type": "a.b", "deliverAt": "2030-01-01T00:00:00"}, "time zone offset"),
            ("EVENT_PUBLISH", {"type": "a.b", "data": "x" * 300_000}, "at most 262144"),
            (
                "EVENT_SUBSCRIBE",
                {"eventType": "a.b", "connectionId": gateway.conn_id, "filter": {"sql": "type = 'a'"}},
                "unknown filter dialect 'sql'",
            ),
            (
                "EVENT_SUBSCRIBE",
                {"eventType": "a.b", "connectionId": gateway.conn_id, "filter": {"exact": {"a": "1", "b": "2"}}},
                "exactly one attribute",
            ),
            ("EVENT_SUBSCRIBE", {"eventType": "a.b", "connectionId": "nope"}, "not found"),
            ("EVENT_CANCEL", {"eventId": "nope"}, "not found"),
        ]
        for name, arguments, expected in cases:
            result = await call(gateway, name, arguments)
            assert result.get("isError"), (name, arguments)
            assert expected in result["content"][0]["text"], (expected, result["content"][0]["text"])
