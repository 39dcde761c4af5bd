"""Management tools for the event bus (names and inputs follow MCP Mesh's EVENT_* tools)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.errors import InvalidInput
from meshgate.events.automation_tools import TOOLS as AUTOMATION_TOOLS
from meshgate.events.models import DELIVERY_STATES
from meshgate.events.service import EventService, author_of, source_of
from meshgate.events.subscriptions import SubscriptionService, subscriber_of
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec

EVENT_STATES = ("published", "scheduled", "recurring", "cancelled")


class PublishInput(ToolInput):
    type: str = Field(description="The event type, e.g. order.created")
    subject: str | None = Field(default=None, description="What the event is about, e.g. an order id")
    data: Any = Field(default=None, description="Any JSON value (at most 256 KiB)")
    deliverAt: str | None = Field(default=None, description="Publish later: an ISO 8601 time with offset or Z")  # noqa: N815  (MCP Mesh's field names)
    cron: str | None = Field(default=None, description="Publish on a schedule: a 5-field cron expression")
    timezone: str | None = Field(default=None, description="IANA time zone the cron runs in (default UTC)")


class SubscribeInput(ToolInput):
    eventType: str = Field(description="An event type, or prefix.* for every type under a prefix")  # noqa: N815  (MCP Mesh's field names)
    connectionId: str | None = Field(  # noqa: N815  (MCP Mesh's field names)
        default=None,
        max_length=36,
        description="The connection whose ON_EVENTS tool receives the events (a connection's own credential:"
        " itself when left out)",
    )
    url: str | None = Field(
        default=None, max_length=2048, description="Instead of a connection: an https webhook (signed requests)"
    )
    publisher: str | None = Field(default=None, description="Only events from this source")
    filter: Any = Field(default=None, description="A CloudEvents Subscriptions API filter (exact, prefix, ...)")


class SubscriptionIdInput(ToolInput):
    subscriptionId: str = Field(max_length=36, description="A subscription id (from EVENT_SUBSCRIPTION_LIST)")  # noqa: N815  (MCP Mesh's field names)


class EventIdInput(ToolInput):
    eventId: str = Field(max_length=36, description="An event id (from EVENT_PUBLISH or EVENT_LIST)")  # noqa: N815  (MCP Mesh's field names)


class AckInput(ToolInput):
    eventId: str = Field(max_length=36, description="An event id (from EVENT_PUBLISH or EVENT_LIST)")  # noqa: N815  (MCP Mesh's field names)
    connectionId: str | None = Field(  # noqa: N815  (MCP Mesh's field names)
        default=None, max_length=36, description="The subscriber that handled the event (a connection: itself)"
    )


class RedeliverInput(ToolInput):
    eventId: str = Field(max_length=36, description="An event id (from EVENT_PUBLISH or EVENT_LIST)")  # noqa: N815  (MCP Mesh's field names)
    subscriptionId: str | None = Field(default=None, max_length=36, description="Only this subscription's delivery")  # noqa: N815  (MCP Mesh's field names)


class SubscriptionListInput(ToolInput):
    connectionId: str | None = Field(default=None, max_length=36, description="Only this connection's")  # noqa: N815  (MCP Mesh's field names)


class WantedSubscription(ToolInput):
    eventType: str = Field(description="An event type, or prefix.* for every type under a prefix")  # noqa: N815  (MCP Mesh's field names)
    publisher: str | None = Field(default=None, description="Only events from this source")
    filter: Any = Field(default=None, description="A CloudEvents Subscriptions API filter")


class SyncInput(ToolInput):
    connectionId: str | None = Field(  # noqa: N815  (MCP Mesh's field names)
        default=None, max_length=36, description="The connection whose subscriptions these are (a connection: itself)"
    )
    subscriptions: list[WantedSubscription] = Field(max_length=500, description="The whole wanted list")


class EventListInput(ToolInput):
    type: str | None = Field(default=None, description="An event type or prefix.*")
    status: str | None = Field(default=None, description="published, scheduled, recurring or cancelled")
    source: str | None = Field(default=None, max_length=300, description="Only events from this source")
    deliveryStatus: str | None = Field(  # noqa: N815  (camelCase like MCP Mesh's field names)
        default=None, description=f"Only events with a delivery in this state: {', '.join(DELIVERY_STATES)}"
    )
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many (1-1000)")
    offset: int = Field(default=0, ge=0, description="Skip this many")


def _subscriptions(ctx: ToolContext) -> SubscriptionService:
    return SubscriptionService(ctx.session, ctx.principal.organization_id, ctx.runtime.events.clock)


def _service(ctx: ToolContext) -> EventService:
    events = ctx.runtime.events
    return EventService(ctx.session, ctx.principal.organization_id, events.clock, events.metrics, events.tracer)


async def event_publish(ctx: ToolContext, args: PublishInput) -> Any:
    found = await _service(ctx).publish(
        source_of(ctx.principal),
        args.type,
        subject=args.subject,
        data=args.data,
        deliver_at=args.deliverAt,
        cron=args.cron,
        timezone=args.timezone,
        published_by=author_of(ctx.principal),
    )
    return found.to_dict()


async def event_subscribe(ctx: ToolContext, args: SubscribeInput) -> Any:
    if args.connectionId is not None and args.url is not None:
        raise InvalidInput("give connectionId (a connection's ON_EVENTS receives the events) or url (a webhook)")
    if args.url is None and args.connectionId is None and ctx.principal.connection_id is None:
        raise InvalidInput("give connectionId (a connection's ON_EVENTS receives the events) or url (a webhook)")
    if args.url is not None:
        runtime = ctx.runtime
        subscription, secret = await _subscriptions(ctx).subscribe_webhook(
            ctx.principal,
            args.url,
            args.eventType,
            args.publisher,
            args.filter,
            runtime.vault,
            runtime.upstreams.addresses,
        )
        return {**subscription.to_dict(), "created": True, "secret": secret}  # shown this once
    subscription, created = await _subscriptions(ctx).subscribe(
        ctx.principal, subscriber_of(ctx.principal, args.connectionId), args.eventType, args.publisher, args.filter
    )
    return {**subscription.to_dict(), "created": created}


async def event_unsubscribe(ctx: ToolContext, args: SubscriptionIdInput) -> Any:
    removed = await _subscriptions(ctx).unsubscribe(ctx.principal, args.subscriptionId)
    return {**removed.to_dict(), "deleted": True}


async def event_subscription_list(ctx: ToolContext, args: SubscriptionListInput) -> Any:
    connection = args.connectionId
    if ctx.principal.connection_id is not None:  # a connection lists its own subscriptions only
        connection = subscriber_of(ctx.principal, connection)
    return {"items": [item.to_dict() for item in await _subscriptions(ctx).subscriptions(connection)]}


async def event_sync(ctx: ToolContext, args: SyncInput) -> Any:
    wanted = [item.model_dump() for item in args.subscriptions]
    return await _subscriptions(ctx).sync(ctx.principal, subscriber_of(ctx.principal, args.connectionId), wanted)


async def event_cancel(ctx: ToolContext, args: EventIdInput) -> Any:
    was = await _service(ctx).cancel(ctx.principal, args.eventId)
    return {"id": args.eventId, "cancelled": True, "was": was}


async def event_ack(ctx: ToolContext, args: AckInput) -> Any:
    connection = subscriber_of(ctx.principal, args.connectionId)
    acknowledged = await _service(ctx).ack(ctx.principal, args.eventId, connection)
    return {"id": args.eventId, "acknowledged": acknowledged}


async def event_redeliver(ctx: ToolContext, args: RedeliverInput) -> Any:
    again = await _service(ctx).redeliver(args.eventId, args.subscriptionId)
    return {"id": args.eventId, "redelivered": again}


async def event_list(ctx: ToolContext, args: EventListInput) -> Any:
    if args.status is not None and args.status not in EVENT_STATES:
        raise InvalidInput(f"status {args.status[:40]!r} is unknown; allowed: {', '.join(EVENT_STATES)}")
    service = _service(ctx)
    found, total = await service.list(
        ctx.principal,
        event_type=args.type,
        status=args.status,
        source=args.source,
        delivery_status=args.deliveryStatus,
        limit=args.limit,
        offset=args.offset,
    )
    counts = await service.delivery_counts(ctx.principal, [event for event, _ in found])
    return {
        "items": [{**event.to_dict(), "status": status, "deliveryCounts": counts[event.id]} for event, status in found],
        "totalCount": total,
        "hasMore": args.offset + len(found) < total,
    }


async def event_get(ctx: ToolContext, args: EventIdInput) -> Any:
    event, status, deliveries = await _service(ctx).get(ctx.principal, args.eventId)
    return {**event.to_dict(), "status": status, "deliveries": [item.to_dict() for item in deliveries]}


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "EVENT_PUBLISH",
        "Publish a CloudEvent now, at deliverAt, or on a cron schedule (one schedule per source and type).",
        PublishInput,
        event_publish,
    ),
    ToolSpec(
        "EVENT_SUBSCRIBE",
        "Have a connection's ON_EVENTS tool (or an https webhook, signed as Standard Webhooks says; its secret is"
        " shown once) receive events of a type (or prefix.*), optionally from one publisher and matching a"
        " CloudEvents filter. Deliveries run with your permissions.",
        SubscribeInput,
        event_subscribe,
    ),
    ToolSpec("EVENT_UNSUBSCRIBE", "Remove a subscription.", SubscriptionIdInput, event_unsubscribe),
    ToolSpec(
        "EVENT_SUBSCRIPTION_LIST",
        "List subscriptions, of one connection or all.",
        SubscriptionListInput,
        event_subscription_list,
        read_only=True,
    ),
    ToolSpec(
        "EVENT_SYNC_SUBSCRIPTIONS",
        "Make a connection's subscriptions exactly the given list; answers what was created, updated, deleted.",
        SyncInput,
        event_sync,
    ),
    ToolSpec("EVENT_CANCEL", "Cancel a scheduled or recurring event.", EventIdInput, event_cancel),
    ToolSpec(
        "EVENT_ACK",
        "Confirm that a subscriber handled an event it asked to get again later (retryAfter).",
        AckInput,
        event_ack,
    ),
    ToolSpec(
        "EVENT_REDELIVER",
        f"Deliver an event's dead-lettered deliveries again (delivery states: {', '.join(DELIVERY_STATES)}).",
        RedeliverInput,
        event_redeliver,
    ),
    ToolSpec(
        "EVENT_LIST",
        "List events, newest first, with how many of each one's deliveries are in each state.",
        EventListInput,
        event_list,
        read_only=True,
    ),
    ToolSpec("EVENT_GET", "An event with the state of each delivery.", EventIdInput, event_get, read_only=True),
    *AUTOMATION_TOOLS,
]
