"""`GET /.well-known/jwks.json`: the public keys that verify `x-mesh-token` (RFC 7517), for anyone."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

# Short enough that an upstream sees a new key long before it signs (keys are published an hour ahead).
MAX_AGE_S = 300


async def jwks(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=_headers())
    return Response(
        orjson.dumps(request.app.state.runtime.mesh_tokens.keys.jwks()),
        headers=_headers(),
        media_type="application/json",
    )


def _headers() -> dict[str, str]:
    return {
        "Cache-Control": f"public, max-age={MAX_AGE_S}",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, OPTIONS",
    }
