"""Management tools for automations (AUTOMATION_*): a tool called when an event matches or a cron fires."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.db.rows import new_id
from meshgate.events.automations import RUN_STATES, AutomationService
from meshgate.events.models import CloudEvent, checked_type
from meshgate.events.runs import Fired
from meshgate.events.service import source_of
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec

_ARGUMENTS = (
    'The tool\'s arguments: JSON where {"$event": "/data/title"} (optionally with "default") takes a value from the'
    ' event by JSON pointer and "text {{/data/title}}" puts one into a string'
)
MANUAL_TYPE = "meshgate.automation.manual"


class CreateInput(ToolInput):
    name: str = Field(max_length=200, description="A name for people")
    description: str | None = Field(default=None, max_length=1000, description="What the automation is for")
    connectionId: str = Field(max_length=36, description="The connection whose tool is called")  # noqa: N815  (MCP Mesh's field names)
    toolName: str = Field(max_length=200, description="The tool called on every run")  # noqa: N815  (MCP Mesh's field names)
    arguments: dict[str, Any] = Field(default_factory=dict, description=_ARGUMENTS)
    enabled: bool = Field(default=True, description="Whether triggers run it")


class UpdateInput(ToolInput):
    id: str = Field(max_length=36, description="An automation id")
    name: str | None = Field(default=None, max_length=200, description="A new name")
    description: str | None = Field(default=None, max_length=1000, description="What the automation is for")
    connectionId: str | None = Field(default=None, max_length=36, description="Another connection to call")  # noqa: N815  (MCP Mesh's field names)
    toolName: str | None = Field(default=None, max_length=200, description="Another tool to call")  # noqa: N815  (MCP Mesh's field names)
    arguments: dict[str, Any] | None = Field(default=None, description=_ARGUMENTS)
    enabled: bool | None = Field(default=None, description="Whether triggers run it")


class IdInput(ToolInput):
    id: str = Field(max_length=36, description="An automation id")


class GetInput(ToolInput):
    id: str = Field(max_length=36, description="An automation id")
    runsLimit: int = Field(default=20, ge=0, le=1000, description="How many recent runs to include")  # noqa: N815  (MCP Mesh's field names)
    runsStatus: str | None = Field(default=None, description=f"Only runs with this status: {', '.join(RUN_STATES)}")  # noqa: N815  (MCP Mesh's field names)


class ListInput(ToolInput):
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many (1-1000)")
    offset: int = Field(default=0, ge=0, description="Skip this many")


class TriggerAddInput(ToolInput):
    automationId: str = Field(max_length=36, description="An automation id")  # noqa: N815  (MCP Mesh's field names)
    eventType: str | None = Field(default=None, description="Run on events of this type (or prefix.*)")  # noqa: N815  (MCP Mesh's field names)
    filter: Any = Field(default=None, description="With eventType: a CloudEvents Subscriptions API filter")
    cron: str | None = Field(default=None, description="Instead of eventType: run on a 5-field cron schedule")
    timezone: str | None = Field(default=None, description="IANA time zone the cron runs in (default UTC)")


class TriggerRemoveInput(ToolInput):
    automationId: str = Field(max_length=36, description="An automation id")  # noqa: N815  (MCP Mesh's field names)
    triggerId: str = Field(max_length=36, description="A trigger id (from AUTOMATION_GET)")  # noqa: N815  (MCP Mesh's field names)


class TestEvent(ToolInput):
    type: str = Field(default=MANUAL_TYPE, description="The event type")
    subject: str | None = Field(default=None, max_length=1024, description="The event subject")
    data: Any = Field(default=None, description="The event data")


class RunInput(ToolInput):
    id: str = Field(max_length=36, description="An automation id")
    event: TestEvent | None = Field(default=None, description="The event the arguments are built from")


def _service(ctx: ToolContext) -> AutomationService:
    return AutomationService(ctx.session, ctx.principal.organization_id, ctx.runtime.events.clock)


async def _shown(service: AutomationService, automation_id: str) -> dict[str, Any]:
    found = await service.get(automation_id)
    return {**found.to_dict(), "triggers": await service.triggers(automation_id)}


async def automation_create(ctx: ToolContext, args: CreateInput) -> Any:
    service = _service(ctx)
    created = await service.create(
        ctx.principal, args.name, args.connectionId, args.toolName, args.arguments, args.description, args.enabled
    )
    return await _shown(service, created.id)


async def automation_update(ctx: ToolContext, args: UpdateInput) -> Any:
    given = {
        "name": args.name,
        "description": args.description,
        "connection_id": args.connectionId,
        "tool_name": args.toolName,
        "arguments": args.arguments,
        "enabled": args.enabled,
    }
    service = _service(ctx)
    await service.update(ctx.principal, args.id, {key: value for key, value in given.items() if value is not None})
    return await _shown(service, args.id)


async def automation_delete(ctx: ToolContext, args: IdInput) -> Any:
    removed = await _service(ctx).delete(args.id)
    return {**removed.to_dict(), "deleted": True}


async def automation_get(ctx: ToolContext, args: GetInput) -> Any:
    service = _service(ctx)
    runs, total = await service.runs(args.id, args.runsStatus, limit=max(args.runsLimit, 1))
    shown = runs[: args.runsLimit]
    return {**await _shown(service, args.id), "runs": [run.to_dict() for run in shown], "runsCount": total}


async def automation_list(ctx: ToolContext, args: ListInput) -> Any:
    found, total = await _service(ctx).list(args.limit, args.offset)
    return {
        "items": [item.to_dict() for item in found],
        "totalCount": total,
        "hasMore": args.offset + len(found) < total,
    }


async def automation_trigger_add(ctx: ToolContext, args: TriggerAddInput) -> Any:
    return await _service(ctx).add_trigger(
        ctx.principal,
        args.automationId,
        event_type=args.eventType,
        filter_=args.filter,
        cron=args.cron,
        timezone=args.timezone,
    )


async def automation_trigger_remove(ctx: ToolContext, args: TriggerRemoveInput) -> Any:
    removed = await _service(ctx).remove_trigger(args.automationId, args.triggerId)
    return {**removed, "deleted": True}


async def automation_run(ctx: ToolContext, args: RunInput) -> Any:
    """Run now (enabled or not) as the owner; the test event's `source` is the caller. The runner reads and
    records in transactions of its own (the tool's session stays unused: on SQLite it would hold a snapshot)."""
    event = None
    if args.event is not None:
        event = CloudEvent(
            id=new_id(),
            source=source_of(ctx.principal),
            type=checked_type(args.event.type),
            time=ctx.runtime.events.clock(),
            subject=args.event.subject,
            data=args.event.data,
        )
    run = await ctx.runtime.events.automations.run_now(ctx.principal.organization_id, args.id, Fired(event))
    return run.to_dict()


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "AUTOMATION_CREATE",
        "Create an automation: a tool on a connection called, as you and with your permissions at the time, when"
        " one of its triggers fires (add them with AUTOMATION_TRIGGER_ADD).",
        CreateInput,
        automation_create,
    ),
    ToolSpec(
        "AUTOMATION_GET", "An automation with its triggers and recent runs.", GetInput, automation_get, read_only=True
    ),
    ToolSpec("AUTOMATION_LIST", "List automations by name.", ListInput, automation_list, read_only=True),
    ToolSpec(
        "AUTOMATION_UPDATE",
        "Change an automation; you become its owner (its runs use your permissions from then on).",
        UpdateInput,
        automation_update,
    ),
    ToolSpec("AUTOMATION_DELETE", "Remove an automation with its triggers and runs.", IdInput, automation_delete),
    ToolSpec(
        "AUTOMATION_TRIGGER_ADD",
        "Run an automation on events of a type (or prefix.*) matching an optional filter, or on a cron schedule.",
        TriggerAddInput,
        automation_trigger_add,
    ),
    ToolSpec("AUTOMATION_TRIGGER_REMOVE", "Remove a trigger.", TriggerRemoveInput, automation_trigger_remove),
    ToolSpec(
        "AUTOMATION_RUN",
        "Run an automation now (even disabled), optionally with a test event; returns the run with its result.",
        RunInput,
        automation_run,
    ),
]
