"""The events of one organization: publishing, scheduling, subscriptions and the state of deliveries.

Publishing stores the event and, in the same transaction, one delivery per matching subscription (type
pattern, publisher, filter), so nothing published is lost between the two. A `deliverAt` event is stored
`scheduled` and fanned out when it falls due; a `cron` event is `recurring` (one per source and type:
publishing it again changes it) and every firing is an event of its own. The worker (`worker.py`) delivers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from cronsim import CronSim, CronSimError
from opentelemetry.trace import Tracer
from sqlalchemy import Row, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.database import announce_change, rows_changed
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import event_deliveries, event_subscriptions, events
from meshgate.errors import Conflict, InvalidInput, NotFound
from meshgate.events.filters import matches
from meshgate.events.models import (
    AUTOMATION_SOURCE_PREFIX,
    CANCELLED,
    DEAD,
    DELIVERED,
    DELIVERY_STATES,
    JSON_CONTENT,
    MAX_DATA_BYTES,
    MAX_SUBJECT,
    PENDING,
    CloudEvent,
    Delivery,
    checked_pattern,
    checked_type,
    iso_time,
    published_topic,
    type_matches,
)
from meshgate.events.spans import NO_TRACER, publish_span, traceparent_of
from meshgate.events.subscriptions import SubscriptionService
from meshgate.observability.metrics import GatewayMetrics

WAKE_TOPIC = "events:due"  # announced when deliveries are due now: every worker looks (PostgreSQL NOTIFY)
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Published:
    event: CloudEvent
    status: str  # published | scheduled | recurring
    due_at: datetime | None
    deliveries: int

    def to_dict(self) -> dict[str, Any]:
        """What publishing answers (the tool and the HTTP route alike)."""
        answer: dict[str, Any] = {
            "id": self.event.id,
            "type": self.event.type,
            "source": self.event.source,
            "time": iso_time(self.event.time),
            "status": self.status,
        }
        if self.due_at is not None:
            answer["nextAt"] = iso_time(self.due_at)
        return answer


def source_of(principal: Principal) -> str:
    """Who published, as the event's `source`: proven by the credential, never claimed by the caller
    (`connection:<id>` for a connection acting for itself, else `user:<id>`)."""
    if principal.connection_id is not None:
        return f"connection:{principal.connection_id}"
    return f"user:{principal.user_id}"


def author_of(principal: Principal) -> str | None:
    """The user behind the credential that publishes (`published_by`); none when a connection publishes."""
    return None if principal.connection_id is not None else principal.user_id


class EventService:
    """Events, subscriptions and deliveries of one organization; `clock` is injectable for schedules."""

    def __init__(
        self,
        session: AsyncSession,
        organization_id: str,
        clock: Clock = utc_now,
        metrics: GatewayMetrics | None = None,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self._session = session
        self._org = organization_id
        self._clock = clock
        self._metrics = metrics
        self._tracer = tracer

    # -- publishing ---------------------------------------------------------------------------------------

    async def publish(
        self,
        source: str,
        event_type: str,
        *,
        subject: str | None = None,
        data: Any = None,
        deliver_at: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        published_by: str | None = None,
    ) -> Published:
        checked_type(event_type)
        if subject is not None and len(subject) > MAX_SUBJECT:
            raise InvalidInput(f"subject is longer than {MAX_SUBJECT} characters")
        if data is not None and len(encoded := orjson.dumps(data)) > MAX_DATA_BYTES:
            raise InvalidInput(f"data is {len(encoded)} bytes as JSON; at most {MAX_DATA_BYTES} are allowed")
        if deliver_at is not None and cron is not None:
            raise InvalidInput("give deliverAt or cron, not both")
        if timezone is not None and cron is None:
            raise InvalidInput("timezone applies to cron only")
        now = self._clock()
        values: dict[str, Any] = {
            "organization_id": self._org,
            "type": event_type,
            "source": source,
            "subject": subject,
            "datacontenttype": JSON_CONTENT,
            "data": None if data is None else orjson.dumps(data).decode(),
            "published_by": published_by,
            "created_at": now,
        }
        with publish_span(self._tracer, self._org, event_type, source) as span:
            values["traceparent"] = traceparent_of(span)
            if cron is not None:
                return await self._recurring(values, cron, timezone, now)
            due = None if deliver_at is None else _instant(deliver_at)
            event_id = new_id()
            span.set_attribute("messaging.message.id", event_id)
            if due is not None and due > now:
                await self._session.execute(
                    insert(events).values(id=event_id, time=due, status="scheduled", due_at=due, **values)
                )
                await announce_change(self._session, WAKE_TOPIC)  # an idle worker sleeps until what it knows is due
                return Published(_new_event(event_id, values, due, data), "scheduled", due, 0)
            await self._session.execute(insert(events).values(id=event_id, time=now, status="published", **values))
            event = _new_event(event_id, values, now, data)
            return Published(event, "published", None, await self.fan_out(event))

    async def fan_out(self, event: CloudEvent) -> int:
        """Release a published event: live streams hear of it, and each subscription that wants it gets a
        pending delivery; returns how many."""
        await announce_change(self._session, published_topic(self._org, event.id))
        if self._metrics is not None:
            self._metrics.events_published.inc()
        candidates = ["*", event.type, *(event.type[: i + 1] + "*" for i, c in enumerate(event.type) if c == ".")]
        rows = (
            await self._session.execute(
                select(event_subscriptions).where(
                    event_subscriptions.c.organization_id == self._org,
                    event_subscriptions.c.event_type.in_(candidates),
                )
            )
        ).all()
        attributes = event.attributes()
        private = event.source.startswith(AUTOMATION_SOURCE_PREFIX)  # a cron trigger's firing: for it alone
        wanted = [
            row.id
            for row in rows
            if type_matches(row.event_type, event.type)
            and (row.publisher == event.source or (row.publisher is None and not private))
            and matches(row.filter, attributes)
        ]
        if not wanted:
            return 0
        now = self._clock()
        await self._session.execute(
            insert(event_deliveries),
            [
                {
                    "id": new_id(),
                    "organization_id": self._org,
                    "event_id": event.id,
                    "subscription_id": subscription_id,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for subscription_id in wanted
            ],
        )
        await announce_change(self._session, WAKE_TOPIC)
        return len(wanted)

    async def _recurring(self, values: dict[str, Any], cron: str, timezone: str | None, now: datetime) -> Published:
        due = next_firing(cron, timezone, now)
        key = hashlib.sha256(f"{values['source']}\n{values['type']}".encode()).hexdigest()
        existing = (
            await self._session.execute(
                select(events.c.id).where(events.c.organization_id == self._org, events.c.recurring_key == key)
            )
        ).first()
        schedule = {"cron": cron, "timezone": timezone, "due_at": due, "time": now}
        if existing is not None:  # idempotent per source and type: the same schedule, changed
            event_id = str(existing.id)
            await self._session.execute(
                update(events)
                .where(events.c.id == event_id)
                .values(subject=values["subject"], data=values["data"], traceparent=values["traceparent"], **schedule)
            )
        else:
            event_id = new_id()
            await self._session.execute(
                insert(events).values(id=event_id, status="recurring", recurring_key=key, **values, **schedule)
            )
        await announce_change(self._session, WAKE_TOPIC)
        return Published(_new_event(event_id, values, now, orjson.loads(values["data"] or "null")), "recurring", due, 0)

    # -- the state of events ------------------------------------------------------------------------------

    async def get(self, principal: Principal, event_id: str) -> tuple[CloudEvent, str, list[Delivery]]:
        """An event and its deliveries. A connection sees the events it published (with every delivery) and
        those delivered to it (with its own deliveries only); any other answers as not found."""
        row = await self._event_row(event_id)
        query = (
            select(event_deliveries, event_subscriptions.c.connection_id)
            .join(event_subscriptions, event_subscriptions.c.id == event_deliveries.c.subscription_id)
            .where(event_deliveries.c.event_id == event_id)
            .order_by(event_deliveries.c.created_at)
        )
        connection = principal.connection_id
        if connection is not None and row.source != source_of(principal):
            query = query.where(event_subscriptions.c.connection_id == connection)
        found = (await self._session.execute(query)).all()
        if connection is not None and row.source != source_of(principal) and not found:
            raise NotFound(f"event {event_id[:80]} not found")
        return event_of(row), str(row.status), [_delivery(item) for item in found]

    async def list(
        self,
        principal: Principal,
        *,
        event_type: str | None = None,
        status: str | None = None,
        source: str | None = None,
        delivery_status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[tuple[CloudEvent, str]], int]:
        """Events newest first, with the total that match; `delivery_status`: only events with a delivery in that
        state (one the principal may see)."""
        where = [events.c.organization_id == self._org]
        if principal.connection_id is not None:  # what it published, and what was delivered to it
            delivered = (
                select(event_deliveries.c.event_id)
                .join(event_subscriptions, event_subscriptions.c.id == event_deliveries.c.subscription_id)
                .where(event_subscriptions.c.connection_id == principal.connection_id)
            )
            where.append(or_(events.c.source == source_of(principal), events.c.id.in_(delivered)))
        if source is not None:
            where.append(events.c.source == source)
        if delivery_status is not None:
            if delivery_status not in DELIVERY_STATES:
                raise InvalidInput(
                    f"deliveryStatus {delivery_status[:40]!r} is unknown; allowed: {', '.join(DELIVERY_STATES)}"
                )
            having = (
                select(event_deliveries.c.event_id)
                .join(event_subscriptions, event_subscriptions.c.id == event_deliveries.c.subscription_id)
                .where(event_deliveries.c.organization_id == self._org, event_deliveries.c.status == delivery_status)
            )
            if principal.connection_id is not None:
                having = having.where(
                    or_(
                        event_subscriptions.c.connection_id == principal.connection_id,
                        event_deliveries.c.event_id.in_(
                            select(events.c.id).where(events.c.source == source_of(principal))
                        ),
                    )
                )
            where.append(events.c.id.in_(having))
        if event_type is not None:
            checked_pattern(event_type)
            where.append(
                events.c.type.startswith(event_type[:-1], autoescape=True)
                if event_type.endswith(".*")
                else events.c.type == event_type
            )
        if status is not None:
            where.append(events.c.status == status)
        total = int(await self._session.scalar(select(func.count()).select_from(events).where(and_(*where))) or 0)
        rows = (
            await self._session.execute(
                select(events)
                .where(and_(*where))
                .order_by(events.c.time.desc(), events.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [(event_of(row), str(row.status)) for row in rows], total

    async def delivery_counts(self, principal: Principal, found: Sequence[CloudEvent]) -> dict[str, dict[str, int]]:
        """How many deliveries of each event are in each state (those the principal may see, as `get` shows)."""
        if not found:
            return {}
        query = (
            select(event_deliveries.c.event_id, event_deliveries.c.status, func.count())
            .join(event_subscriptions, event_subscriptions.c.id == event_deliveries.c.subscription_id)
            .where(
                event_deliveries.c.organization_id == self._org,
                event_deliveries.c.event_id.in_([event.id for event in found]),
            )
            .group_by(event_deliveries.c.event_id, event_deliveries.c.status)
        )
        if principal.connection_id is not None:
            own = [event.id for event in found if event.source == source_of(principal)]
            query = query.where(
                or_(
                    event_subscriptions.c.connection_id == principal.connection_id, event_deliveries.c.event_id.in_(own)
                )
            )
        counts: dict[str, dict[str, int]] = {event.id: {} for event in found}
        for event_id, status, count in (await self._session.execute(query)).all():
            counts[str(event_id)][str(status)] = int(count)
        return counts

    async def cancel(self, principal: Principal, event_id: str) -> str:
        """Stop a scheduled or recurring event (and what it has not delivered yet); returns its former status.
        A connection cancels only what it published."""
        row = await self._event_row(event_id)
        if principal.connection_id is not None and row.source != source_of(principal):
            raise NotFound(f"event {event_id[:80]} not found")
        if row.status not in ("scheduled", "recurring"):
            raise Conflict(f"event {event_id} is {row.status}: only scheduled and recurring events can be cancelled")
        if str(row.source).startswith(AUTOMATION_SOURCE_PREFIX):
            raise Conflict(
                f"event {event_id} is an automation's cron trigger: remove it with AUTOMATION_TRIGGER_REMOVE"
            )
        await self._session.execute(
            update(events).where(events.c.id == event_id).values(status=CANCELLED, due_at=None, recurring_key=None)
        )
        return str(row.status)

    async def ack(self, principal: Principal, event_id: str, connection_id: str) -> int:
        """A subscriber's asynchronous success: its pending deliveries of the event end as delivered."""
        await self._event_row(event_id)
        await SubscriptionService(self._session, self._org, self._clock).may_deliver_to(principal, connection_id)
        subscriptions = select(event_subscriptions.c.id).where(event_subscriptions.c.connection_id == connection_id)
        result = await self._session.execute(
            update(event_deliveries)
            .where(
                event_deliveries.c.event_id == event_id,
                event_deliveries.c.status == PENDING,
                event_deliveries.c.subscription_id.in_(subscriptions),
            )
            .values(status=DELIVERED, delivered_at=self._clock(), lease_owner=None, lease_until=None, last_error=None)
        )
        return rows_changed(result)

    async def redeliver(self, event_id: str, subscription_id: str | None = None) -> int:
        """Send dead-lettered deliveries of an event again, from a fresh count of attempts."""
        await self._event_row(event_id)
        where = [event_deliveries.c.event_id == event_id, event_deliveries.c.status == DEAD]
        if subscription_id is not None:
            where.append(event_deliveries.c.subscription_id == subscription_id)
        result = await self._session.execute(
            update(event_deliveries)
            .where(*where)
            .values(status=PENDING, attempts=0, next_attempt_at=self._clock(), lease_owner=None, lease_until=None)
        )
        if rows_changed(result):
            await announce_change(self._session, WAKE_TOPIC)
        return rows_changed(result)

    # -- internals ----------------------------------------------------------------------------------------

    async def _event_row(self, event_id: str) -> Row[Any]:
        row = (
            await self._session.execute(
                select(events).where(events.c.organization_id == self._org, events.c.id == event_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"event {event_id[:80]} not found")
        return row


def next_firing(cron: str, timezone: str | None, after: datetime) -> datetime:
    """When a cron expression fires next after `after` (in `timezone`, UTC by default), or a clear refusal."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"timezone {str(timezone)[:64]!r} is not an IANA time zone (e.g. Europe/Berlin)") from exc
    if len(cron) > 120:
        raise InvalidInput("cron is longer than 120 characters")
    try:
        return next(CronSim(cron, after.astimezone(zone))).astimezone(after.tzinfo)
    except (CronSimError, StopIteration) as exc:
        raise InvalidInput(f"cron {cron[:120]!r} is not a cron expression ({exc}); e.g. '*/5 * * * *'") from exc


def _instant(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"deliverAt {value[:40]!r} is not an ISO 8601 time (e.g. 2026-12-24T18:00:00Z)") from exc
    if when.tzinfo is None:
        raise InvalidInput("deliverAt needs a time zone offset or Z (e.g. 2026-12-24T18:00:00Z)")
    return when


def event_of(row: Any, when: datetime | None = None) -> CloudEvent:
    """The CloudEvent of a row with the `events` columns (`when`: its time, if not the row's)."""
    return CloudEvent(
        id=str(row.id),
        source=str(row.source),
        type=str(row.type),
        time=row.time if when is None else when,
        subject=row.subject,
        data=None if row.data is None else orjson.loads(row.data),
        datacontenttype=str(row.datacontenttype or JSON_CONTENT),
        traceparent=row.traceparent,
    )


def _new_event(event_id: str, values: Mapping[str, Any], when: datetime, data: Any) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source=values["source"],
        type=values["type"],
        time=when,
        subject=values["subject"],
        data=data,
        traceparent=values["traceparent"],
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        subscription_id=row.subscription_id,
        connection_id=row.connection_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


def later(now: datetime, milliseconds: float) -> datetime:
    return now + timedelta(milliseconds=milliseconds)
