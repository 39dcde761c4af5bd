"""Authorized apps: the OAuth clients the visitor allowed in this organization, and revoking them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field
from meshgate.jsonvalues import as_dict, as_list


class AppPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        return [
            Route("/app/{org}/apps", self._d.view(self.index), methods=["GET"]),
            # The client id may be an https URL (a metadata document), so it travels in the form, not the path.
            Route("/app/{org}/apps/revoke", self._d.action(self.revoke), methods=["POST"]),
        ]

    async def index(self, request: Request, visit: Visit) -> Response:
        apps = [as_dict(app) for app in as_list((await self._d.tool(visit, "OAUTH_GRANT_LIST"))["items"])]
        minutes = max(1, self._d.runtime.settings.oauth_access_token_seconds // 60)
        return self._d.page(
            request, visit, "dashboard/apps.html", section="apps", apps=apps, access_token_minutes=minutes
        )

    async def revoke(self, _request: Request, visit: Visit, form: Form) -> Response:
        await self._d.tool(visit, "OAUTH_GRANT_REVOKE", {"clientId": field(form, "client_id")})
        return self._d.back(visit, "/apps", "app-revoked")
