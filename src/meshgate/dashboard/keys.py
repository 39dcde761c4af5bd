"""API keys: create (permissions and expiry; the value is shown once), list with whose each is, narrow, revoke."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field
from meshgate.dashboard._permissions import checked, describe, map_from_form, picker_rows
from meshgate.errors import MeshgateError, NotFound
from meshgate.jsonvalues import as_dict, as_list

EXPIRY = (("", "Never"), ("86400", "1 day"), ("604800", "7 days"), ("2592000", "30 days"), ("7776000", "90 days"))


class KeyPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        return [
            Route("/app/{org}/keys", self._d.view(self.index), methods=["GET"]),
            Route("/app/{org}/keys", self._d.action(self.create), methods=["POST"]),
            Route("/app/{org}/keys/{id}", self._d.view(self.edit), methods=["GET"]),
            Route("/app/{org}/keys/{id}", self._d.action(self.update), methods=["POST"]),
            Route("/app/{org}/keys/{id}/revoke", self._d.action(self.revoke), methods=["POST"]),
        ]

    async def index(self, request: Request, visit: Visit) -> Response:
        """The keys, and once, right after `create`, the new key's value."""
        return await self._d.showing_once(
            request, visit, "/keys", lambda created: self._page(request, visit, created=created)
        )

    async def _listing(self, visit: Visit) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
        """The visible keys, the connections the visitor may list, and who each key owner is."""
        keys = [as_dict(k) for k in as_list((await self._d.tool(visit, "API_KEY_LIST"))["items"])]
        connections: list[dict[str, Any]] = []
        if visit.can("COLLECTION_CONNECTIONS_LIST"):
            listed = await self._d.tool(visit, "COLLECTION_CONNECTIONS_LIST", {"limit": 1000})
            connections = [as_dict(c) for c in as_list(listed["items"])]
        owners = {visit.user.id: f"{visit.user.email} (you, {visit.principal.role})"}
        if visit.can("ORGANIZATION_MEMBER_LIST") and any(str(k.get("userId")) not in owners for k in keys):
            for member in map(as_dict, as_list((await self._d.tool(visit, "ORGANIZATION_MEMBER_LIST"))["items"])):
                owners.setdefault(str(member["userId"]), f"{member['email']} ({member['role']})")
        return keys, connections, owners

    async def _page(self, request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        keys, connections, owners = await self._listing(visit)
        names = {str(c["id"]): str(c["title"]) for c in connections}
        return self._d.page(
            request,
            visit,
            "dashboard/keys.html",
            status,
            section="keys",
            keys=keys,
            owners=owners,
            summaries={k["id"]: describe(k.get("permissions"), names) for k in keys},
            rows=picker_rows(self._d.registry, connections),
            expiry=EXPIRY,
            checked=context.pop("checked", set[str]()),
            **context,
        )

    async def edit(self, request: Request, visit: Visit) -> Response:
        return await self._edit_page(request, visit, str(request.path_params["id"]))

    async def _edit_page(
        self, request: Request, visit: Visit, key_id: str, status: int = 200, **context: Any
    ) -> Response:
        keys, connections, owners = await self._listing(visit)
        key = next((k for k in keys if str(k["id"]) == key_id), None)
        if key is None:
            raise NotFound(f"API key {key_id} not found")
        names = {str(c["id"]): str(c["title"]) for c in connections}
        return self._d.page(
            request,
            visit,
            "dashboard/key_edit.html",
            status,
            section="keys",
            key=key,
            owner=owners.get(str(key.get("userId")), "another member"),
            summary=describe(key.get("permissions"), names),
            rows=picker_rows(self._d.registry, connections),
            checked=context.pop("checked", None) or checked(key.get("permissions")),
            **context,
        )

    async def update(self, request: Request, visit: Visit, form: Form) -> Response:
        """Narrow (or change) a key's permission map; the tool refuses a map wider than the visitor holds."""
        key_id = str(request.path_params["id"])
        arguments: dict[str, Any] = {"keyId": key_id, "permissions": map_from_form(form)}
        try:
            await self._d.tool(visit, "API_KEY_UPDATE", arguments)
        except MeshgateError as error:
            return await self._edit_page(
                request, visit, key_id, error.http_status, error=error.message, checked=set(form.get("perm", []))
            )
        return self._d.back(visit, "/keys", "key-updated")

    async def create(self, request: Request, visit: Visit, form: Form) -> Response:
        arguments: dict[str, Any] = {"name": field(form, "name")}
        if field(form, "scope") == "custom":
            arguments["permissions"] = map_from_form(form)
        if field(form, "expires").isdigit():
            arguments["expiresIn"] = int(field(form, "expires"))
        try:
            created = await self._d.tool(visit, "API_KEY_CREATE", arguments)
        except MeshgateError as error:
            return await self._page(
                request,
                visit,
                error.http_status,
                error=error.message,
                name=arguments["name"],
                checked=set(form.get("perm", [])),
            )
        shown = {"name": str(created["name"]), "key": str(created["key"])}
        return self._d.back_showing(visit, "/keys", shown) or await self._page(request, visit, created=shown)

    async def revoke(self, request: Request, visit: Visit, _form: Form) -> Response:
        await self._d.tool(visit, "API_KEY_DELETE", {"keyId": str(request.path_params["id"])})
        return self._d.back(visit, "/keys", "key-revoked")
