"""ASGI apps served on 127.0.0.1 inside the test's event loop, so that a test can hold their clocks.

`TestClock` runs with the real clock plus an offset the test moves forward: expiry is reached by moving it,
never by sleeping, and it is never behind the real clock, so the libraries that check times on their own
(PyJWT for consent forms, the MCP SDK's auth middleware) still agree with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import uvicorn

from meshgate.app import create_app
from meshgate.db.database import Database
from meshgate.db.migrate import apply_migrations
from meshgate.settings import load_settings
from support.gateway import Gateway, free_port, gateway_env


class TestClock:
    """Epoch seconds: the real time plus however far the test has moved it."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@asynccontextmanager
async def serve_asgi(app: Any, port: int) -> AsyncIterator[None]:
    """Serve `app` (lifespan included) on 127.0.0.1:`port` until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        with anyio.fail_after(30):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped it
                    raise RuntimeError(f"the server on port {port} stopped before it started")
                await anyio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        with anyio.fail_after(30):
            await task


@asynccontextmanager
async def served_gateway(database_url: str, tmp: Path, clock: TestClock, **extra: str) -> AsyncIterator[Gateway]:
    """A migrated gateway whose OAuth server, authenticator and upstream OAuth client read `clock`."""
    port = free_port()
    data = tmp / "served"
    data.mkdir(parents=True, exist_ok=True)
    env = gateway_env(database_url, data, PORT=str(port), **extra)
    settings = load_settings(env)
    db = Database(database_url)
    try:
        await apply_migrations(db.engine)
    finally:
        await db.close()
    async with serve_asgi(create_app(settings, clock=clock), port):
        yield Gateway(env=env, port=port)
