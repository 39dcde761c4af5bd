"""The ASGI application: `create_app(settings)`."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from meshgate.ai.routes import AiRoutes
from meshgate.ai.tools import TOOLS as AI_TOOLS
from meshgate.connections.tools import TOOLS as CONNECTION_TOOLS
from meshgate.dashboard import DashboardPages
from meshgate.events.routes import EventRoutes
from meshgate.events.tools import TOOLS as EVENT_TOOLS
from meshgate.events.watch import WatchHub
from meshgate.http import health, jwks, metrics
from meshgate.http.guard import Admission, McpGuard, OriginPolicy
from meshgate.http.web import Web
from meshgate.identity.magic_link_routes import MagicLinkPages
from meshgate.identity.password_routes import PasswordPages
from meshgate.identity.routes import LoginPages
from meshgate.identity.tools import TOOLS as IDENTITY_TOOLS
from meshgate.jsonrpc import INVALID_REQUEST, rpc_error
from meshgate.keycheck import verify_vault_key
from meshgate.mcp.endpoint import PRINCIPAL_SCOPE_KEY, ManagementSessions
from meshgate.mcp.registry import ToolRegistry
from meshgate.monitoring.tools import TOOLS as MONITORING_TOOLS
from meshgate.oauth.callback import UpstreamCallback
from meshgate.oauth.routes import OAuthEndpoints
from meshgate.oauth.tools import TOOLS as OAUTH_TOOLS
from meshgate.observability.metrics import GatewayMetrics
from meshgate.proxy.announcements import Announcements
from meshgate.proxy.bridged import BridgedCalls
from meshgate.proxy.interactions import Interactions
from meshgate.proxy.routes import ProxyEndpoint
from meshgate.proxy.sessions import SessionIds
from meshgate.proxy.telemetry import Telemetry
from meshgate.runtime import Runtime
from meshgate.settings import Settings
from meshgate.sso.routes import SsoPages
from meshgate.sso.tools import TOOLS as SSO_TOOLS
from meshgate.storage.routes import LocalObjectRoutes
from meshgate.storage.tools import TOOLS as STORAGE_TOOLS
from meshgate.virtual.routes import VirtualEndpoint
from meshgate.virtual.tools import TOOLS as VIRTUAL_TOOLS

log = logging.getLogger("meshgate")


def build_registry() -> ToolRegistry:
    """Every management tool of every package."""
    return ToolRegistry(
        [
            *IDENTITY_TOOLS,
            *CONNECTION_TOOLS,
            *VIRTUAL_TOOLS,
            *OAUTH_TOOLS,
            *MONITORING_TOOLS,
            *EVENT_TOOLS,
            *AI_TOOLS,
            *STORAGE_TOOLS,
            *SSO_TOOLS,
        ]
    )


class _ManagementEndpoint:
    """Raw ASGI endpoint for `/mcp` (POST); GET streams are not offered by the stateless server."""

    def __init__(self, guard: McpGuard) -> None:
        self._guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            response = JSONResponse(
                rpc_error(None, INVALID_REQUEST, "use POST for MCP messages"),
                status_code=405,
                headers={"Allow": "POST"},
            )
            await response(scope, receive, send)
            return
        await self._guard(scope, receive, send)


class _Gateway:
    """Top-level ASGI app: `/mcp/…` goes straight to the proxy (no router on the hot path)."""

    def __init__(
        self, app: Starlette, proxy: ProxyEndpoint, virtual: VirtualEndpoint, metrics: GatewayMetrics | None
    ) -> None:
        self.app = app
        self.state = app.state
        self._proxy = proxy
        self._virtual = virtual
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith("/mcp/virtual/"):
            await self._virtual(scope, receive, send)
            return
        if scope["path"].startswith("/mcp/"):
            await self._proxy(scope, receive, send)  # counted per connection and tool by the proxy itself
            return
        if self._metrics is None:
            await self.app(scope, receive, send)
            return
        status = 500
        requests = self._metrics.http_requests

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            requests.labels(_route_label(scope["path"]), str(status)).inc()


_KNOWN_ROUTES = frozenset({"/mcp", "/health", "/health/live", "/health/ready", "/metrics", "/.well-known/jwks.json"})


def _route_label(path: str) -> str:
    return path if path in _KNOWN_ROUTES else "other"


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> Any:
    """Build the gateway; the database must already be migrated (`meshgate migrate` or `serve`).

    `clock` (epoch seconds) decides when OAuth tokens and credentials expire; tests pass their own."""
    runtime = Runtime.build(settings, clock=clock)
    registry = build_registry()
    sessions = ManagementSessions(runtime, registry)
    admission = Admission(
        authenticate=runtime.authenticator.authenticate,
        policy=OriginPolicy.for_public_url(settings.public_url, settings.allowed_hosts, settings.allowed_origins),
        max_body_bytes=settings.max_body_bytes,
        limiter=runtime.limiter,
        public_url=settings.public_url,
    )

    def resource_metadata(path: str) -> str:
        return f"{settings.public_url}/.well-known/oauth-protected-resource{path}"

    guard = McpGuard(
        sessions,
        admission=admission,
        resource_metadata_url=resource_metadata,
        scope_key=PRINCIPAL_SCOPE_KEY,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncGenerator[None]:
        # uvloop leaves SIGPIPE at its default (terminate): writing to a STDIO server that just exited, or to
        # a peer that closed its socket, must raise an error in one call, not kill the gateway.
        with contextlib.suppress(ValueError):  # not the main thread (an embedding host): leave it alone
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        await verify_vault_key(runtime.db, runtime.vault)
        await runtime.start()
        # Everything allocated so far lives as long as the process: keep the collector from rescanning it.
        # (No gc.collect() first: after imports it finds next to nothing and costs 60-120 ms of start.)
        gc.freeze()
        try:
            yield
        finally:
            await sessions.stop()
            await watch.stop()
            await runtime.stop()

    watch = WatchHub(runtime.db, admission, runtime.events.clock)
    web = Web(runtime)
    app = Starlette(
        routes=[
            # First: Starlette tries routes in order, and ~90 pages before them cost ~0.1 ms per AI request
            *AiRoutes(runtime.ai, admission, runtime.ai_meter).routes(),
            *LoginPages(web).routes(),
            *MagicLinkPages(web).routes(),
            *PasswordPages(web).routes(),
            *SsoPages(web).routes(),
            *DashboardPages(web, registry, watch).routes(),
            *OAuthEndpoints(web, runtime.oauth_clients).routes(),
            *EventRoutes(runtime.db, runtime.events, admission).routes(),
            *LocalObjectRoutes(runtime.storage).routes(),
            Route("/api/{org_slug}/watch", watch, methods=["GET"]),
            *UpstreamCallback(web).routes(),
            Route("/health", health.live),
            Route("/health/live", health.live),
            Route("/health/ready", health.ready),
            Route("/metrics", metrics.metrics),
            Route("/.well-known/jwks.json", jwks.jwks, methods=["GET", "OPTIONS"]),
            Route("/mcp", _ManagementEndpoint(guard), methods=["GET", "POST", "DELETE"]),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.db = runtime.db
    app.state.shutting_down = False
    app.state.log = log
    app.add_exception_handler(404, _not_found)
    return _Gateway(app, _proxy(runtime, admission), _virtual(runtime, admission), runtime.metrics)


def _proxy(runtime: Runtime, admission: Admission) -> ProxyEndpoint:
    settings, telemetry = runtime.settings, Telemetry(runtime.tracing, runtime.metrics)
    announcements = Announcements(runtime.db)
    bridged = BridgedCalls(
        runtime.calls, runtime.streams, announcements, Interactions(), runtime.metrics, settings.public_url
    )
    sessions = SessionIds(settings.secret)
    return ProxyEndpoint(
        runtime.calls, admission, telemetry, sessions, runtime.streams, bridged, runtime.metrics, settings.public_url
    )


def _virtual(runtime: Runtime, admission: Admission) -> VirtualEndpoint:
    telemetry = Telemetry(runtime.tracing, runtime.metrics)
    return VirtualEndpoint(
        runtime.calls,
        admission,
        runtime.virtual,
        telemetry,
        runtime.streams,
        runtime.metrics,
        runtime.settings.public_url,
        runtime.sandbox,
    )


async def _not_found(request: Request, _exc: Any) -> Response:
    return JSONResponse({"error": {"code": "not_found", "message": f"no route for {request.url.path}"}}, 404)
