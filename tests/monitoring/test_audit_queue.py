"""The audit queue is bounded by the bytes of the answers it holds, not only by the number of entries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from meshgate.db.database import Database
from meshgate.db.tables import organizations
from meshgate.monitoring.models import AuditEntry
from meshgate.monitoring.writer import AuditWriter

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


def _entry(body_bytes: int) -> AuditEntry:
    return AuditEntry(
        organization_id="org",
        connection_id="conn",
        method="tools/call",
        tool_name="blob",
        user_id=None,
        api_key_id=None,
        user_agent=None,
        request_id=None,
        protocol_version="2025-11-25",
        params={},
        message_id=1,
        started_at=datetime.now(UTC),
        duration_ms=1.0,
        response_body=b"x" * body_bytes,
    )


async def test_answers_beyond_the_byte_bound_are_dropped_and_counted(db: Database) -> None:
    writer = AuditWriter(db, max_queue_bytes=3 * MIB)  # not started: entries stay queued
    for _ in range(3):
        writer.record(_entry(MIB))
    assert (writer.depth, writer.queued_bytes, writer.dropped) == (3, 3 * MIB, 0)
    writer.record(_entry(MIB))  # would hold 4 MiB
    writer.record(_entry(0))  # an entry without an answer still fits
    assert (writer.depth, writer.queued_bytes, writer.dropped) == (4, 3 * MIB, 1)


async def test_stopping_gives_up_after_its_timeout(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """A batch the database keeps refusing (here: an organization that does not exist) is retried, but cannot
    hold shutdown past the drain timeout; the writer says so, counting the batch it was writing."""
    writer = AuditWriter(db, flush_interval_s=0.01)
    writer.start()
    writer.record(_entry(0))
    async with asyncio.timeout(30):  # generous: proves stop() returns, not how fast
        await writer.stop(timeout_s=0.3)
    assert "did not drain within 0 s; 1 record(s) lost" in caplog.text  # queued or in flight, it is counted


async def test_a_batch_being_written_when_the_drain_timeout_passes_is_counted_as_lost(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """The writer's hook inside the batch's transaction never returns: shutdown gives up with the batch in
    flight, and says that batch is lost (it used to count only what was still queued: 0)."""
    in_flight = asyncio.Event()

    async def never_returns(_session: object, _written: object) -> None:
        in_flight.set()
        await asyncio.Event().wait()

    now = datetime.now(UTC)
    async with db.transaction() as session:  # the records' organization exists: the insert goes through
        row = {"id": "org", "name": "Org", "slug": "org", "settings": {}, "created_at": now, "updated_at": now}
        await session.execute(insert(organizations).values(**row))
    writer = AuditWriter(db, flush_interval_s=0.01, on_written=never_returns)
    writer.start()
    for _ in range(3):
        writer.record(_entry(0))
    async with asyncio.timeout(30):  # generous: proves stop() returns, not how fast
        await in_flight.wait()
        assert writer.depth == 0  # all three taken off the queue
        await writer.stop(timeout_s=0.3)
    assert "did not drain within 0 s; 3 record(s) lost" in caplog.text
