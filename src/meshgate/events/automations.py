"""Automations: a tool on a connection, called with arguments built from an event when a trigger fires.

A trigger is a subscription whose delivery runs the automation (so matching, at-least-once delivery, leases
and retries are the event bus's own): an `event` trigger subscribes to a type (or `prefix.*`) with an optional
filter; a `cron` trigger is a recurring event of type `meshgate.automation.cron` from the source
`automation:<trigger id>` plus a subscription to exactly that source. Runs call the tool as the automation's
owner, with the owner's permissions at run time (`runs.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import Principal
from meshgate.db.database import announce_change
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import (
    automation_runs,
    automation_triggers,
    automations,
    connections,
    event_subscriptions,
    events,
)
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.events.filters import checked_filter
from meshgate.events.models import AUTOMATION_SOURCE_PREFIX, SUBSCRIPTIONS_TOPIC, checked_pattern, iso_time
from meshgate.events.service import EventService
from meshgate.events.templates import checked_template

CRON_TYPE = "meshgate.automation.cron"
MAX_AUTOMATIONS = 500  # per organization
MAX_TRIGGERS = 20  # per automation
MAX_NAME = 200
MAX_TOOL = 200
RUN_STATES = ("ok", "error", "refused")


def cron_source(trigger_id: str) -> str:
    return f"{AUTOMATION_SOURCE_PREFIX}{trigger_id}"


@dataclass(frozen=True, slots=True)
class Automation:
    id: str
    organization_id: str
    name: str
    description: str | None
    enabled: bool
    owner_id: str
    connection_id: str
    tool_name: str
    arguments: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "ownerId": self.owner_id,
            "connectionId": self.connection_id,
            "toolName": self.tool_name,
            "arguments": self.arguments,
            "createdAt": iso_time(self.created_at),
            "updatedAt": iso_time(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    automation_id: str
    trigger_id: str | None
    event_id: str | None
    event_type: str | None
    started_at: datetime
    finished_at: datetime
    status: str  # ok | error | refused
    result: str | None  # the tool's result as JSON text, cut to 4 KiB
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "automationId": self.automation_id,
            "triggerId": self.trigger_id,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "startedAt": iso_time(self.started_at),
            "finishedAt": iso_time(self.finished_at),
            "status": self.status,
            "result": self.result,
            "error": self.error,
        }


class AutomationService:
    """The automations of one organization, their triggers and their runs."""

    def __init__(self, session: AsyncSession, organization_id: str, clock: Callable[[], datetime] = utc_now) -> None:
        self._session = session
        self._org = organization_id
        self._clock = clock

    # -- automations --------------------------------------------------------------------------------------

    async def create(  # noqa: PLR0917  (an automation has this many parts)
        self,
        principal: Principal,
        name: str,
        connection_id: str,
        tool_name: str,
        arguments: Any,
        description: str | None = None,
        enabled: bool = True,
    ) -> Automation:
        """An automation owned by `principal`'s user, who must be allowed to call the tool now."""
        values = await self._checked(principal, name, connection_id, tool_name, arguments)
        count = await self._session.scalar(
            select(func.count()).select_from(automations).where(automations.c.organization_id == self._org)
        )
        if int(count or 0) >= MAX_AUTOMATIONS:
            raise Conflict(f"an organization has at most {MAX_AUTOMATIONS} automations")
        now, automation_id = self._clock(), new_id()
        await self._session.execute(
            insert(automations).values(
                id=automation_id,
                organization_id=self._org,
                description=description,
                enabled=enabled,
                owner_id=principal.user_id,
                created_at=now,
                updated_at=now,
                **values,
            )
        )
        return await self.get(automation_id)

    async def update(self, principal: Principal, automation_id: str, changes: dict[str, Any]) -> Automation:
        """Change an automation; whoever changes it becomes its owner (runs use their permissions from then on),
        so nobody can make an automation call something with another person's rights."""
        found = await self.get(automation_id)
        values = await self._checked(
            principal,
            changes.get("name", found.name),
            changes.get("connection_id", found.connection_id),
            changes.get("tool_name", found.tool_name),
            changes.get("arguments", found.arguments),
        )
        for key in ("description", "enabled"):
            if key in changes:
                values[key] = changes[key]
        await self._session.execute(
            update(automations)
            .where(automations.c.id == automation_id)
            .values(owner_id=principal.user_id, updated_at=self._clock(), **values)
        )
        return await self.get(automation_id)

    async def delete(self, automation_id: str) -> Automation:
        """Remove an automation, its triggers (their subscriptions and schedules) and its runs."""
        found = await self.get(automation_id)
        for trigger in await self._trigger_rows(automation_id):
            await self._remove_trigger(trigger)
        await self._session.execute(delete(automations).where(automations.c.id == automation_id))
        return found

    async def get(self, automation_id: str) -> Automation:
        row = (
            await self._session.execute(
                select(automations).where(automations.c.organization_id == self._org, automations.c.id == automation_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"automation {automation_id[:80]} not found")
        return automation_of(row)

    async def list(self, limit: int = 100, offset: int = 0) -> tuple[list[Automation], int]:
        where = automations.c.organization_id == self._org
        total = int(await self._session.scalar(select(func.count()).select_from(automations).where(where)) or 0)
        rows = (
            await self._session.execute(
                select(automations)
                .where(where)
                .order_by(automations.c.name, automations.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [automation_of(row) for row in rows], total

    # -- triggers -----------------------------------------------------------------------------------------

    async def add_trigger(
        self,
        principal: Principal,
        automation_id: str,
        *,
        event_type: str | None = None,
        filter_: Any = None,
        cron: str | None = None,
        timezone: str | None = None,
    ) -> dict[str, Any]:
        """An event trigger (`event_type`, optional `filter_`) or a cron trigger (`cron`, optional `timezone`)."""
        await self.get(automation_id)
        if (event_type is None) == (cron is None):
            raise InvalidInput("give eventType (run on matching events) or cron (run on a schedule), not both")
        if len(await self._trigger_rows(automation_id)) >= MAX_TRIGGERS:
            raise Conflict(f"an automation has at most {MAX_TRIGGERS} triggers")
        now, trigger_id, subscription_id = self._clock(), new_id(), new_id()
        recurring: str | None = None
        if cron is None:
            if timezone is not None:
                raise InvalidInput("timezone applies to cron triggers only")
            pattern, publisher = checked_pattern(event_type or ""), None
            checked_filter(filter_)
        else:
            if filter_ is not None:
                raise InvalidInput("filter applies to event triggers only")
            pattern, publisher = CRON_TYPE, cron_source(trigger_id)
            published = await EventService(self._session, self._org, self._clock).publish(
                publisher,
                CRON_TYPE,
                data={"automationId": automation_id, "triggerId": trigger_id},
                cron=cron,
                timezone=timezone,
                published_by=principal.user_id,
            )
            recurring = published.event.id
        await self._session.execute(
            insert(event_subscriptions).values(
                id=subscription_id,
                organization_id=self._org,
                event_type=pattern,
                publisher=publisher,
                filter=filter_,
                created_by=principal.user_id,
                created_at=now,
                updated_at=now,
            )
        )
        await announce_change(self._session, SUBSCRIPTIONS_TOPIC)
        await self._session.execute(
            insert(automation_triggers).values(
                id=trigger_id,
                organization_id=self._org,
                automation_id=automation_id,
                kind="event" if cron is None else "cron",
                subscription_id=subscription_id,
                recurring_event_id=recurring,
                created_at=now,
            )
        )
        return await self.trigger(automation_id, trigger_id)

    async def remove_trigger(self, automation_id: str, trigger_id: str) -> dict[str, Any]:
        found = await self.trigger(automation_id, trigger_id)
        row = next(row for row in await self._trigger_rows(automation_id) if row.id == trigger_id)
        await self._remove_trigger(row)
        return found

    async def trigger(self, automation_id: str, trigger_id: str) -> dict[str, Any]:
        for item in await self.triggers(automation_id):
            if item["id"] == trigger_id:
                return item
        raise NotFound(f"trigger {trigger_id[:80]} of automation {automation_id[:80]} not found")

    async def triggers(self, automation_id: str) -> list[dict[str, Any]]:
        """The triggers as shown: kind, and the event type and filter, or the cron, time zone and next firing."""
        return [_trigger(row) for row in await self._trigger_rows(automation_id)]

    # -- runs ---------------------------------------------------------------------------------------------

    async def runs(
        self, automation_id: str, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[Run], int]:
        await self.get(automation_id)
        where = [automation_runs.c.organization_id == self._org, automation_runs.c.automation_id == automation_id]
        if status is not None:
            if status not in RUN_STATES:
                raise InvalidInput(f"status {status[:40]!r} is unknown; allowed: {', '.join(RUN_STATES)}")
            where.append(automation_runs.c.status == status)
        total = int(await self._session.scalar(select(func.count()).select_from(automation_runs).where(*where)) or 0)
        rows = (
            await self._session.execute(
                select(automation_runs)
                .where(*where)
                .order_by(automation_runs.c.started_at.desc(), automation_runs.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [run_of(row) for row in rows], total

    async def record(self, run: Run) -> None:
        await self._session.execute(
            insert(automation_runs).values(
                id=run.id,
                organization_id=self._org,
                automation_id=run.automation_id,
                trigger_id=run.trigger_id,
                event_id=run.event_id,
                event_type=run.event_type,
                started_at=run.started_at,
                finished_at=run.finished_at,
                status=run.status,
                result=run.result,
                error=run.error,
            )
        )

    # -- internals ----------------------------------------------------------------------------------------

    async def _checked(
        self, principal: Principal, name: str, connection_id: str, tool_name: str, arguments: Any
    ) -> dict[str, Any]:
        if not name.strip() or len(name) > MAX_NAME:
            raise InvalidInput(f"name must be 1 to {MAX_NAME} characters")
        if not tool_name or len(tool_name) > MAX_TOOL:
            raise InvalidInput(f"toolName must be 1 to {MAX_TOOL} characters")
        template = checked_template(arguments)
        found = await self._session.scalar(
            select(connections.c.id).where(
                connections.c.organization_id == self._org, connections.c.id == connection_id
            )
        )
        if found is None:
            raise NotFound(f"connection {connection_id[:80]} not found")
        if not principal.allows(connection_id, tool_name):
            raise PermissionDenied(
                f"an automation calls {tool_name} as its owner: you need the permission {connection_id}:{tool_name}"
            )
        return {"name": name, "connection_id": connection_id, "tool_name": tool_name, "arguments": template}

    async def _trigger_rows(self, automation_id: str) -> list[Row[Any]]:
        rows = await self._session.execute(
            select(
                automation_triggers,
                event_subscriptions.c.event_type,
                event_subscriptions.c.filter,
                events.c.cron,
                events.c.timezone,
                events.c.due_at,
            )
            .join(event_subscriptions, event_subscriptions.c.id == automation_triggers.c.subscription_id)
            .outerjoin(events, events.c.id == automation_triggers.c.recurring_event_id)
            .where(
                automation_triggers.c.organization_id == self._org, automation_triggers.c.automation_id == automation_id
            )
            .order_by(automation_triggers.c.created_at, automation_triggers.c.id)
        )
        return list(rows.all())

    async def _remove_trigger(self, row: Row[Any]) -> None:
        # The subscription's deletion takes the trigger and its pending deliveries with it (foreign keys).
        await self._session.execute(delete(event_subscriptions).where(event_subscriptions.c.id == row.subscription_id))
        await announce_change(self._session, SUBSCRIPTIONS_TOPIC)
        if row.recurring_event_id is not None:
            await self._session.execute(delete(events).where(events.c.id == row.recurring_event_id))


def automation_of(row: Any) -> Automation:
    return Automation(
        id=str(row.id),
        organization_id=str(row.organization_id),
        name=str(row.name),
        description=row.description,
        enabled=bool(row.enabled),
        owner_id=str(row.owner_id),
        connection_id=str(row.connection_id),
        tool_name=str(row.tool_name),
        arguments=dict(row.arguments or {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def run_of(row: Any) -> Run:
    return Run(
        id=str(row.id),
        automation_id=str(row.automation_id),
        trigger_id=row.trigger_id,
        event_id=row.event_id,
        event_type=row.event_type,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=str(row.status),
        result=row.result,
        error=row.error,
    )


def _trigger(row: Row[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"id": row.id, "kind": row.kind, "createdAt": iso_time(row.created_at)}
    if row.kind == "cron":
        next_at = None if row.due_at is None else iso_time(row.due_at)
        return found | {"cron": row.cron, "timezone": row.timezone or "UTC", "nextAt": next_at}
    return found | {"eventType": row.event_type, "filter": row.filter}
