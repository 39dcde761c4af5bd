"""The audit log: filters (connection, tool, caller, status, time), a detail view, and charts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._charts import bucket_for, calls_chart, latency_chart
from meshgate.dashboard._core import Dashboard, Visit
from meshgate.errors import InvalidInput
from meshgate.jsonvalues import as_dict, as_list

PAGE_SIZE = 50


class AuditPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        return [
            Route("/app/{org}/audit", self._d.view(self.index), methods=["GET"]),
            Route("/app/{org}/audit/{id}", self._d.view(self.detail), methods=["GET"]),
        ]

    async def index(self, request: Request, visit: Visit) -> Response:
        query = request.query_params
        chosen = {
            name: query.get(name, "").strip() for name in ("connection", "tool", "caller", "status", "from", "to")
        }
        page = max(1, int(query.get("page", "1")) if query.get("page", "1").isdigit() else 1)
        names = await self._names(visit)
        try:
            where = _filters(chosen)
            listed = await self._d.tool(
                visit, "MONITORING_LOGS_LIST", {**where, "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE}
            )
        except InvalidInput as error:  # a filter a person typed: say so next to the filters
            return self._d.page(
                request,
                visit,
                "dashboard/audit.html",
                400,
                section="audit",
                records=[],
                total=0,
                page=1,
                pages=1,
                chosen=chosen,
                query_without_page="",
                charts=None,
                filter_error=error.message,
                **names,
            )
        charts = await self._charts(visit, where) if visit.can("MONITORING_STATS") else None
        return self._d.page(
            request,
            visit,
            "dashboard/audit.html",
            section="audit",
            records=[as_dict(item) for item in as_list(listed["items"])],
            total=listed["totalCount"],
            page=page,
            pages=max(1, -(-int(listed["totalCount"]) // PAGE_SIZE)),
            chosen=chosen,
            query_without_page=urlencode({k: v for k, v in chosen.items() if v}),
            charts=charts,
            **names,
        )

    async def _charts(self, visit: Visit, where: dict[str, Any]) -> dict[str, Any]:
        """Calls, errors and latency over the filtered period; without one, over the span of the matching calls
        (at least an hour, at most 30 days, ending at the newest), so old traffic is not an empty chart."""
        start, end = _parse(where.get("startDate")), _parse(where.get("endDate"))
        if start is None or end is None:
            arguments = {key: value for key, value in where.items() if key != "isError"}
            span = as_dict(await self._d.tool(visit, "MONITORING_STATS", arguments))
            first, last = _parse(span.get("firstCallAt")), _parse(span.get("lastCallAt"))
            if end is None:
                end = last if last is not None else datetime.now(UTC)
                if start is not None:
                    end = max(end, start + MIN_SPAN)
            if start is None:
                start = max(first if first is not None else end, end - MAX_SPAN)
            start = min(start, end - MIN_SPAN)
        arguments = {key: value for key, value in where.items() if key != "isError"}
        arguments.update(
            startDate=_iso(start), endDate=_iso(end), bucketSeconds=bucket_for((end - start).total_seconds())
        )
        stats = as_dict(await self._d.tool(visit, "MONITORING_STATS", arguments))
        series = [as_dict(point) for point in as_list(stats.get("series"))]
        return {
            "calls": calls_chart(series),
            "latency": latency_chart(series),
            "stats": stats,
            "period": f"{_iso(start)[:16].replace('T', ' ')} to {_iso(end)[:16].replace('T', ' ')} UTC",
        }

    async def detail(self, request: Request, visit: Visit) -> Response:
        record = as_dict(await self._d.tool(visit, "MONITORING_LOG_GET", {"id": str(request.path_params["id"])}))
        return self._d.page(
            request,
            visit,
            "dashboard/audit_record.html",
            section="audit",
            record=record,
            input=_pretty(record.get("input")),
            output=_pretty(record.get("output")),
            **(await self._names(visit)),
        )

    async def _names(self, visit: Visit) -> dict[str, Any]:
        """Connection titles and member emails, so ids read as names (only what the visitor may list)."""
        connections: dict[str, str] = {}
        people: dict[str, str] = {}
        if visit.can("COLLECTION_CONNECTIONS_LIST"):
            listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
            connections = _told_apart([as_dict(c) for c in as_list(listed["items"])])
        if visit.can("ORGANIZATION_MEMBER_LIST"):
            listed = await self._d.tool(visit, "ORGANIZATION_MEMBER_LIST")
            people = {str(m["userId"]): str(m["email"]) for m in map(as_dict, as_list(listed["items"]))}
        people.setdefault(visit.user.id, visit.user.email)
        return {"connection_names": connections, "people": people}


MIN_SPAN = timedelta(hours=1)
MAX_SPAN = timedelta(days=30)


def _told_apart(connections: list[dict[str, Any]]) -> dict[str, str]:
    """Connection titles by id; a title that two connections share gets the start of each one's id."""
    titles = Counter(str(c["title"]) for c in connections)
    return {
        str(c["id"]): str(c["title"]) if titles[str(c["title"])] == 1 else f"{c['title']} ({str(c['id'])[:8]})"
        for c in connections
    }


def _filters(chosen: dict[str, str]) -> dict[str, Any]:
    """MONITORING_LOGS_LIST arguments from the filter form (times are UTC from datetime-local inputs)."""
    where: dict[str, Any] = {}
    if chosen["connection"]:
        where["connectionId"] = chosen["connection"]
    if chosen["tool"]:
        where["toolNameContains"] = chosen["tool"]
    if chosen["caller"]:
        where["userId"] = chosen["caller"]
    if chosen["status"] in ("ok", "error"):
        where["isError"] = chosen["status"] == "error"
    for name, argument in (("from", "startDate"), ("to", "endDate")):
        if chosen[name]:
            where[argument] = utc_time(chosen[name], name)
    return where


def utc_time(value: str, name: str) -> str:
    """A `datetime-local` value (no zone) read as UTC, as ISO 8601 with `Z`."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name}: {value[:40]!r} is not a time like 2026-01-31T12:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _pretty(value: Any) -> str | None:
    """Stored payloads are JSON text (already redacted by the writer); indent them when they parse."""
    if value is None:
        return None
    try:
        return json.dumps(json.loads(str(value)), indent=2, ensure_ascii=False)
    except ValueError:
        return str(value)
