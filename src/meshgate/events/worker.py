"""Delivering events at least once: claim due deliveries, call each subscriber's ON_EVENTS (or POST to its
webhook), record the outcome.

Every process runs one worker. A claim leases deliveries for `lease` seconds (PostgreSQL and MariaDB claim with
`FOR UPDATE SKIP LOCKED`, so workers never take the same rows; SQLite has one process); a worker killed
mid-delivery loses nothing: its leases run out and any worker takes the deliveries again. Workers wake when a
publish or a new schedule announces them (in this process, and on PostgreSQL through NOTIFY); an idle worker
otherwise sleeps until the first thing it knows is due (`due.py`).

A delivery is a tool call through the call pipeline, as the subscription's creator with that person's
permissions at the time (narrowed to the subscriber's ON_EVENTS), so it is permission-checked and audited. A
subscription a connection made for itself is delivered as that connection, allowed only its own ON_EVENTS.
The subscriber's answer decides (`outcomes.py`); a failed attempt is retried with exponential backoff and
jitter. A webhook gets each event as one signed request (`webhooks.py`) while its creator may still read events.
A delivery to an automation's trigger runs the automation (`runs.py`), once per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from opentelemetry.trace import StatusCode, Tracer
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import SELF, Principal, connection_principal
from meshgate.calls.models import CallContext, Target
from meshgate.calls.service import CallService
from meshgate.db.database import EVERYTHING, Database
from meshgate.db.rows import utc_now
from meshgate.db.tables import automation_triggers, event_deliveries, event_subscriptions, events, organizations
from meshgate.errors import MeshgateError, NotFound, PermissionDenied
from meshgate.events.due import outlook
from meshgate.events.models import DEAD, DELIVERED, PENDING, CloudEvent
from meshgate.events.outcomes import Outcome, answer_of, decided, failed
from meshgate.events.runs import AutomationRunner, Fired
from meshgate.events.schedules import fire_due
from meshgate.events.service import WAKE_TOPIC, event_of
from meshgate.events.spans import NO_TRACER, delivery_span
from meshgate.events.subscriptions import DELIVERY_TOOL, webhook_context
from meshgate.events.webhooks import WebhookSender
from meshgate.identity.service import member_principal
from meshgate.observability.metrics import GatewayMetrics
from meshgate.vault import Vault

log = logging.getLogger(__name__)

_MAX_ERROR = 500
_SOONEST_S = 0.05  # an idle worker never loops faster (something due now that the round did not take)
_RETRY_ROUND_S = 5.0  # after a failed round (database unreachable ...) the next one comes at most this late
_MYSQL_DEADLOCK = (1213, 1205)  # deadlock found; lock wait timeout
_DEADLOCK_RETRIES = 3
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How the worker delivers; every figure is a setting."""

    batch_size: int = 50  # events per ON_EVENTS call
    claim_size: int = 500  # deliveries claimed at once
    concurrency: int = 8  # subscribers called at the same time
    lease_s: float = 60.0
    poll_s: float = 30.0  # the longest an idle worker sleeps unwoken when nothing it knows of falls due sooner
    first_retry_s: float = 1.0
    max_retry_s: float = 3600.0
    max_attempts: int = 20


@dataclass(frozen=True, slots=True)
class _Claimed:
    delivery_id: str
    organization_id: str
    subscription_id: str
    connection_id: str | None
    webhook_url: str | None
    webhook_secret: str | None  # sealed
    created_by: str
    attempts: int
    event: CloudEvent
    automation_id: str | None = None  # an automation's trigger: the delivery runs the automation
    trigger_id: str | None = None


