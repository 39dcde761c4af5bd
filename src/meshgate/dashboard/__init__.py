"""The web dashboard: server-rendered pages under `/app/{organization slug}/…` that run the management tools
as the logged-in person, so permissions and validation are exactly those of `/mcp`."""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard
from meshgate.dashboard.account import AccountPages
from meshgate.dashboard.apps import AppPages
from meshgate.dashboard.audit import AuditPages
from meshgate.dashboard.connect import ConnectPages
from meshgate.dashboard.connections import ConnectionPages
from meshgate.dashboard.events import EventPages
from meshgate.dashboard.invitations import InvitationPages
from meshgate.dashboard.keys import KeyPages
from meshgate.dashboard.members import MemberPages
from meshgate.dashboard.resources import ResourcePages
from meshgate.dashboard.settings import SettingsPages
from meshgate.dashboard.sso import SsoPages
from meshgate.dashboard.storage import StoragePages
from meshgate.dashboard.subscriptions import SubscriptionPages
from meshgate.dashboard.virtual import VirtualPages
from meshgate.events.watch import WatchHub
from meshgate.http.pages import SECURITY_HEADERS
from meshgate.http.web import Web
from meshgate.identity.service import OrganizationService
from meshgate.mcp.registry import ToolRegistry

_SCRIPT = files("meshgate.dashboard").joinpath("static/dashboard.js").read_bytes()


class DashboardPages:
    def __init__(self, web: Web, registry: ToolRegistry, watch: WatchHub) -> None:
        self._dashboard = Dashboard(web, registry)
        self._watch = watch

    def routes(self) -> list[Route]:
        d = self._dashboard
        web = d.web
        return [
            Route("/app", self.home, methods=["GET"]),
            Route("/app/static/dashboard.js", self.script, methods=["GET"]),
            *AccountPages(d).routes(),
            *ConnectionPages(d).routes(),
            *ResourcePages(d).routes(),
            *AuditPages(d).routes(),
            *KeyPages(d).routes(),
            *AppPages(d).routes(),
            *MemberPages(d).routes(),
            *SettingsPages(d).routes(),
            *StoragePages(d).routes(),
            *SsoPages(d).routes(),
            *ConnectPages(d).routes(),
            *VirtualPages(d).routes(),
            *SubscriptionPages(d).routes(),  # before the events' `/events/{id}`
            *EventPages(d, self._watch).routes(),
            *InvitationPages(web).routes(),
            # Last: any other path under /app is a page that says so, never a bare JSON 404.
            Route("/app/{rest:path}", self.unknown, methods=["GET"]),
        ]

    async def home(self, request: Request) -> Response:
        """To the person's first organization (or to the login page)."""
        web = self._dashboard.web
        user = await web.user(request)
        if user is None:
            return RedirectResponse(f"{web.base}/login?next={web.base}/app", status_code=303)
        async with web.runtime.db.transaction() as session:
            organizations = await OrganizationService(session).list_for_user(user.id)
        if not organizations:
            return web.page(
                request,
                "message.html",
                404,
                heading="No organization",
                message="You are not a member of any organization.",
            )
        return RedirectResponse(f"{web.base}/app/{organizations[0].slug}/connections", status_code=303)

    async def unknown(self, request: Request) -> Response:
        web = self._dashboard.web
        return web.page(
            request,
            "message.html",
            404,
            heading="Page not found",
            message=f"There is no dashboard page at {request.url.path}.",
            back_url=f"{web.base}/app",
            back_label="Go to the dashboard",
        )

    async def script(self, _request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}
        return Response(_SCRIPT, media_type="text/javascript", headers=headers)
