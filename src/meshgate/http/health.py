"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from meshgate import __version__


async def live(_request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


async def ready(request: Request) -> Response:
    """503 while shutting down or while the database does not answer within two seconds."""
    state = request.app.state
    if state.shutting_down:
        return JSONResponse({"status": "shutting_down", "version": __version__}, status_code=503)
    try:
        async with asyncio.timeout(2):  # not wait_for: it can swallow a cancel on 3.11
            await state.db.ping()
    except Exception:
        state.log.warning("readiness: database does not answer", exc_info=True)
        return JSONResponse({"status": "database_unavailable", "version": __version__}, status_code=503)
    return JSONResponse({"status": "ready", "version": __version__})
