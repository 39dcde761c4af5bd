"""When the event worker next has something to do, read in one query while it has nothing to do now.

An idle worker sleeps until the earliest of: a pending delivery's next attempt (or the end of the lease another
worker holds on it) and a scheduled or recurring event's due time; at most `idle_poll_s`, and less whenever a
publish or a new schedule wakes it. So an idle gateway runs one small transaction per `idle_poll_s` instead of
two per `poll_s`, and nothing due is picked up later than before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, select

from meshgate.db.database import Database
from meshgate.db.tables import event_deliveries, events
from meshgate.events.models import PENDING


@dataclass(frozen=True, slots=True)
class Outlook:
    """What waits: how many deliveries are pending and when the first thing falls due (None: nothing)."""

    pending: int
    due_at: datetime | None


async def outlook(db: Database) -> Outlook:
    deliveries = event_deliveries.c
    # a leased delivery is the lease holder's until its lease ends, whatever its next attempt says
    eligible = case(
        (
            and_(deliveries.lease_until.is_not(None), deliveries.lease_until > deliveries.next_attempt_at),
            deliveries.lease_until,
        ),
        else_=deliveries.next_attempt_at,
    )
    pending = select(func.count(), func.min(eligible)).where(deliveries.status == PENDING)
    scheduled = select(func.min(events.c.due_at)).where(events.c.status.in_(("scheduled", "recurring")))
    async with db.transaction() as session:
        count, delivery_due = (await session.execute(pending)).one()
        event_due = await session.scalar(scheduled)
    times = [when for when in (delivery_due, event_due) if when is not None]
    return Outlook(int(count or 0), min(times) if times else None)
