"""Queries over the audit log of one organization."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.db.tables import monitoring_logs as logs
from meshgate.errors import NotFound
from meshgate.monitoring.models import AI_METHODS, AuditRecord

STATS_SAMPLE = 100_000


class LogFilter:
    """The filters shared by MONITORING_LOGS_LIST and MONITORING_STATS."""

    def __init__(
        self,
        *,
        connection_id: str | None = None,
        virtual_mcp_id: str | None = None,
        tool_name: str | None = None,
        tool_name_contains: str | None = None,
        user_id: str | None = None,
        is_error: bool | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        self.connection_id = connection_id
        self.virtual_mcp_id = virtual_mcp_id
        self.tool_name = tool_name
        self.tool_name_contains = tool_name_contains
        self.user_id = user_id
        self.is_error = is_error
        self.start = start
        self.end = end

    def conditions(self, organization_id: str) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [logs.c.organization_id == organization_id]
        if self.connection_id is not None:
            conditions.append(logs.c.connection_id == self.connection_id)
        if self.virtual_mcp_id is not None:
            conditions.append(logs.c.virtual_mcp_id == self.virtual_mcp_id)
        if self.tool_name is not None:
            conditions.append(logs.c.tool_name == self.tool_name)
        if self.tool_name_contains:
            part = self.tool_name_contains.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
            conditions.append(func.lower(logs.c.tool_name).like(f"%{part}%", escape="!"))
        if self.user_id is not None:
            conditions.append(logs.c.user_id == self.user_id)
        if self.is_error is not None:
            conditions.append(logs.c.is_error == self.is_error)
        if self.start is not None:
            conditions.append(logs.c.created_at >= self.start)
        if self.end is not None:
            conditions.append(logs.c.created_at <= self.end)
        return conditions


class MonitoringService:
    def __init__(self, session: AsyncSession, organization_id: str) -> None:
        self._session = session
        self._org = organization_id

    async def list(self, where: LogFilter, *, limit: int, offset: int) -> tuple[list[AuditRecord], int]:
        conditions = where.conditions(self._org)
        query = (
            select(logs).where(*conditions).order_by(logs.c.created_at.desc(), logs.c.id).limit(limit).offset(offset)
        )
        rows = (await self._session.execute(query)).all()
        total = await self._session.scalar(select(func.count()).select_from(logs).where(*conditions))
        return [_record(row) for row in rows], int(total or 0)

    async def get(self, log_id: str) -> AuditRecord:
        query = select(logs).where(logs.c.organization_id == self._org, logs.c.id == log_id)
        row = (await self._session.execute(query)).first()
        if row is None:
            raise NotFound(f"log {log_id} not found")
        return _record(row)

    async def stats(self, where: LogFilter, *, bucket_seconds: int | None = None) -> dict[str, Any]:
        """Totals, error rate, latency percentiles and the ten most called tools (and a time series on request)."""
        query = (
            select(logs.c.method, logs.c.tool_name, logs.c.is_error, logs.c.duration_ms, logs.c.created_at)
            .where(*where.conditions(self._org))
            .order_by(logs.c.created_at.desc())
            .limit(STATS_SAMPLE)
        )
        rows = (await self._session.execute(query)).all()
        durations = sorted(float(row.duration_ms) for row in rows)
        errors = sum(1 for row in rows if row.is_error)
        calls: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        for row in rows:
            if row.method in AI_METHODS:
                continue  # a model, not a tool: counted under aiUsage
            name = row.tool_name or "(none)"
            calls[name] += 1
            if row.is_error:
                failed[name] += 1
        result: dict[str, Any] = {
            "totalCalls": len(rows),
            "errorCount": errors,
            "errorRate": round(errors / len(rows), 4) if rows else 0.0,
            "latencyMs": {
                "p50": _percentile(durations, 50),
                "p95": _percentile(durations, 95),
                "p99": _percentile(durations, 99),
                "avg": round(sum(durations) / len(durations), 3) if durations else None,
            },
            "topTools": [
                {"toolName": name, "calls": count, "errors": failed[name]} for name, count in calls.most_common(10)
            ],
            "sampled": len(rows) == STATS_SAMPLE,
            "firstCallAt": _iso(rows[-1].created_at) if rows else None,
            "lastCallAt": _iso(rows[0].created_at) if rows else None,
        }
        if bucket_seconds is not None:
            result["series"] = _series(rows, bucket_seconds, where.start, where.end)
        result["aiUsage"] = await self._ai_usage(where)
        return result

    async def _ai_usage(self, where: LogFilter) -> dict[str, Any]:
        """AI calls, tokens and cost by model and by caller (the credential, else the user)."""
        if where.connection_id is not None or where.virtual_mcp_id is not None:  # AI calls have neither
            return {
                "calls": 0,
                "errors": 0,
                "tokensIn": 0,
                "tokensOut": 0,
                "costUsd": None,
                "byModel": [],
                "byCaller": [],
            }
        conditions = [*where.conditions(self._org), logs.c.method.in_(AI_METHODS)]
        sums = (
            func.count().label("calls"),
            func.sum(case((logs.c.is_error, 1), else_=0)).label("errors"),
            func.coalesce(func.sum(logs.c.tokens_in), 0).label("tokens_in"),
            func.coalesce(func.sum(logs.c.tokens_out), 0).label("tokens_out"),
            func.sum(logs.c.cost_usd).label("cost"),
        )
        callers = (logs.c.caller_type, logs.c.user_id, logs.c.api_key_id, logs.c.client_id)
        by_model = await self._session.execute(
            select(logs.c.tool_name, *sums).where(*conditions).group_by(logs.c.tool_name)
        )
        by_caller = await self._session.execute(select(*callers, *sums).where(*conditions).group_by(*callers))
        models = sorted(({"model": row.tool_name, **_usage(row)} for row in by_model), key=_heaviest)
        people = sorted(
            (
                {
                    "caller": {
                        "type": row.caller_type,
                        "userId": row.user_id,
                        "apiKeyId": row.api_key_id,
                        "clientId": row.client_id,
                    },
                    **_usage(row),
                }
                for row in by_caller
            ),
            key=_heaviest,
        )
        total = {key: sum(item[key] for item in models) for key in ("calls", "errors", "tokensIn", "tokensOut")}
        costs = [item["costUsd"] for item in models if item["costUsd"] is not None]
        return {**total, "costUsd": round(sum(costs), 6) if costs else None, "byModel": models, "byCaller": people}


MAX_BUCKETS = 1000


def _heaviest(item: dict[str, Any]) -> tuple[int, int]:
    return -int(item["tokensIn"]) - int(item["tokensOut"]), -int(item["calls"])


def _usage(row: Any) -> dict[str, Any]:
    return {
        "calls": int(row.calls),
        "errors": int(row.errors or 0),
        "tokensIn": int(row.tokens_in or 0),
        "tokensOut": int(row.tokens_out or 0),
        "costUsd": None if row.cost is None else round(float(row.cost), 6),
    }


def _iso(value: datetime) -> str:
    return _aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _series(
    rows: Sequence[Row[Any, Any, Any, Any, Any]], bucket_seconds: int, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    """Calls, errors and latency percentiles per bucket, oldest first; empty buckets in the range count zero."""
    times = [_aware(row.created_at).timestamp() for row in rows]
    if start is None and not times:
        return []
    first = start.timestamp() if start is not None else min(times)
    last = end.timestamp() if end is not None else max(times, default=first)
    origin = first // bucket_seconds * bucket_seconds
    count = min(MAX_BUCKETS, int((last - origin) // bucket_seconds) + 1)
    durations: list[list[float]] = [[] for _ in range(count)]
    errors = [0] * count
    for row, stamp in zip(rows, times, strict=True):
        index = int((stamp - origin) // bucket_seconds)
        if 0 <= index < count:
            durations[index].append(float(row.duration_ms))
            errors[index] += 1 if row.is_error else 0
    series: list[dict[str, Any]] = []
    for index in range(count):
        ordered = sorted(durations[index])
        moment = datetime.fromtimestamp(origin + index * bucket_seconds, UTC)
        series.append(
            {
                "start": moment.isoformat().replace("+00:00", "Z"),
                "calls": len(ordered),
                "errors": errors[index],
                "p50": _percentile(ordered, 50),
                "p95": _percentile(ordered, 95),
                "p99": _percentile(ordered, 99),
            }
        )
    return series


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _percentile(ordered: list[float], percent: int) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 3)


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        organization_id=row.organization_id,
        connection_id=row.connection_id,
        virtual_mcp_id=row.virtual_mcp_id,
        method=row.method,
        tool_name=row.tool_name,
        caller_type=row.caller_type,
        user_id=row.user_id,
        api_key_id=row.api_key_id,
        client_id=row.client_id,
        user_agent=row.user_agent,
        request_id=row.request_id,
        protocol_version=row.protocol_version,
        input=row.input,
        output=row.output,
        is_error=bool(row.is_error),
        error_message=row.error_message,
        duration_ms=float(row.duration_ms),
        created_at=row.created_at,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        cost_usd=row.cost_usd,
    )
