"""`GET /metrics`: Prometheus text format, optionally behind a bearer token."""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from meshgate.errors import NotFound, Unauthenticated
from meshgate.http.errors import http_error


async def metrics(request: Request) -> Response:
    runtime = request.app.state.runtime
    if runtime.metrics is None:
        return http_error(NotFound("metrics are off (MESHGATE_METRICS=off)"))
    token = runtime.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return http_error(Unauthenticated("/metrics needs 'Authorization: Bearer <MESHGATE_METRICS_TOKEN>'"))
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
