"""`POST /api/{org_slug}/events/{type}`: publishing over HTTP, for scripts and services that speak no MCP.

The body is a JSON object with EVENT_PUBLISH's fields but `type` (`data`, `subject`, `deliverAt`, `cron`,
`timezone`); an empty body publishes an event without data. A credential is required (never anonymous), it
needs `self:EVENT_PUBLISH` as the tool does, and the organization in the path must be the credential's own.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from meshgate.access import SELF
from meshgate.db.database import Database
from meshgate.errors import InvalidInput, MeshgateError, NotFound, PermissionDenied
from meshgate.events.service import EventService, author_of, source_of
from meshgate.events.worker import EventWorker
from meshgate.http.errors import http_error
from meshgate.http.guard import Admission
from meshgate.jsonvalues import as_dict

_FIELDS = {"data", "subject", "deliverAt", "cron", "timezone"}


class EventRoutes:
    def __init__(self, db: Database, worker: EventWorker, admission: Admission) -> None:
        self._db = db
        self._worker = worker
        self._admission = admission

    def routes(self) -> list[Route]:
        return [Route("/api/{org_slug}/events/{event_type:path}", self.publish, methods=["POST"])]

    async def publish(self, request: Request) -> Response:
        try:
            headers = {key.lower(): value for key, value in request.headers.items()}
            principal, body = await self._admission.admit(request.scope, request.receive, headers)
            if principal.organization_slug != request.path_params["org_slug"]:
                raise NotFound(f"organization {str(request.path_params['org_slug'])[:100]} not found")
            if not principal.allows(SELF, "EVENT_PUBLISH"):
                raise PermissionDenied("publishing events needs self:EVENT_PUBLISH")
            fields = _fields(body)
            async with self._db.transaction() as session:
                service = EventService(
                    session, principal.organization_id, self._worker.clock, self._worker.metrics, self._worker.tracer
                )
                found = await service.publish(
                    source_of(principal),
                    str(request.path_params["event_type"]),
                    subject=_text(fields, "subject"),
                    data=fields.get("data"),
                    deliver_at=_text(fields, "deliverAt"),
                    cron=_text(fields, "cron"),
                    timezone=_text(fields, "timezone"),
                    published_by=author_of(principal),
                )
        except MeshgateError as error:
            return http_error(error)
        return JSONResponse(found.to_dict(), status_code=201)


def _fields(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        given: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(given, dict):
        raise InvalidInput(f"the body must be a JSON object with any of {', '.join(sorted(_FIELDS))}")
    fields = as_dict(given)
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0][:40]!r}; allowed fields: {', '.join(sorted(_FIELDS))}")
    return fields


def _text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    return value
