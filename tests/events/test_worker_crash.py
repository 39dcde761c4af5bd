"""A process killed mid-delivery loses nothing: two meshgate processes on one PostgreSQL, the first SIGKILLed
while its ON_EVENTS call is in flight; once its lease has run out the second delivers every event."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select, update

from meshgate.db.database import Database
from meshgate.db.tables import event_deliveries
from support.databases import fresh_database
from support.gateway import Gateway, Upstream, create_connection, free_port, manage, start_gateway

pytestmark = pytest.mark.slow
T = TypeVar("T")
FAST_POLL = {"MESHGATE_EVENT_POLL_SECONDS": "0.1", "MESHGATE_EVENT_BATCH_SIZE": "10"}


def _subscriber_tool(conn_url: str, key: str, name: str, arguments: dict[str, Any] | None = None) -> Any:
    """A tool of the subscriber itself, called through a gateway."""
    response = httpx.post(
        f"{conn_url}/call-tool/{name}", json=arguments or {}, headers={"authorization": f"Bearer {key}"}, timeout=30
    )
    result = response.json()
    assert response.status_code == 200 and not result.get("isError"), result
    return result["structuredContent"]


def _wait(what: str, check: Callable[[], T], seconds: float = 30) -> T:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


async def _expire_leases(url: str) -> int:
    """Move every lease into the past: all that passing time does to the dead process's claims."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            leased = event_deliveries.c.lease_until.is_not(None)
            count = len((await session.execute(select(event_deliveries.c.id).where(leased))).all())
            past = datetime.now(UTC) - timedelta(hours=1)
            await session.execute(update(event_deliveries).where(leased).values(lease_until=past))
            return count
    finally:
        await db.close()


def test_a_worker_killed_mid_batch_loses_no_event(tmp_path: Path, subscriber: Upstream) -> None:
    with fresh_database("postgresql", tmp_path) as url:
        first = start_gateway(url, tmp_path, "first", **FAST_POLL)
        second = Gateway(env=first.env, port=free_port())
        try:
            owner = first.bootstrap("crash@example.com")
            conn_url = create_connection(first, owner.api_key, subscriber)
            conn_id = conn_url.rsplit("/", 1)[-1]
            manage(first, owner.api_key, "EVENT_SUBSCRIBE", eventType="job.*", connectionId=conn_id)
            _subscriber_tool(conn_url, owner.api_key, "answer_with", {"answers": [{"hold": True}]})
            published = [manage(first, owner.api_key, "EVENT_PUBLISH", type="job.done", data=n)["id"] for n in range(5)]
            held = _wait(
                "the first process did not start delivering",
                lambda: _subscriber_tool(conn_url, owner.api_key, "received")["batches"],
            )
            assert first.process is not None
            first.process.send_signal(signal.SIGKILL)  # its ON_EVENTS call is held by the subscriber
            first.process.wait(timeout=30)
            in_flight = [event["id"] for event in held[0]]
            assert asyncio.run(_expire_leases(url)) == len(in_flight)  # what the dead process had claimed

            second.start(tmp_path / "second.log")
            second_url = conn_url.replace(first.url, second.url)

            def delivered() -> bool:
                states = [
                    delivery["status"]
                    for event_id in published
                    for delivery in manage(second, owner.api_key, "EVENT_GET", eventId=event_id)["deliveries"]
                ]
                return states == ["delivered"] * len(published)

            _wait("the second process did not deliver what the first had claimed", delivered)
            batches = _subscriber_tool(second_url, owner.api_key, "received")["batches"]
            received = [event["id"] for batch in batches for event in batch]
            assert sorted(received) == sorted(published + in_flight)  # none lost; the held batch came once more
        finally:
            if second.process is not None:
                assert second.stop() == 0
            if first.process is not None and first.process.poll() is None:
                first.stop()
