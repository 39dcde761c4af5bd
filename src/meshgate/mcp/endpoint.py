"""The management endpoint `/mcp`, with the MCP SDK loaded on its first request rather than at start.

Nothing else in the gateway needs the SDK: the proxy and virtual MCPs speak the protocol themselves and
the dashboard runs tools through `meshgate.mcp.invoke`. Importing the SDK costs about a second of CPU and
40 MB, which a gateway that only proxies would pay at every start (see docs/decisions.md). The import runs
in a worker thread, so `/health` and proxied calls keep being answered while the first management
request waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from starlette.types import Receive, Scope, Send

from meshgate.http.guard import headers_of
from meshgate.mcp.registry import ToolRegistry
from meshgate.observability.tracing import extract_parent
from meshgate.runtime import Runtime

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

PRINCIPAL_SCOPE_KEY = "meshgate.principal"


class ManagementSessions:
    """The SDK's stateless session manager for `/mcp`, built and run on first use; `stop()` at shutdown."""

    def __init__(self, runtime: Runtime, registry: ToolRegistry) -> None:
        self._runtime = runtime
        self._registry = registry
        self._lock = asyncio.Lock()
        self._sessions: StreamableHTTPSessionManager | None = None
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return self._sessions is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sessions = self._sessions or await self._start()
        parent = extract_parent(headers_of(scope))
        if parent is None:
            await sessions.handle_request(scope, receive, send)
            return
        # The SDK reads a caller's trace context from `_meta` only; HTTP clients send the W3C header.
        token = otel_context.attach(parent)
        try:
            await sessions.handle_request(scope, receive, send)
        finally:
            otel_context.detach(token)

    async def _start(self) -> StreamableHTTPSessionManager:
        async with self._lock:
            if self._sessions is not None:
                return self._sessions
            # The import takes about a second of CPU: off the loop, so other requests keep being answered.
            server_module = await asyncio.to_thread(importlib.import_module, "meshgate.mcp.server")
            sessions = server_module.management_sessions(self._runtime, self._registry)
            started = asyncio.get_running_loop().create_future()
            self._runner = asyncio.create_task(self._run(sessions, started), name="meshgate-management-sessions")
            await started
            self._sessions = sessions
            return sessions

    async def _run(self, sessions: StreamableHTTPSessionManager, started: asyncio.Future[None]) -> None:
        try:
            async with sessions.run():
                started.set_result(None)
                await self._stopping.wait()
        except BaseException as error:
            if not started.done():
                started.set_exception(error)
            raise

    async def stop(self) -> None:
        """End the SDK's task group (cancelling requests still running); nothing to do if never used."""
        self._stopping.set()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