class EventWorker:
    """Fires due schedules and delivers due events, until stopped."""

    def __init__(
        self,
        db: Database,
        calls: CallService,
        policy: DeliveryPolicy | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
        metrics: GatewayMetrics | None = None,
        vault: Vault | None = None,
        webhooks: WebhookSender | None = None,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self._db = db
        self.tracer = tracer
        self._calls = calls
        self._vault = vault
        self.webhooks = webhooks
        self.metrics = metrics
        self._counted_at = 0.0
        self._principals: dict[tuple[str, str], asyncio.Future[Principal]] = {}
        self.policy = policy or DeliveryPolicy()
        self.clock = clock  # the event bus's time in this process (tools publish and schedule by it too)
        self.jitter = jitter
        self.name = f"worker-{secrets.token_hex(6)}"
        clock_now = lambda: self.clock()  # noqa: E731, PLW0108  (tests replace the clock after construction)
        self.automations = AutomationRunner(db, calls, clock_now, f"meshgate-automations/{self.name}")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        db.subscribe(self._heard)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.webhooks is not None:
            self.webhooks.close()

    async def run_once(self) -> int:
        """Fire what is due and deliver one claim of due deliveries; returns how many deliveries were tried."""
        await self.fire_due()
        await self._count_pending()
        claimed = await self._claim()
        if not claimed:
            return 0
        self._principals.clear()  # permissions are read again every round
        groups: dict[str, list[_Claimed]] = defaultdict(list)
        for item in claimed:
            groups[item.subscription_id].append(item)
        batches = [
            group[start : start + self.policy.batch_size]
            for group in groups.values()
            for start in range(0, len(group), self.policy.batch_size)
        ]
        limit = asyncio.Semaphore(self.policy.concurrency)

        async def deliver(batch: list[_Claimed]) -> None:
            async with limit:
                await self._deliver(batch)

        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(deliver(batch))
        return len(claimed)

    async def fire_due(self) -> int:
        """Publish scheduled events whose time has come and fire recurring ones (once each, however late)."""
        return await fire_due(self._db, self.clock, self.metrics)

    async def _claim(self) -> list[_Claimed]:
        now = self.clock()
        until = now + timedelta(seconds=self.policy.lease_s)
        return await self._retrying(lambda session: self._claim_in(session, now, until))

    async def _claim_in(self, session: AsyncSession, now: datetime, until: datetime) -> list[_Claimed]:
        query = (
            select(event_deliveries.c.id)
            .where(
                event_deliveries.c.status == PENDING,
                event_deliveries.c.next_attempt_at <= now,
                or_(event_deliveries.c.lease_until.is_(None), event_deliveries.c.lease_until <= now),
            )
            .order_by(event_deliveries.c.next_attempt_at)
            .limit(self.policy.claim_size)
        )
        if self._db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)  # rows another worker is claiming are passed over
        candidates = list((await session.scalars(query)).all())
        if not candidates:
            return []
        # The lease is taken only where no other worker holds one: each row goes to exactly one worker, whatever
        # the backend (MariaDB 10.11's SKIP LOCKED returned no rows at all when two rows were locked).
        await session.execute(
            update(event_deliveries)
            .where(
                event_deliveries.c.id.in_(candidates),
                event_deliveries.c.status == PENDING,
                or_(event_deliveries.c.lease_until.is_(None), event_deliveries.c.lease_until <= now),
            )
            .values(lease_owner=self.name, lease_until=until)
        )
        rows = (
            await session.execute(
                select(
                    event_deliveries.c.id.label("delivery_id"),
                    event_deliveries.c.organization_id,
                    event_deliveries.c.subscription_id,
                    event_deliveries.c.attempts,
                    event_subscriptions.c.connection_id,
                    event_subscriptions.c.webhook_url,
                    event_subscriptions.c.webhook_secret,
                    event_subscriptions.c.created_by,
                    automation_triggers.c.automation_id,
                    automation_triggers.c.id.label("trigger_id"),
                    events.c.id,
                    events.c.source,
                    events.c.type,
                    events.c.subject,
                    events.c.time,
                    events.c.data,
                    events.c.datacontenttype,
                    events.c.traceparent,
                )
                .join(event_subscriptions, event_subscriptions.c.id == event_deliveries.c.subscription_id)
                .join(events, events.c.id == event_deliveries.c.event_id)
                .outerjoin(automation_triggers, automation_triggers.c.subscription_id == event_subscriptions.c.id)
                .where(
                    event_deliveries.c.id.in_(candidates),
                    event_deliveries.c.lease_owner == self.name,
                    event_deliveries.c.lease_until == until,
                )
                .order_by(events.c.time, events.c.id)
            )
        ).all()
        return [
            _Claimed(
                delivery_id=row.delivery_id,
                organization_id=row.organization_id,
                subscription_id=row.subscription_id,
                connection_id=row.connection_id,
                webhook_url=row.webhook_url,
                webhook_secret=row.webhook_secret,
                created_by=row.created_by,
                attempts=row.attempts,
                event=event_of(row),
                automation_id=row.automation_id,
                trigger_id=row.trigger_id,
            )
            for row in rows
        ]

    async def _deliver(self, batch: Sequence[_Claimed]) -> None:
        first = batch[0]
        to = "automation" if first.automation_id is not None else "connection" if first.connection_id else "webhook"
        traces = [item.event.traceparent for item in batch]
        with delivery_span(self.tracer, traces, first.subscription_id, {"meshgate.delivery.to": to}) as span:
            outcomes = await self._attempt(batch)
            delivered = sum(outcome.status == DELIVERED for outcome in outcomes.values())
            span.set_attribute("meshgate.delivered", delivered)
            if delivered < len(batch):
                span.set_status(StatusCode.ERROR, next((o.error for o in outcomes.values() if o.error), None))
            await self._record(batch, outcomes)

    async def _attempt(self, batch: Sequence[_Claimed]) -> dict[str, Outcome]:
        first = batch[0]
        if first.automation_id is not None:
            return await self._run_automation(batch)
        if first.connection_id is None:
            return await self._post(batch)
        try:
            member = await self._principal(first)
            narrowed = {first.connection_id: [DELIVERY_TOOL]}
            if member.connection_id is not None:  # the connection subscribed itself: it needs no one's rights
                principal = replace(member, grants=(narrowed,))
            else:
                principal = replace(member, grants=(*member.grants, narrowed))
            result = await self._calls.call_tool(
                principal,
                Target(first.connection_id),
                DELIVERY_TOOL,
                {"events": [item.event.to_dict() for item in batch]},
                CallContext(user_agent=f"meshgate-events/{self.name}", announced=False),
            )
        except MeshgateError as error:
            outcome = failed(error)
            return {item.delivery_id: outcome for item in batch}
        answer = answer_of(result)
        return {item.delivery_id: decided(answer, item.event.id, self.policy.max_retry_s) for item in batch}

    async def _run_automation(self, batch: Sequence[_Claimed]) -> dict[str, Outcome]:
        """One run of the automation per event, in the order they were published."""
        outcomes: dict[str, Outcome] = {}
        for item in batch:
            fired = Fired(item.event, item.trigger_id)
            outcomes[item.delivery_id] = await self.automations.on_event(
                item.organization_id, item.automation_id or "", fired
            )
        return outcomes

    async def _post(self, batch: Sequence[_Claimed]) -> dict[str, Outcome]:
        """Each event to the webhook, one signed request each, while the creator may still read events."""
        first = batch[0]
        try:
            member = await self._principal(first)
            if not member.allows(SELF, "EVENT_LIST"):
                raise PermissionDenied("the webhook's creator may no longer read events (self:EVENT_LIST)")
        except MeshgateError as error:
            return {item.delivery_id: failed(error) for item in batch}
        if self.webhooks is None or self._vault is None or first.webhook_url is None or first.webhook_secret is None:
            return {item.delivery_id: Outcome(PENDING, "this process sends no webhooks") for item in batch}
        secret = self._vault.open(first.webhook_secret, context=webhook_context(first.subscription_id)).decode()
        outcomes: dict[str, Outcome] = {}
        for item in batch:
            status, error, retry = await self.webhooks.send(
                first.webhook_url, secret, item.delivery_id, item.event, self.clock()
            )
            outcomes[item.delivery_id] = Outcome(status, error, retry)
        return outcomes

    async def _principal(self, claimed: _Claimed) -> Principal:
        """The subscription's creator as a member of the organization now, or the connection itself when it
        subscribed with its own credential (read once per round)."""
        key = (claimed.organization_id, claimed.created_by)
        found = self._principals.get(key)
        if found is None:
            found = self._principals[key] = asyncio.ensure_future(self._load_principal(claimed))
        return await asyncio.shield(found)

    async def _load_principal(self, claimed: _Claimed) -> Principal:
        async with self._db.transaction() as session:
            slug = await session.scalar(
                select(organizations.c.slug).where(organizations.c.id == claimed.organization_id)
            )
            if slug is None:
                raise NotFound("the organization is gone")
            if claimed.created_by == claimed.connection_id:
                return connection_principal(claimed.created_by, claimed.organization_id, str(slug))
            try:
                member = await member_principal(session, claimed.created_by, str(slug))
            except NotFound as exc:
                raise PermissionDenied("the person who subscribed is no longer a member of the organization") from exc
        return member

    async def _record(self, batch: Sequence[_Claimed], outcomes: Mapping[str, Outcome]) -> None:
        """Store each outcome; deliveries that end alike are updated together (one statement, not one each)."""
        now = self.clock()
        alike: dict[tuple[tuple[str, Any], ...], list[str]] = defaultdict(list)
        for item in batch:
            outcome = outcomes[item.delivery_id]
            values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
            values["last_error"] = None if outcome.error is None else outcome.error[:_MAX_ERROR]
            if outcome.status == DELIVERED:
                values |= {"status": DELIVERED, "delivered_at": now}
            elif outcome.status == DEAD:
                values |= {"status": DEAD, "attempts": item.attempts + 1}
            else:
                attempts = item.attempts + 1 if outcome.counts else item.attempts
                if attempts >= self.policy.max_attempts:
                    values |= {"status": DEAD, "attempts": attempts}
                else:
                    wait = outcome.retry_in_s if outcome.retry_in_s is not None else self._backoff(attempts)
                    values |= {"attempts": attempts, "next_attempt_at": now + timedelta(seconds=wait)}
            alike[tuple(sorted(values.items()))].append(item.delivery_id)
            self._counted(item, outcome, values, now)

        async def write(session: AsyncSession) -> None:
            for values_key, ids in alike.items():
                await session.execute(
                    update(event_deliveries)
                    .where(event_deliveries.c.id.in_(ids), event_deliveries.c.lease_owner == self.name)
                    .values(**dict(values_key))
                )

        await self._retrying(write)

    async def _retrying(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work` in a transaction, again when MariaDB/MySQL picks it as a deadlock victim. There claims and
        outcome writes of several workers lock index entries in different orders; READ COMMITTED (no gap
        locks) makes that rare, and a victim's transaction is rolled back whole, so running it again is safe."""
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                async with self._db.transaction() as session:
                    if self._db.dialect in ("mysql", "mariadb"):
                        await session.connection(execution_options={"isolation_level": "READ COMMITTED"})
                    return await work(session)
            except OperationalError as error:
                code = getattr(error.orig, "args", (None,))[0]
                if code not in _MYSQL_DEADLOCK or attempt == _DEADLOCK_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _counted(self, item: _Claimed, outcome: Outcome, values: Mapping[str, Any], now: datetime) -> None:
        if self.metrics is None:
            return
        if values.get("status") == DELIVERED:
            self.metrics.event_deliveries.labels("delivered").inc()
            self.metrics.event_latency.observe(max((now - item.event.time).total_seconds(), 0.0))
        elif values.get("status") == DEAD:
            self.metrics.event_deliveries.labels("dead").inc()
        else:
            self.metrics.event_deliveries.labels("retried" if outcome.counts else "later").inc()

    async def _count_pending(self) -> None:
        """The pending gauge, read at most every 5 s (a count is not free on a large table)."""
        if self.metrics is None or time.monotonic() - self._counted_at < 5:
            return
        self._counted_at = time.monotonic()
        async with self._db.transaction() as session:
            pending = await session.scalar(
                select(func.count()).select_from(event_deliveries).where(event_deliveries.c.status == PENDING)
            )
        self.metrics.event_pending.set(int(pending or 0))

    def _backoff(self, attempts: int) -> float:
        """Full delay doubles from the first retry up to the cap; the wait is half of it plus random jitter."""
        delay = min(self.policy.max_retry_s, self.policy.first_retry_s * 2 ** max(attempts - 1, 0))
        return delay / 2 + delay / 2 * self.jitter()

    def _heard(self, topic: str) -> None:
        if topic in (WAKE_TOPIC, EVERYTHING):
            self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the round: a publish during it wakes the next one at once
            try:
                busy = await self.run_once()
                wait = 0.0 if busy else await self.idle_wait()
            except Exception:  # a background loop's boundary: log with the traceback and go on
                log.exception("event delivery round failed")
                busy, wait = 0, min(self.policy.poll_s, _RETRY_ROUND_S)
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def idle_wait(self) -> float:
        """Seconds an idle worker may sleep: until the first thing due (`due.py`), within `poll_s`."""
        ahead = await outlook(self._db)
        if self.metrics is not None:
            self.metrics.event_pending.set(ahead.pending)
            self._counted_at = time.monotonic()
        if ahead.due_at is None:
            return self.policy.poll_s
        return min(max((ahead.due_at - self.clock()).total_seconds(), _SOONEST_S), self.policy.poll_s)
