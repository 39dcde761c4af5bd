"""Organization settings (name, description, what the member role may do) and new organizations."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field, optional
from meshgate.dashboard._permissions import checked, map_from_form, picker_rows
from meshgate.errors import MeshgateError
from meshgate.jsonvalues import as_dict, as_list


class SettingsPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/settings", d.view(self.settings), methods=["GET"]),
            Route("/app/{org}/settings", d.action(self.save), methods=["POST"]),
            Route("/app/{org}/settings/members", d.action(self.save_member_permissions), methods=["POST"]),
            Route("/app/{org}/organizations", d.action(self.create_organization), methods=["POST"]),
        ]

    async def settings(self, request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        current = as_dict(await self._d.tool(visit, "ORGANIZATION_SETTINGS_GET"))
        return self._d.page(
            request,
            visit,
            "dashboard/settings.html",
            status,
            section="settings",
            rows=picker_rows(self._d.registry, await self._connections(visit)),
            checked=context.pop("checked", None) or checked(as_dict(current.get("member_permissions"))),
            **context,
        )

    async def save(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments = {
            "id": visit.organization.id,
            "name": field(form, "name"),
            "description": optional(form, "description"),
        }
        try:
            await self._d.tool(visit, "ORGANIZATION_UPDATE", arguments)
        except MeshgateError as error:
            return await self.settings(request, visit, error.http_status, error=error.message)
        return self._d.back(visit, "/settings", "settings-saved")

    async def save_member_permissions(self, request: Request, visit: Visit, form: Form) -> Response:
        try:
            await self._d.tool(visit, "ORGANIZATION_SETTINGS_UPDATE", {"member_permissions": map_from_form(form)})
        except MeshgateError as error:
            return await self.settings(
                request, visit, error.http_status, member_error=error.message, checked=set(form.get("perm", []))
            )
        return self._d.back(visit, "/settings", "settings-saved")

    async def create_organization(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments = {"name": field(form, "name"), "description": optional(form, "description")}
        try:
            created = as_dict(await self._d.tool(visit, "ORGANIZATION_CREATE", arguments))
        except MeshgateError as error:
            return await self.settings(request, visit, error.http_status, create_error=error.message)
        return RedirectResponse(f"{self._d.base}/app/{created['slug']}/connections", status_code=303)

    async def _connections(self, visit: Visit) -> list[dict[str, Any]]:
        if not visit.can("COLLECTION_CONNECTIONS_LIST"):
            return []
        listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
        return [as_dict(c) for c in as_list(listed["items"])]
