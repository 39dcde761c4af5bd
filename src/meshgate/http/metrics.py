"""`GET /metrics`: Prometheus text format, behind a bearer token unless the operator opens it on purpose.

The series carry every organization's connection ids and tool names, so nobody reads them by default
(security review 12): `MESHGATE_METRICS_TOKEN` names the scraper's token, `MESHGATE_METRICS_OPEN=1` serves
them to anyone who can reach the port (a private network, a port only the scraper reaches)."""

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
    if token is None and not runtime.settings.metrics_open:
        return http_error(
            Unauthenticated(
                "/metrics is closed: set MESHGATE_METRICS_TOKEN and send 'Authorization: Bearer <token>', "
                "or set MESHGATE_METRICS_OPEN=1 to serve it to anyone who can reach this port"
            )
        )
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return http_error(Unauthenticated("/metrics needs 'Authorization: Bearer <MESHGATE_METRICS_TOKEN>'"))
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
