"""Scheduled and recurring events: publishing them when they fall due, by the event bus's clock.

A firing is claimed with a guarded update (status and due time as read), so of several workers exactly one fires
it; a recurring event fires once however late it is (no catch-up storm after downtime) and each firing is an
event of its own (`recurrence_of` names the schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.database import Database, rows_changed
from meshgate.db.rows import new_id
from meshgate.db.tables import events
from meshgate.events.models import CloudEvent
from meshgate.events.service import EventService, event_of, next_firing
from meshgate.observability.metrics import GatewayMetrics


async def fire_due(db: Database, clock: Callable[[], datetime], metrics: GatewayMetrics | None) -> int:
    """Publish scheduled events whose time has come and fire recurring ones (once each, however late)."""
    now = clock()
    async with db.transaction() as session:
        due = (
            await session.execute(
                select(events)
                .where(events.c.status.in_(("scheduled", "recurring")), events.c.due_at <= now)
                .order_by(events.c.due_at)
                .limit(100)
            )
        ).all()
    fired = 0
    for row in due:
        async with db.transaction() as session:
            fired += await _fire(session, row, now, clock, metrics)
    return fired


async def _fire(
    session: AsyncSession, row: Row[Any], now: datetime, clock: Callable[[], datetime], metrics: GatewayMetrics | None
) -> int:
    service = EventService(session, row.organization_id, clock, metrics)
    guard = (events.c.id == row.id) & (events.c.status == row.status) & (events.c.due_at == row.due_at)
    if row.status == "scheduled":
        claimed = await session.execute(update(events).where(guard).values(status="published", due_at=None))
        if not rows_changed(claimed):
            return 0  # another worker fired it
        await service.fan_out(event_of(row, row.due_at))
        return 1
    following = next_firing(str(row.cron), row.timezone, max(now, row.due_at))
    claimed = await session.execute(update(events).where(guard).values(due_at=following))
    if not rows_changed(claimed):
        return 0
    occurrence = new_id()
    await session.execute(
        insert(events).values(
            id=occurrence,
            organization_id=row.organization_id,
            type=row.type,
            source=row.source,
            subject=row.subject,
            time=row.due_at,
            datacontenttype=row.datacontenttype,
            data=row.data,
            status="published",
            recurrence_of=row.id,
            published_by=row.published_by,
            created_at=now,
        )
    )
    fired = event_of(row, row.due_at)
    await service.fan_out(CloudEvent(occurrence, fired.source, fired.type, fired.time, fired.subject, fired.data))
    return 1
