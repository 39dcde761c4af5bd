"""MONITORING_* management tools over the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from meshgate.errors import InvalidInput
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec
from meshgate.monitoring.service import LogFilter, MonitoringService


class FilterInput(ToolInput):
    connectionId: str | None = Field(None, description="Only calls to this connection", max_length=36)  # noqa: N815
    virtualMcpId: str | None = Field(None, description="Only calls through this virtual MCP", max_length=36)  # noqa: N815
    toolName: str | None = Field(None, description="Only calls of this tool", max_length=255)  # noqa: N815
    toolNameContains: str | None = Field(  # noqa: N815
        None, description="Only calls of tools whose name contains this text (any case)", max_length=255
    )
    userId: str | None = Field(None, description="Only calls made by this user (any credential)", max_length=36)  # noqa: N815
    startDate: str | None = Field(None, description="ISO 8601 time; only calls at or after it", max_length=40)  # noqa: N815
    endDate: str | None = Field(None, description="ISO 8601 time; only calls at or before it", max_length=40)  # noqa: N815


class ListInput(FilterInput):
    isError: bool | None = Field(None, description="Only failed (true) or successful (false) calls")  # noqa: N815
    limit: int = Field(100, description="Page size, 1-1000", ge=1, le=1000)
    offset: int = Field(0, description="Records to skip", ge=0)


class StatsInput(FilterInput):
    bucketSeconds: int | None = Field(  # noqa: N815
        None, description="Also return a time series with buckets of this many seconds (60-86400)", ge=60, le=86400
    )


class GetInput(ToolInput):
    id: str = Field(description="Log record id", max_length=36)


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{field} {value!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z") from exc
    if parsed.tzinfo is None:
        raise InvalidInput(f"{field} {value!r} needs a time zone (e.g. a trailing Z)")
    return parsed


def _filter(args: FilterInput, is_error: bool | None = None) -> LogFilter:
    return LogFilter(
        connection_id=args.connectionId,
        virtual_mcp_id=args.virtualMcpId,
        tool_name=args.toolName,
        tool_name_contains=args.toolNameContains,
        user_id=args.userId,
        is_error=is_error,
        start=_time(args.startDate, "startDate"),
        end=_time(args.endDate, "endDate"),
    )


async def logs_list(ctx: ToolContext, args: ListInput) -> Any:
    service = MonitoringService(ctx.session, ctx.principal.organization_id)
    items, total = await service.list(_filter(args, args.isError), limit=args.limit, offset=args.offset)
    return {
        "items": [item.to_dict() for item in items],
        "totalCount": total,
        "hasMore": args.offset + len(items) < total,
    }


async def log_get(ctx: ToolContext, args: GetInput) -> Any:
    return (await MonitoringService(ctx.session, ctx.principal.organization_id).get(args.id)).to_dict()


async def stats(ctx: ToolContext, args: StatsInput) -> Any:
    service = MonitoringService(ctx.session, ctx.principal.organization_id)
    return await service.stats(_filter(args), bucket_seconds=args.bucketSeconds)


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "MONITORING_LOGS_LIST",
        "List audit records of calls, newest first, with filters.",
        ListInput,
        logs_list,
        read_only=True,
    ),
    ToolSpec("MONITORING_LOG_GET", "Get one audit record.", GetInput, log_get, read_only=True),
    ToolSpec(
        "MONITORING_STATS",
        "Totals, error rate, latency percentiles and top tools; AI usage (calls, tokens, cost) by model and by"
        " caller under aiUsage; with bucketSeconds also a time series.",
        StatsInput,
        stats,
        read_only=True,
    ),
]
